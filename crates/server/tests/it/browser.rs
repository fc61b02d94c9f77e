//! Segment's own analytics.js, unchanged, in a real headless Chromium: the standard snippet
//! on a page of another site, pointed at the server under test by its host alone.

use std::time::{Duration, Instant};

use consentric_testkit::browser::{serve_page, Browser};
use consentric_testkit::TestDb;
use serde_json::Value;

use crate::app::spawn_app;

/// Segment's standard snippet, pointed at `app` by its host alone, with its browser key.
pub fn segment_snippet(app: &crate::app::TestApp) -> String {
    let host = app.base.trim_start_matches("http://");
    include_str!("../fixtures/browser/segment_snippet.min.js")
        .replace("CONSENTRIC_HOST", host)
        .replace("WRITE_KEY", &app.browser)
        .replace("https://", "http://")
}

#[test]
fn segment_s_analytics_js_loads_from_here_and_its_events_are_stored() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let snippet = segment_snippet(&app);
    let page = serve_page(format!(
        r#"<!doctype html><html><head><title>Shop</title><script>{snippet}</script></head>
<body><p>A shop</p><script>
analytics.ready(function () {{ window.__ready = true; }});
analytics.identify("u-browser", {{ plan: "pro" }});
analytics.track("Product Viewed", {{ sku: "A-1" }});
analytics.page("Home");
</script></body></html>"#
    ));
    assert_ne!(page, app.base, "the page is another site than the server");
    browser.goto(&page);
    browser.wait_for("return window.__ready === true", Duration::from_secs(30));

    // The three calls reach the server (analytics.js sends them one by one, over CORS).
    let started = Instant::now();
    let events = loop {
        let r = app.get("/v1/profiles/u-browser/events?limit=10");
        if r.status() == 200 {
            let body: Value = r.json().expect("json");
            let events = body["events"].as_array().cloned().unwrap_or_default();
            if events.len() >= 3 {
                break events;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "analytics.js's events were not stored; console: {:?}",
            browser.console()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"]["type"].as_str())
        .collect();
    for t in ["identify", "track", "page"] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    let sent: Vec<(String, String)> = browser.requests();
    let from_here = |path: &str| {
        sent.iter()
            .any(|(_, url)| url.starts_with(&format!("{}{path}", app.base)))
    };
    assert!(
        from_here("/analytics.js/v1/"),
        "the library came from the server: {sent:?}"
    );
    assert!(from_here("/v1/projects/"), "so did its settings: {sent:?}");
    assert!(
        !sent
            .iter()
            .any(|(_, url)| url.contains("segment.com") || url.contains("segment.io")),
        "nothing went to Segment: {sent:?}"
    );
}
