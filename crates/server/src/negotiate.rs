//! Headers that list weighted choices (`Accept-Encoding`, `Accept-Language`): each item with
//! its quality, read the same way wherever the server negotiates.

use axum::http::{HeaderMap, HeaderName};

/// The items of every `name` header, in the order sent: each token (trimmed) with its `q`
/// (1 when absent or unreadable as a number).
pub(crate) fn weighted<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = (&'h str, f32)> + 'h {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (token, q)
        })
}
