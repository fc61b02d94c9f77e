//! The OpenAPI document, generated from the handlers' annotations; every endpoint joins here.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    analytics, cleanroom, consent, decisions, dsr, ingest, lifecycle, ops, profiles,
};

/// Consentric's API description, served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Consentric", description = "Privacy-first customer lifecycle platform. Ingest is Segment-compatible."),
    paths(
        ingest::identify, ingest::track, ingest::page, ingest::screen, ingest::group, ingest::alias, ingest::batch,
        profiles::profile, profiles::events, profiles::identities, profiles::view, profiles::erase, profiles::export, profiles::rectify,
        consent::purposes, consent::consent, consent::set_consent, consent::history, consent::restriction,
        dsr::file, dsr::list, dsr::show, dsr::verify, dsr::extend, dsr::process,
        lifecycle::customer, lifecycle::summary, lifecycle::fit, lifecycle::recompute,
        decisions::decide, decisions::train, decisions::list, decisions::define, decisions::preview, decisions::delete, decisions::propose, decisions::members, decisions::refresh,
        analytics::query, analytics::budget, analytics::grant,
        cleanroom::invite, cleanroom::list, cleanroom::status, cleanroom::blinded, cleanroom::intersect, cleanroom::sum, cleanroom::join, cleanroom::run,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    modifiers(&Security),
    tags(
        (name = "ingest", description = "Segment Spec events in"),
        (name = "profiles", description = "Profiles, events and identity graphs (admin keys)"),
        (name = "consent", description = "Purposes and customers' consent"),
        (name = "dsr", description = "Data-subject requests: access, erasure, restriction, with deadlines"),
        (name = "lifecycle", description = "Stages, value models, cohorts (admin keys)"),
        (name = "decisions", description = "Recommendations, next best action and explanations (admin keys)"),
        (name = "segments", description = "Segment definitions, sizes and k-means proposals (admin keys)"),
        (name = "analytics", description = "Differentially private aggregates within a privacy budget (analyst keys; admin keys grant)"),
        (name = "cleanroom", description = "Private set intersection and intersection-sum with a partner (admin keys; partners use the session token)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
