//! The OpenAPI document, generated from the handlers' annotations; every endpoint joins here.
//! [`document`] adds what the annotations cannot say well: the Segment calls' schemas and the
//! refusals every operation can give.

mod errors;
mod segment;

use serde_json::{json, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    analytics, cleanroom, consent, decisions, dsr, ingest, keys, lifecycle, ops, profiles,
};

/// Consentric's API description, served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Consentric", description = "Privacy-first customer lifecycle platform. Ingest is Segment-compatible."),
    paths(
        ingest::identify, ingest::track, ingest::page, ingest::screen, ingest::group, ingest::alias, ingest::batch,
        profiles::profile, profiles::events, profiles::decisions, profiles::identities, profiles::view, profiles::erase, profiles::export, profiles::rectify,
        consent::purposes, consent::consent, consent::set_consent, consent::history, consent::restriction,
        dsr::file, dsr::list, dsr::show, dsr::verify, dsr::extend, dsr::process,
        lifecycle::customer, lifecycle::summary, lifecycle::fit, lifecycle::recompute,
        decisions::decide, decisions::preview_decision, decisions::train, decisions::list, decisions::define, decisions::preview, decisions::delete, decisions::propose, decisions::members, decisions::refresh,
        analytics::query, analytics::budget, analytics::grant,
        cleanroom::invite, cleanroom::list, cleanroom::status, cleanroom::blinded, cleanroom::intersect, cleanroom::sum, cleanroom::join, cleanroom::run,
        keys::list, keys::revoke, keys::set_kind,
        ops::healthz, ops::readyz, ops::metrics, serve,
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
        (name = "keys", description = "API keys: list, revoke, browser or server (admin keys)"),
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
        let mut session = Http::new(HttpAuthScheme::Bearer);
        session.description = Some(
            "A clean-room session's token, given to the partner with the invitation".to_owned(),
        );
        components.add_security_scheme("session", SecurityScheme::Http(session));
    }
}

/// This document (`GET /openapi.json`), built once.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi", responses((status = 200, description = "OpenAPI 3.1")))]
pub(crate) async fn serve() -> axum::Json<Value> {
    static DOCUMENT: std::sync::LazyLock<Value> = std::sync::LazyLock::new(document);
    axum::Json(DOCUMENT.clone())
}

/// The document served at `/openapi.json`: [`ApiDoc`], with each ingest endpoint's body
/// described by its Segment call's schema, and every operation's possible refusals.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.extend(segment::components());
    }
    let bodies = segment::CALLS
        .iter()
        .map(|(name, call)| (format!("/v1/{call}"), "post", *name))
        .chain([
            ("/v1/batch".to_owned(), "post", "Batch"),
            ("/v1/segments/{name}".to_owned(), "put", "SegmentCondition"),
        ]);
    for (path, method, name) in bodies {
        let pointer = format!(
            "{}/requestBody/content/application~1json/schema",
            operation(&path, method)
        );
        if let Some(schema) = doc.pointer_mut(&pointer) {
            *schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        }
    }
    // Every code an error can carry, from the one table the errors are made from.
    if let Some(code) = doc.pointer_mut("/components/schemas/ErrorDetail/properties/code") {
        *code = json!({
            "type": "string",
            "enum": crate::codes::ALL.iter().map(|c| c.code).collect::<Vec<_>>(),
            "description": crate::codes::markdown_table(),
        });
    }
    // What utoipa's attributes cannot say: a consent change names at least one purpose.
    if let Some(purposes) = doc.pointer_mut("/components/schemas/ConsentChange/properties/purposes")
    {
        purposes["minProperties"] = json!(1);
    }
    errors::document(&mut doc);
    u32_is_not_int32(&mut doc);
    links(&mut doc);
    doc
}

/// The JSON pointer to an operation of the document.
fn operation(path: &str, method: &str) -> String {
    format!("/paths/{}/{method}", path.replace('/', "~1"))
}

/// Where an answer leads: the id a request made or named, and the operations that take it.
/// Clients (and Schemathesis's stateful phase) follow these instead of guessing ids.
const LINKS: [(&str, &str, &str, &str, &[&str]); 5] = [
    (
        "/v1/dsr",
        "post",
        "201",
        "$response.body#/request_id",
        &["show", "verify", "extend", "process"],
    ),
    (
        "/v1/identify",
        "post",
        "200",
        "$request.body#/userId",
        &[
            "profile",
            "events",
            "decision_log",
            "identities",
            "view",
            "export",
            "consent",
            "history",
            "restriction",
            "customer",
            "decide",
            "preview_decision",
            "erase",
        ],
    ),
    (
        "/v1/segments/{name}",
        "put",
        "200",
        "$request.path.name",
        &["preview", "members", "delete"],
    ),
    (
        "/v1/cleanroom/sessions",
        "post",
        "200",
        "$response.body#/session",
        &["status"],
    ),
    (
        "/v1/cleanroom/joined",
        "post",
        "200",
        "$response.body#/session",
        &["status"],
    ),
];

fn links(doc: &mut Value) {
    // Each operation's own name for the id it takes.
    let mut parameter_of = std::collections::HashMap::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for op in item.as_object().into_iter().flat_map(|m| m.values()) {
                if let (Some(id), Some(name)) = (
                    op["operationId"].as_str(),
                    path.split('{').nth(1).and_then(|s| s.split('}').next()),
                ) {
                    parameter_of.insert(id.to_owned(), name.to_owned());
                }
            }
        }
    }
    for (path, method, status, value, targets) in LINKS {
        let pointer = format!("{}/responses/{status}", operation(path, method));
        let Some(response) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else {
            continue;
        };
        let mut links = serde_json::Map::new();
        for target in targets {
            if let Some(parameter) = parameter_of.get(*target) {
                links.insert(
                    target.to_string(),
                    json!({"operationId": target, "parameters": {parameter: value}}),
                );
            }
        }
        response.insert("links".into(), Value::Object(links));
    }
}

/// utoipa describes a `u32` as OpenAPI's `int32` (at most 2³¹ − 1) with a minimum of 0 (the
/// API has no `u8`, `u16` or `i32` with that minimum); the server takes up to 2³² − 1, so say
/// that instead.
fn u32_is_not_int32(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str) == Some("int32")
                && map.get("minimum").and_then(Value::as_f64) == Some(0.0)
                && !map.contains_key("maximum")
            {
                map.remove("format");
                map.insert("maximum".into(), json!(u32::MAX));
            }
            map.values_mut().for_each(u32_is_not_int32);
        }
        Value::Array(items) => items.iter_mut().for_each(u32_is_not_int32),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in errors::METHODS {
                if let Some(op) = item.get(method) {
                    out.push((path.clone(), method.to_owned(), op.clone()));
                }
            }
        }
        out
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_link_names_an_operation_and_its_parameter() {
        let doc = document();
        let ops = operations(&doc);
        let mut count = 0;
        for (path, method, op) in &ops {
            for response in op["responses"].as_object().expect("responses").values() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    count += 1;
                    let target = ops
                        .iter()
                        .find(|(_, _, o)| o["operationId"] == link["operationId"])
                        .unwrap_or_else(|| {
                            panic!("{method} {path}: link {name} names no operation")
                        });
                    for parameter in link["parameters"].as_object().expect("parameters").keys() {
                        assert!(
                            target.0.contains(&format!("{{{parameter}}}")),
                            "{method} {path}: link {name} fills `{parameter}`, which {} does not take",
                            target.0
                        );
                    }
                }
            }
        }
        assert!(count >= 20, "{count} links");
    }

    #[test]
    fn every_operation_id_is_unique() {
        // Code generators name their methods after them; OpenAPI requires them unique.
        let doc = document();
        let mut ids: Vec<String> = operations(&doc)
            .iter()
            .map(|(path, method, op)| {
                op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                    .to_owned()
            })
            .collect();
        let all = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all, "duplicate operationIds");
    }

    #[test]
    fn the_path_parameters_declared_are_those_of_the_path() {
        let doc = document();
        for (path, method, op) in operations(&doc) {
            let mut in_template: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(name, _)| name))
                .collect();
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut declared: Vec<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            in_template.sort_unstable();
            declared.sort_unstable();
            assert_eq!(in_template, declared, "{method} {path}: path parameters");
        }
    }

    #[test]
    fn every_operation_documents_its_refusals_as_error_bodies() {
        let doc = document();
        let error_body = json!({"$ref": "#/components/schemas/ErrorBody"});
        for (path, method, op) in operations(&doc) {
            let responses = op["responses"].as_object().expect("responses");
            let has = |status: &str| responses.contains_key(status);
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(has("401"), "{method} {path}: 401");
            }
            if op.get("requestBody").is_some() {
                assert!(has("400") && has("413"), "{method} {path}: 400 and 413");
            }
            if path.contains('{') {
                assert!(has("404"), "{method} {path}: 404");
            }
            if path.starts_with("/v1/") {
                assert!(has("500"), "{method} {path}: 500");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"], error_body,
                        "{method} {path}: {status} is not an ErrorBody"
                    );
                }
            }
        }
    }

    #[test]
    fn a_u32_parameter_is_documented_up_to_its_maximum() {
        let doc = document();
        let params = doc["paths"]["/v1/segments/{name}"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .clone();
        let limit = params.iter().find(|p| p["name"] == "limit").expect("limit");
        assert_eq!(limit["schema"]["maximum"], json!(u32::MAX), "{limit}");
        assert!(limit["schema"].get("format").is_none(), "{limit}");
    }

    #[test]
    fn ingest_bodies_are_the_segment_calls_and_every_reference_resolves() {
        let doc = document();
        for (name, call) in segment::CALLS {
            assert_eq!(
                doc["paths"][format!("/v1/{call}")]["post"]["requestBody"]["content"]
                    ["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{name}")
            );
        }
        let track = &doc["components"]["schemas"]["Track"]["allOf"][1];
        assert_eq!(track["required"], json!(["event"]));
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 50);
        for r in all {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn the_error_codes_documented_are_the_table() {
        let doc = document();
        let listed: Vec<&str> = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
            ["enum"]
            .as_array()
            .expect("an enum of codes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let table: Vec<&str> = crate::codes::ALL.iter().map(|c| c.code).collect();
        assert_eq!(listed, table);
        assert!(listed.contains(&"budget_exceeded") && listed.contains(&"malformed_json"));
    }
}
