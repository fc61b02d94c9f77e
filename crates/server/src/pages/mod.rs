//! Pages people read in a browser, rendered on the server: HTML escaped by construction (maud),
//! no script, every asset served from this binary, and headers that hold the page to that
//! (a Content-Security-Policy that allows nothing but this origin's stylesheet and forms).

pub(crate) mod console;
pub(crate) mod forms;
pub(crate) mod privacy;

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::Markup;

/// What a page may load: its own stylesheet and images, forms posted to itself; no script,
/// no frames around it.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page with its status and the headers every page carries: never cached (it holds
/// personal data), never framed, never sniffed, no referrer.
pub(crate) fn page(status: StatusCode, markup: Markup) -> Response {
    page_with(status, markup, PAGE_CSP)
}

/// [`page`] under another Content-Security-Policy (the console's allows its own scripts).
pub(crate) fn page_with(status: StatusCode, markup: Markup, csp: &'static str) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        axum::http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    r
}

/// A stored time (RFC 3339) as people write it: `13 June 2024, 10:21 UTC`; as given if it is
/// not one.
pub(crate) fn when(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_owned(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .format("%-d %B %Y, %H:%M UTC")
                .to_string()
        },
    )
}

/// A stored time as a day: `13 June 2024`.
pub(crate) fn day(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_owned(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .format("%-d %B %Y")
                .to_string()
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_read_as_people_write_them() {
        assert_eq!(
            super::when("2024-05-14T10:21:33.517Z"),
            "14 May 2024, 10:21 UTC"
        );
        assert_eq!(super::day("2024-06-13T10:21:33.517Z"), "13 June 2024");
        assert_eq!(super::day("soon"), "soon");
    }
}
