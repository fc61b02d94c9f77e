//! The refusals every operation can give, added to the document where a handler did not
//! describe them itself, so that a client generated from it knows each status it may see and
//! that every one carries the `ErrorBody` shape (`json_errors` makes sure of the latter).

use serde_json::{json, Value};

/// The methods an operation of the document can have.
pub(super) const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Adds the statuses an operation can answer with because of what it takes: a body or
/// parameters (400), a key or token (401), an API key's scope (403), an id in the path (404), a
/// body's arrival and size (408, 413), the edge's limits on the head (414, 431) and on load
/// (429), and the database (500).
pub(super) fn document(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                add(path, op);
            }
        }
    }
}

fn add(path: &str, op: &mut Value) {
    let schemes = security_schemes(op);
    let has_body = op.get("requestBody").is_some();
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let mut statuses: Vec<(&str, &str)> = Vec::new();
    if has_body || has_params {
        statuses.push((
            "400",
            "Malformed input; `error.field` names the field or parameter",
        ));
    }
    if schemes.iter().any(|s| s == "session") {
        statuses.push(("401", "No session token, or not this session's"));
    } else if !schemes.is_empty() {
        statuses.push((
            "401",
            "No key, an unknown key, or an Authorization header that is neither Basic nor Bearer",
        ));
        statuses.push((
            "403",
            "The key's scope does not allow this (a write key reading profiles, say)",
        ));
    }
    if path.contains('{') {
        statuses.push(("404", "Nothing with this id"));
    }
    if has_body {
        statuses.push(("413", "The body is over the limit"));
    }
    if has_body {
        statuses.push((
            "408",
            "The body did not arrive within the body timeout (`[server] body_timeout_seconds`)",
        ));
    }
    statuses.push(("414", "The request target is over 8 KiB"));
    statuses.push(("431", "Over 100 header fields, or over 32 KiB of them"));
    if path.starts_with("/v1/") {
        statuses.push((
            "429",
            "The server is working on as many requests as it takes (`overloaded`), or — ingest with a browser key — this client sent more than its rate (`rate_limited`); `Retry-After` says when to retry, and nothing of the request was stored",
        ));
    }
    if path.starts_with("/v1/") {
        statuses.push((
            "500",
            "An internal fault: logged with its cause, answered without it",
        ));
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, description) in statuses {
        responses.entry(status).or_insert_with(|| {
            json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
            })
        });
    }
    if let Some(unauthorized) = responses.get_mut("401").and_then(Value::as_object_mut) {
        let also = if schemes.iter().any(|s| s == "basic") {
            " (Basic credentials are accepted too)"
        } else {
            ""
        };
        unauthorized.insert(
            "headers".into(),
            json!({"WWW-Authenticate": {
                "description": format!("`Bearer realm=\"consentric\"`{also}"),
                "required": true,
                "schema": {"type": "string"}
            }}),
        );
    }
}

/// The names of the security schemes any of the operation's requirements use.
fn security_schemes(op: &Value) -> Vec<String> {
    op.get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys().cloned())
        .collect()
}
