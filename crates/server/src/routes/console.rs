//! The operators' console (`/console`): log-in, then a page per area the operator's role may
//! open ([`Role::may`]); every other area answers 403. Sessions live in an HttpOnly,
//! SameSite=Strict cookie on `/console` (Secure behind an `https` public URL); every form
//! carries the session's CSRF token. Reads of a customer are audited as `operator:<name>`.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use consentric_engine::{
    Area, EngineError, OperatorSession, ProfileRef, Role, OPERATOR_SESSION_MINUTES,
};
use serde::Deserialize;
use serde_json::json;

use crate::pages::forms::{self, cookie_value, run, session_cookie, Pairs};
use crate::pages::{console as pages, page_with};
use crate::routes::sdk::PublicUrl;
use crate::AppState;

/// The session cookie's name.
const COOKIE_NAME: &str = "consentric_console";
/// What a console page may load: scripts and styles from this server only (uPlot and the
/// chart bootstrap), no inline script, forms posted to itself, never framed.
pub(crate) const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// How old the lifecycle summary the pages draw may be: computing it reads every customer's
/// purchases and stages.
const SUMMARY_AGE: std::time::Duration = std::time::Duration::from_secs(60);
/// Audit records the privacy page lists.
const AUDIT_SHOWN: u32 = 100;
/// A customer's latest events shown.
const EVENTS: u32 = 20;
/// Entries of a customer's audit trail shown.
const TRAIL: usize = 100;

const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console/console.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console/uPlot.min.css"),
    ),
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(overview))
        .route("/console/login", get(login_form).post(log_in))
        .route("/console/logout", post(log_out))
        .route("/console/assets/{file}", get(asset))
        .route("/console/lifecycle", get(lifecycle))
        .route("/console/customers", get(customers))
        .route("/console/customers/{id}", get(customer))
        .route("/console/segments", get(segments).post(define_segment))
        .route("/console/segments/{name}", get(segment))
        .route("/console/segments/proposals", post(propose))
        .route("/console/segments/size", post(size_segment))
        .route("/console/actions", get(actions))
        .route("/console/privacy", get(privacy))
        .route("/console/privacy/verify-audit", post(verify_audit))
        .route("/console/privacy/retention", post(run_retention))
        .route("/console/privacy/requests/{id}/{step}", post(request_step))
        .route("/console/privacy/keys/{id}/revoke", post(revoke_key))
        .route("/console/analytics", get(analytics).post(ask))
        .route("/console/cleanroom", get(cleanroom))
        .route("/console/cleanroom/invite", post(invite))
        .route("/console/cleanroom/join", post(join))
        .route("/console/cleanroom/{id}/run", post(run_session))
        .route("/console/account", get(account))
        .route("/console/account/password", post(change_password))
        .route("/console/account/totp", post(enable_totp))
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    page_with(status, markup, CONSOLE_CSP)
}

fn to_login() -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, "/console/login")]).into_response()
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE_NAME)
}

/// The operator of the request's session, whatever their role; else the log-in page.
async fn anyone(engine: &AppState, headers: &HeaderMap) -> Result<OperatorSession, Response> {
    let token = token_of(headers).ok_or_else(to_login)?;
    let e = engine.clone();
    match run(move || e.operator_session(&token)).await {
        Ok(s) => Ok(s),
        Err(EngineError::SignedOut(_)) => Err(to_login()),
        Err(e) => Err(fault(e)),
    }
}

/// The operator of the request's session, if they may open `area`; else the log-in page (no
/// session) or a 403 page (another role's area).
async fn operator(
    engine: &AppState,
    headers: &HeaderMap,
    area: Area,
) -> Result<OperatorSession, Response> {
    let session = anyone(engine, headers).await?;
    if !session.role().may(area) {
        let message = format!("A {} may not open this page.", session.role().as_str());
        return Err(html(
            StatusCode::FORBIDDEN,
            pages::refused(&session, area, &message),
        ));
    }
    Ok(session)
}

/// A form's operator and fields: their session (for `area`, or any role's own pages when
/// `None`), a form that reads (400 otherwise), and this session's CSRF token in it (403
/// otherwise, and nothing is done).
async fn signed_form(
    engine: &AppState,
    headers: &HeaderMap,
    area: Option<Area>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Result<(OperatorSession, Pairs), Response> {
    let session = match area {
        Some(area) => operator(engine, headers, area).await?,
        None => anyone(engine, headers).await?,
    };
    let shown = area.unwrap_or_else(|| home(&session).0);
    let Ok(Form(pairs)) = form else {
        return Err(html(
            StatusCode::BAD_REQUEST,
            pages::refused(
                &session,
                shown,
                "That form could not be read. Nothing was changed.",
            ),
        ));
    };
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return Err(html(
            StatusCode::FORBIDDEN,
            pages::refused(&session, shown, "That form did not come from this console (its security token was missing or wrong). Nothing was changed."),
        ));
    }
    Ok((session, pairs))
}

/// The first area a role may open, and its page: where a log-in lands.
fn home(session: &OperatorSession) -> (Area, &'static str) {
    if session.role().may(Area::Overview) {
        (Area::Overview, "/console")
    } else {
        (Area::Analytics, "/console/analytics")
    }
}

fn fault(e: EngineError) -> Response {
    tracing::error!(error = %e, "console");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "the console could not do that; it was logged",
    )
        .into_response()
}

fn cookie(public: &PublicUrl, token: &str, max_age: i64) -> HeaderValue {
    session_cookie(public, COOKIE_NAME, "/console", token, max_age)
}

/// A console asset, gzipped once on first use.
async fn asset(headers: HeaderMap, Path(file): Path<String>) -> Response {
    static GZ: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let Some(i) = ASSETS.iter().position(|(name, ..)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let gz = GZ.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, _, bytes)| crate::routes::banner::gzip(bytes))
            .collect()
    });
    crate::routes::sdk::gzipped_file(&headers, &gz[i], ASSETS[i].1, "public, max-age=3600")
}

async fn login_form() -> Response {
    html(StatusCode::OK, pages::login(None))
}

/// A field's value, empty when absent.
fn field<'a>(pairs: &'a Pairs, name: &str) -> &'a str {
    forms::field(pairs, name).unwrap_or_default()
}

async fn log_in(
    State(engine): State<AppState>,
    Extension(public): Extension<PublicUrl>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let Ok(Form(pairs)) = form else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::login(Some("That form could not be read.")),
        );
    };
    let (name, password) = (
        field(&pairs, "name").to_owned(),
        field(&pairs, "password").to_owned(),
    );
    let code = Some(field(&pairs, "code").trim().to_owned()).filter(|c| !c.is_empty());
    let e = engine.clone();
    match run(move || e.operator_log_in(&name, &password, code.as_deref())).await {
        Ok((session, token)) => {
            let mut r = (StatusCode::SEE_OTHER, [(LOCATION, home(&session).1)]).into_response();
            r.headers_mut().insert(
                SET_COOKIE,
                cookie(&public, &token, OPERATOR_SESSION_MINUTES * 60),
            );
            r
        }
        Err(EngineError::SignedOut(m)) => html(StatusCode::UNAUTHORIZED, pages::login(Some(&m))),
        Err(e) => fault(e),
    }
}

async fn log_out(
    State(engine): State<AppState>,
    Extension(public): Extension<PublicUrl>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, _) = match signed_form(&engine, &headers, None, form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let e = engine.clone();
    if let Err(e) = run(move || e.operator_log_out(&session)).await {
        return fault(e);
    }
    let mut r = to_login();
    r.headers_mut().insert(SET_COOKIE, cookie(&public, "", 0));
    r
}

async fn overview(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    let session = match operator(&engine, &headers, Area::Overview).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, actor, role) = (engine.clone(), session.actor(), session.role());
    let data = run(move || {
        let (events, customers) = e.totals()?;
        let requests = e.dsr_list(false)?;
        let open = requests
            .iter()
            .filter(|r| matches!(r.status.as_str(), "received" | "verified" | "in_progress"))
            .count();
        let overdue = requests.iter().filter(|r| r.overdue).count();
        // The funnel is the marketers' and admins' (the lifecycle area's).
        let funnel = if role.may(Area::Lifecycle) {
            Some(pages::funnel_spec(
                &*e.lifecycle_summary_within(SUMMARY_AGE, &actor)?,
            ))
        } else {
            None
        };
        Ok(pages::Overview {
            customers,
            events,
            open_requests: open,
            overdue_requests: overdue,
            funnel,
            stats: (*e.console_stats(SUMMARY_AGE)?).clone(),
        })
    })
    .await;
    match data {
        Ok(o) => html(StatusCode::OK, pages::overview(&session, &o)),
        Err(e) => fault(e),
    }
}

async fn lifecycle(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    let session = match operator(&engine, &headers, Area::Lifecycle).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, actor) = (engine.clone(), session.actor());
    match run(move || e.lifecycle_summary_within(SUMMARY_AGE, &actor)).await {
        Ok(s) => html(StatusCode::OK, pages::lifecycle(&session, &s)),
        Err(e) => fault(e),
    }
}

#[derive(Deserialize)]
struct Search {
    q: Option<String>,
}

async fn customers(
    State(engine): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let session = match operator(&engine, &headers, Area::Customers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let q = query.ok().and_then(|Query(s)| s.q).unwrap_or_default();
    let q = q.trim().to_owned();
    if q.is_empty() {
        return html(StatusCode::OK, pages::customers(&session, "", None));
    }
    let Ok(who) = ProfileRef::parse(&q) else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::customers(&session, &q, Some("That is not an identity.")),
        );
    };
    let e = engine.clone();
    match run(move || e.find_profile(&who)).await {
        Ok(id) => {
            let to = format!("/console/customers/{}", id.as_str());
            (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
        }
        Err(EngineError::NotFound(_)) => html(
            StatusCode::NOT_FOUND,
            pages::customers(&session, &q, Some("No customer has that identity.")),
        ),
        Err(e) => fault(e),
    }
}

async fn customer(
    State(engine): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = match operator(&engine, &headers, Area::Customers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(who) = ProfileRef::parse(&id) else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::customers(&session, &id, Some("That is not an identity.")),
        );
    };
    let (e, actor) = (engine.clone(), session.actor());
    if session.role() == Role::Admin {
        let page = run(move || {
            let lifecycle = match e.customer_lifecycle(&who, &actor) {
                Ok(l) => Some(l),
                Err(EngineError::NoBasis(_)) => None,
                Err(other) => return Err(other),
            };
            Ok(pages::CustomerPage {
                profile: e.profile(&who, &actor)?,
                consent: e.consent_history(&who)?,
                lifecycle,
                decisions: e.decision_log(&who, 20, &actor)?,
                events: e.events(&who, EVENTS, &actor)?,
                trail: e.audit_trail(&who, TRAIL)?,
            })
        })
        .await;
        return match page {
            Ok(c) => html(StatusCode::OK, pages::customer(&session, &c)),
            Err(EngineError::NotFound(_)) => html(
                StatusCode::NOT_FOUND,
                pages::customers(&session, &id, Some("No such customer.")),
            ),
            Err(e) => fault(e),
        };
    }
    // A marketer sees what the personalisation purpose may use, through its gate.
    let page = run(move || {
        let purpose = e.personalization_purpose();
        let view = e.profile_for_purpose(&who, &purpose, &actor)?;
        let lifecycle = match e.customer_lifecycle(&who, &actor) {
            Ok(l) => Some(l),
            Err(EngineError::NoBasis(_)) => None,
            Err(other) => return Err(other),
        };
        // Their decisions too: the purpose's grant above shows they allowed personalisation.
        let decisions = e.decision_log(&who, 20, &actor)?;
        Ok((view, lifecycle, decisions))
    })
    .await;
    match page {
        Ok((view, lifecycle, decisions)) => html(
            StatusCode::OK,
            pages::customer_for_purpose(&session, &view, &lifecycle, &decisions),
        ),
        Err(EngineError::NoBasis(_)) => html(
            StatusCode::FORBIDDEN,
            pages::refused(
                &session,
                Area::Customers,
                "This customer has not allowed personalisation: a marketer may not see them.",
            ),
        ),
        Err(EngineError::NotFound(_)) => html(
            StatusCode::NOT_FOUND,
            pages::customers(&session, &id, Some("No such customer.")),
        ),
        Err(e) => fault(e),
    }
}

/// Which pages of the privacy page's lists to show.
#[derive(Deserialize, Default, Clone, Copy)]
struct PrivacyPaging {
    audit_before: Option<i64>,
    requests_page: Option<usize>,
}

async fn privacy_page(
    engine: &AppState,
    session: OperatorSession,
    status: StatusCode,
    note: pages::PrivacyNote,
) -> Response {
    privacy_page_at(engine, session, status, note, PrivacyPaging::default()).await
}

async fn privacy_page_at(
    engine: &AppState,
    session: OperatorSession,
    status: StatusCode,
    note: pages::PrivacyNote,
    paging: PrivacyPaging,
) -> Response {
    let e = engine.clone();
    let data = run(move || {
        let all = e.dsr_list(false)?;
        let total = all.len();
        let page = paging
            .requests_page
            .unwrap_or(0)
            .min(total.saturating_sub(1) / pages::REQUESTS_PER_PAGE);
        let requests = all
            .into_iter()
            .skip(page * pages::REQUESTS_PER_PAGE)
            .take(pages::REQUESTS_PER_PAGE)
            .collect();
        let audit = e.audit_latest(paging.audit_before.unwrap_or(i64::MAX), AUDIT_SHOWN)?;
        let older_audit = (audit.len() == AUDIT_SHOWN as usize)
            .then(|| audit.last().map(|(seq, _)| *seq))
            .flatten();
        Ok(pages::PrivacyData {
            requests,
            keys: e.keys()?,
            purposes: e.purposes(),
            audit,
            older_audit,
            requests_page: page,
            requests_total: total,
        })
    })
    .await;
    match data {
        Ok(data) => html(status, pages::privacy(&session, &data, &note)),
        Err(e) => fault(e),
    }
}

async fn privacy(
    State(engine): State<AppState>,
    headers: HeaderMap,
    paging: Result<Query<PrivacyPaging>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let paging = paging.map(|Query(p)| p).unwrap_or_default();
    match operator(&engine, &headers, Area::Privacy).await {
        Ok(s) => {
            privacy_page_at(&engine, s, StatusCode::OK, pages::PrivacyNote::None, paging).await
        }
        Err(r) => r,
    }
}

/// The page after an action: what it did, or why it was refused (nothing changed).
async fn after(
    engine: &AppState,
    session: OperatorSession,
    done: Result<String, EngineError>,
) -> Response {
    match done {
        Ok(m) => privacy_page(engine, session, StatusCode::OK, pages::PrivacyNote::Done(m)).await,
        Err(
            EngineError::Invalid { message, .. }
            | EngineError::NotFound(message)
            | EngineError::Conflict(message),
        ) => {
            privacy_page(
                engine,
                session,
                StatusCode::BAD_REQUEST,
                pages::PrivacyNote::Refused(format!("Refused: {message}")),
            )
            .await
        }
        Err(e) => fault(e),
    }
}

async fn verify_audit(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, _) = match signed_form(&engine, &headers, Some(Area::Privacy), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let e = engine.clone();
    match run(move || e.verify_audit()).await {
        Ok(v) => {
            privacy_page(
                &engine,
                session,
                StatusCode::OK,
                pages::PrivacyNote::Audit(v),
            )
            .await
        }
        Err(e) => fault(e),
    }
}

async fn request_step(
    State(engine): State<AppState>,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, pairs) = match signed_form(&engine, &headers, Some(Area::Privacy), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, actor) = (engine.clone(), session.actor());
    let days = field(&pairs, "days").trim().parse::<i64>();
    let reason = field(&pairs, "reason").trim().to_owned();
    let code = field(&pairs, "code").trim().to_owned();
    let done = run(move || match step.as_str() {
        "process" => {
            let shown = e.dsr_show(&id)?;
            if shown.kind == "access" {
                return Err(EngineError::Invalid { field: "kind".into(), message: "an access request writes an export: carry it out with `consentric dsr process`".into() });
            }
            let v = e.dsr_process(&id, &actor, &mut std::io::sink())?;
            Ok(format!("Request {} is {}.", v.request_id, v.status))
        }
        "verify" => {
            let v = e.dsr_verify(&id, &code, &actor)?;
            Ok(format!("Request {} is {}.", v.request_id, v.status))
        }
        "extend" => {
            let days = days.map_err(|_| EngineError::Invalid { field: "days".into(), message: "a whole number of days".into() })?;
            if reason.is_empty() {
                return Err(EngineError::Invalid { field: "reason".into(), message: "say why the deadline moves".into() });
            }
            let v = e.dsr_extend(&id, days, &reason, &actor)?;
            Ok(format!("Request {} is now due {}.", v.request_id, v.due_at))
        }
        other => Err(EngineError::NotFound(format!("step {other}"))),
    })
    .await;
    after(&engine, session, done).await
}

async fn revoke_key(
    State(engine): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, _) = match signed_form(&engine, &headers, Some(Area::Privacy), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, actor) = (engine.clone(), session.actor());
    let done = run(move || {
        e.revoke_key(&id, &actor)
            .map(|k| format!("Key {} is revoked.", k.key_id))
    })
    .await;
    after(&engine, session, done).await
}

async fn segments_page(
    engine: &AppState,
    session: OperatorSession,
    status: StatusCode,
    form: (String, String),
    message: Option<String>,
    proposal: Option<&consentric_engine::SegmentProposal>,
) -> Response {
    let e = engine.clone();
    let list = run(move || {
        e.segments()?
            .into_iter()
            .map(|s| {
                let size = e.segment_members(&s.name, 0)?.size;
                Ok((s, size))
            })
            .collect::<Result<Vec<_>, EngineError>>()
    })
    .await;
    match list {
        Ok(list) => html(
            status,
            pages::segments(
                &session,
                &list,
                (&form.0, &form.1),
                message.as_deref(),
                proposal,
            ),
        ),
        Err(e) => fault(e),
    }
}

async fn segments(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    match operator(&engine, &headers, Area::Segments).await {
        Ok(s) => segments_page(&engine, s, StatusCode::OK, Default::default(), None, None).await,
        Err(r) => r,
    }
}

async fn define_segment(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, pairs) = match signed_form(&engine, &headers, Some(Area::Segments), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (name, condition) = (
        field(&pairs, "name").trim().to_owned(),
        field(&pairs, "condition").to_owned(),
    );
    let definition: serde_json::Value = match serde_json::from_str(&condition) {
        Ok(v) => v,
        Err(e) => {
            let m = format!("The condition is not JSON: {e}. Nothing was changed.");
            return segments_page(
                &engine,
                session,
                StatusCode::BAD_REQUEST,
                (name, condition),
                Some(m),
                None,
            )
            .await;
        }
    };
    let (e, actor, n) = (engine.clone(), session.actor(), name.clone());
    match run(move || e.define_segment(&n, &definition, &actor)).await {
        Ok(view) => {
            let to = format!("/console/segments/{}", view.name);
            (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
        }
        Err(EngineError::Invalid { field, message }) => {
            let m = format!("{field}: {message}. Nothing was changed.");
            segments_page(
                &engine,
                session,
                StatusCode::BAD_REQUEST,
                (name, condition),
                Some(m),
                None,
            )
            .await
        }
        Err(e) => fault(e),
    }
}

/// Which page of a segment's members to show.
#[derive(Deserialize)]
struct MembersPage {
    page: Option<usize>,
}

async fn segment(
    State(engine): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    paging: Result<Query<MembersPage>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let page = paging
        .ok()
        .and_then(|Query(p)| p.page)
        .unwrap_or(0)
        .min(100_000);
    let session = match operator(&engine, &headers, Area::Segments).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, actor) = (engine.clone(), session.actor());
    let found = run(move || {
        let Some(view) = e.segments()?.into_iter().find(|s| s.name == name) else {
            return Err(EngineError::NotFound(format!("segment {name}")));
        };
        let preview =
            e.preview_segment(&view.name, (page + 1) * pages::MEMBERS_PER_PAGE, &actor)?;
        Ok((view, preview))
    })
    .await;
    match found {
        Ok((view, preview)) => html(
            StatusCode::OK,
            pages::segment(&session, &view, &preview, page),
        ),
        Err(EngineError::NotFound(m)) => html(
            StatusCode::NOT_FOUND,
            pages::refused(&session, Area::Segments, &format!("No {m}.")),
        ),
        Err(e) => fault(e),
    }
}

async fn actions(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    let session = match operator(&engine, &headers, Area::Actions).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let e = engine.clone();
    match run(move || e.action_catalogue()).await {
        Ok(c) => html(StatusCode::OK, pages::actions(&session, &c)),
        Err(e) => fault(e),
    }
}

async fn analytics(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    let session = match operator(&engine, &headers, Area::Analytics).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, me) = (engine.clone(), session.actor());
    match run(move || e.analytics_budget(&me)).await {
        Ok(budgets) => html(
            StatusCode::OK,
            pages::analytics(
                &session,
                &budgets,
                &pages::QueryForm {
                    epsilon: "0.5".into(),
                    ..Default::default()
                },
                None,
                None,
            ),
        ),
        Err(e) => fault(e),
    }
}

/// The query the form describes, as the API takes it (blank fields left out).
fn query_of(f: &pages::QueryForm) -> Result<consentric_engine::analytics::QueryRequest, String> {
    let mut q = serde_json::Map::new();
    q.insert("query".into(), json!(f.query));
    let number = |name: &str, v: &str| -> Result<Option<f64>, String> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<f64>()
            .map(Some)
            .map_err(|_| format!("{name} must be a number"))
    };
    if let Some(e) = number("ε", &f.epsilon)? {
        q.insert("epsilon".into(), json!(e));
    }
    for (key, v) in [("measure", &f.measure), ("by", &f.by)] {
        if !v.trim().is_empty() {
            q.insert(key.into(), json!(v.trim()));
        }
    }
    match (
        number("the lower bound", &f.low)?,
        number("the upper bound", &f.high)?,
    ) {
        (Some(l), Some(h)) => {
            q.insert("bounds".into(), json!([l, h]));
        }
        (None, None) => {}
        _ => return Err("give both bounds or neither".into()),
    }
    if let Some(k) = number("k", &f.k)? {
        q.insert("k".into(), json!(k as u64));
    }
    let categories: Vec<&str> = f
        .categories
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if !categories.is_empty() {
        q.insert("categories".into(), json!(categories));
    }
    serde_json::from_value(serde_json::Value::Object(q)).map_err(|e| e.to_string())
}

async fn ask(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, pairs) = match signed_form(&engine, &headers, Some(Area::Analytics), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = pages::QueryForm {
        query: field(&pairs, "query").to_owned(),
        epsilon: field(&pairs, "epsilon").to_owned(),
        measure: field(&pairs, "measure").to_owned(),
        low: field(&pairs, "low").to_owned(),
        high: field(&pairs, "high").to_owned(),
        by: field(&pairs, "by").to_owned(),
        categories: field(&pairs, "categories").to_owned(),
        k: field(&pairs, "k").to_owned(),
    };
    let (e, me) = (engine.clone(), session.actor());
    let request = query_of(&f);
    let result = run(move || {
        let answer = match request {
            Ok(q) => match e.analytics_query(&me, &q) {
                Ok(release) => Ok(release),
                Err(EngineError::Invalid { field, message }) => Err(format!("{field}: {message}")),
                Err(refused @ EngineError::BudgetExceeded { .. }) => Err(refused.to_string()),
                Err(other) => return Err(other),
            },
            Err(m) => Err(m),
        };
        Ok((e.analytics_budget(&me)?, answer))
    })
    .await;
    match result {
        Ok((budgets, Ok(release))) => html(
            StatusCode::OK,
            pages::analytics(&session, &budgets, &f, Some(&release), None),
        ),
        Ok((budgets, Err(message))) => html(
            StatusCode::BAD_REQUEST,
            pages::analytics(&session, &budgets, &f, None, Some(&message)),
        ),
        Err(e) => fault(e),
    }
}

async fn cleanroom_page(
    engine: &AppState,
    session: OperatorSession,
    status: StatusCode,
    note: pages::CleanroomNote,
) -> Response {
    let e = engine.clone();
    match run(move || e.cleanroom_sessions()).await {
        Ok(list) => html(status, pages::cleanroom(&session, &list, &note)),
        Err(e) => fault(e),
    }
}

async fn cleanroom(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    match operator(&engine, &headers, Area::Cleanroom).await {
        Ok(s) => cleanroom_page(&engine, s, StatusCode::OK, pages::CleanroomNote::None).await,
        Err(r) => r,
    }
}

fn output_of(raw: &str) -> Result<consentric_engine::cleanroom::Output, EngineError> {
    serde_json::from_value(json!(raw)).map_err(|_| EngineError::Invalid {
        field: "output".into(),
        message: "cardinality or matches".into(),
    })
}

async fn invite(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, pairs) = match signed_form(&engine, &headers, Some(Area::Cleanroom), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (partner, output, sum) = (
        field(&pairs, "partner").trim().to_owned(),
        field(&pairs, "output").to_owned(),
        field(&pairs, "sum") == "yes",
    );
    let (e, actor) = (engine.clone(), session.actor());
    match run(move || e.cleanroom_invite(&partner, output_of(&output)?, sum, &actor)).await {
        Ok(i) => {
            cleanroom_page(
                &engine,
                session,
                StatusCode::OK,
                pages::CleanroomNote::Invited(i),
            )
            .await
        }
        Err(EngineError::Invalid { message, .. }) => {
            cleanroom_page(
                &engine,
                session,
                StatusCode::BAD_REQUEST,
                pages::CleanroomNote::Refused(format!("Nothing was changed: {message}")),
            )
            .await
        }
        Err(e) => fault(e),
    }
}

async fn join(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, pairs) = match signed_form(&engine, &headers, Some(Area::Cleanroom), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let joining = consentric_engine::cleanroom::Joining {
        host_url: field(&pairs, "host_url").trim().to_owned(),
        session: field(&pairs, "session").trim().to_owned(),
        token: field(&pairs, "token").trim().to_owned(),
        partner: field(&pairs, "partner").trim().to_owned(),
        output: consentric_engine::cleanroom::Output::Cardinality,
        sum: false,
    };
    let (e, actor) = (engine.clone(), session.actor());
    match run(move || e.cleanroom_join(&joining, &actor)).await {
        Ok(v) => {
            cleanroom_page(
                &engine,
                session,
                StatusCode::OK,
                pages::CleanroomNote::Done(format!(
                    "Joined session {}; run it when the partner is ready.",
                    v.session
                )),
            )
            .await
        }
        Err(EngineError::Invalid { message, .. } | EngineError::Conflict(message)) => {
            cleanroom_page(
                &engine,
                session,
                StatusCode::BAD_REQUEST,
                pages::CleanroomNote::Refused(format!("Nothing was changed: {message}")),
            )
            .await
        }
        Err(EngineError::Session(e)) => {
            cleanroom_page(
                &engine,
                session,
                StatusCode::BAD_REQUEST,
                pages::CleanroomNote::Refused(format!("Nothing was changed: {e}")),
            )
            .await
        }
        Err(e) => fault(e),
    }
}

async fn run_session(
    State(engine): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, _) = match signed_form(&engine, &headers, Some(Area::Cleanroom), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match crate::partner::run(engine.clone(), &id).await {
        Ok(()) => {
            cleanroom_page(
                &engine,
                session,
                StatusCode::OK,
                pages::CleanroomNote::Done(format!("Session {id} ran.")),
            )
            .await
        }
        Err(e) => {
            tracing::warn!(error = %e, session = %id, "a clean-room run from the console failed");
            cleanroom_page(
                &engine,
                session,
                StatusCode::BAD_GATEWAY,
                pages::CleanroomNote::Refused(format!("The run did not complete: {e}")),
            )
            .await
        }
    }
}

async fn account(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    match anyone(&engine, &headers).await {
        Ok(s) => html(StatusCode::OK, pages::account(&s, home(&s).0, None, None)),
        Err(r) => r,
    }
}

async fn change_password(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, pairs) = match signed_form(&engine, &headers, None, form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (current, new) = (
        field(&pairs, "current").to_owned(),
        field(&pairs, "new").to_owned(),
    );
    let (e, name, actor) = (engine.clone(), session.name().to_owned(), session.actor());
    let done = run(move || {
        // The current password proves it is them (a session left open is not enough); a
        // wrong one counts towards the lock-out like any log-in.
        e.operator_check_password(&name, &current)?;
        e.set_operator_password(&name, &new, &actor)
    })
    .await;
    match done {
        Ok(()) => {
            let mut r = to_login();
            r.headers_mut().insert(
                SET_COOKIE,
                HeaderValue::from_static(
                    "consentric_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
                ),
            );
            r
        }
        Err(EngineError::Invalid { message, .. } | EngineError::SignedOut(message)) => html(
            StatusCode::BAD_REQUEST,
            pages::account(
                &session,
                home(&session).0,
                Some(&format!("Nothing was changed: {message}")),
                None,
            ),
        ),
        Err(e) => fault(e),
    }
}

async fn enable_totp(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, _) = match signed_form(&engine, &headers, None, form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, name, actor) = (engine.clone(), session.name().to_owned(), session.actor());
    match run(move || e.enable_operator_totp(&name, &actor)).await {
        Ok((secret, uri)) => html(
            StatusCode::OK,
            pages::account(&session, home(&session).0, None, Some((&secret, &uri))),
        ),
        Err(e) => fault(e),
    }
}

/// k-means proposals, on demand (they read every customer with a basis).
async fn propose(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, _) = match signed_form(&engine, &headers, Some(Area::Segments), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, actor) = (engine.clone(), session.actor());
    match run(move || e.propose_segments(PROPOSALS_MAX_K, &actor)).await {
        Ok(p) => {
            segments_page(
                &engine,
                session,
                StatusCode::OK,
                Default::default(),
                None,
                Some(&p),
            )
            .await
        }
        Err(EngineError::Conflict(m) | EngineError::Invalid { message: m, .. }) => {
            segments_page(
                &engine,
                session,
                StatusCode::BAD_REQUEST,
                Default::default(),
                Some(m),
                None,
            )
            .await
        }
        Err(e) => fault(e),
    }
}

/// The most clusters a proposal tries.
const PROPOSALS_MAX_K: usize = 8;

async fn run_retention(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, _) = match signed_form(&engine, &headers, Some(Area::Privacy), form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, actor) = (engine.clone(), session.actor());
    match run(move || e.sweep_retention(&actor)).await {
        Ok(report) => {
            privacy_page(
                &engine,
                session,
                StatusCode::OK,
                pages::PrivacyNote::Retention(report),
            )
            .await
        }
        Err(e) => fault(e),
    }
}

/// The size of a condition being typed, as JSON for the page's script: `{"size", "evaluated"}`
/// or `{"error"}`. Same-origin only (the session cookie is SameSite=Strict, and the CSRF token
/// is checked as for any form).
async fn size_segment(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let answer =
        |status: StatusCode, body: serde_json::Value| (status, axum::Json(body)).into_response();
    let session = match operator(&engine, &headers, Area::Segments).await {
        Ok(s) => s,
        Err(_) => {
            return answer(
                StatusCode::FORBIDDEN,
                json!({"error": "log in as an operator who may define segments"}),
            )
        }
    };
    let Ok(Form(pairs)) = form else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "that form could not be read"}),
        );
    };
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return answer(
            StatusCode::FORBIDDEN,
            json!({"error": "the security token is missing or wrong"}),
        );
    }
    let definition: serde_json::Value = match serde_json::from_str(field(&pairs, "condition")) {
        Ok(v) => v,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("not JSON yet: {e}")}),
            )
        }
    };
    let (e, actor) = (engine.clone(), session.actor());
    match run(move || e.size_segment(&definition, &actor)).await {
        Ok(p) => answer(
            StatusCode::OK,
            json!({"size": p.size, "evaluated": p.evaluated}),
        ),
        Err(EngineError::Invalid { message, .. }) => {
            answer(StatusCode::BAD_REQUEST, json!({"error": message}))
        }
        Err(e) => fault(e),
    }
}
