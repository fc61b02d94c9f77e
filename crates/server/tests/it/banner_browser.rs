//! Consentric's consent banner on a page of another site, in a real headless Chromium: nothing
//! stored or sent before a choice (asserted on the browser's own network log, cookies and
//! storage), a refusal that sends nothing but itself, a grant whose events are stored with the
//! consent record, Global Privacy Control, a site with a TCF CMP, and Segment's analytics.js
//! held behind the banner.

use std::time::{Duration, Instant};

use consentric_testkit::browser::{serve_page, Browser};
use consentric_testkit::TestDb;
use serde_json::{json, Value};

use crate::app::{spawn_app, TestApp};
use crate::privacy_centre_browser::{axe_source, check_page};

/// A page of another site with the banner's tag (and `head`, before it, if given).
fn shop_page(app: &TestApp, head: &str, attributes: &str) -> String {
    serve_page(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>A shop</title>{head}
<script src="{}/consent/v1/{}/consent.js" {attributes}></script></head>
<body><main><h1>A shop</h1><p>Things for sale.</p></main></body></html>"#,
        app.base, app.browser
    ))
}

fn event_requests(browser: &Browser, app: &TestApp) -> Vec<String> {
    browser
        .requests()
        .into_iter()
        .filter(|(method, url)| {
            method == "POST"
                && ["/v1/b", "/v1/t", "/v1/p", "/v1/i", "/v1/batch", "/v1/track"]
                    .iter()
                    .any(|p| url.starts_with(&format!("{}{p}", app.base)))
        })
        .map(|(_, url)| url)
        .collect()
}

fn wait_banner(browser: &Browser) {
    browser.wait_for(
        "const b = document.querySelector('#consentric-banner'); return b && !b.hidden && b.offsetHeight > 0",
        Duration::from_secs(20),
    );
}

fn nothing_kept(browser: &Browser) {
    assert!(browser.cookies().is_empty(), "no cookie before a choice");
    assert_eq!(
        browser.execute(
            "return localStorage.length + sessionStorage.length + document.cookie.length",
            &[]
        ),
        json!(0),
        "no storage entry before a choice"
    );
}

/// The visitor's anonymous id, once a choice stored it.
fn anonymous_id(browser: &Browser) -> String {
    let v = browser.execute(
        "return JSON.parse(localStorage.getItem('consentric.consent')).anonymousId",
        &[],
    );
    v.as_str()
        .expect("an anonymous id after the choice")
        .to_owned()
}

fn consent_of(app: &TestApp, anonymous: &str) -> Value {
    let r = app.get(&format!("/v1/consent/anonymous_id:{anonymous}"));
    assert_eq!(r.status(), 200, "the visitor's consent is recorded");
    r.json().expect("json")
}

fn purpose<'a>(consent: &'a Value, id: &str) -> &'a Value {
    consent["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|p| p["purpose"] == id)
        .expect("declared")
}

/// The visitor's (or customer's) consent once `purpose_id` reads `decision`.
fn consent_when(app: &TestApp, who: &str, purpose_id: &str, decision: &str) -> Value {
    let started = Instant::now();
    loop {
        let r = app.get(&format!("/v1/consent/{who}"));
        if r.status() == 200 {
            let v: Value = r.json().expect("json");
            if purpose(&v, purpose_id)["decision"] == decision {
                return v;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{who}'s {purpose_id} never read {decision}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn events_of(app: &TestApp, anonymous: &str, within: Duration) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let r = app.get(&format!(
            "/v1/profiles/anonymous_id:{anonymous}/events?limit=100"
        ));
        if r.status() == 200 {
            let body: Value = r.json().expect("json");
            let events: Vec<Value> = body["events"].as_array().cloned().unwrap_or_default();
            if events
                .iter()
                .any(|e| e["event"]["event"] == "Product Viewed")
                || started.elapsed() > within
            {
                return events;
            }
        } else if started.elapsed() > within {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_banner_asks_before_anything_is_kept_and_sends_only_what_was_allowed() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let axe = axe_source();
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let page = shop_page(&app, "", "async");
    browser.goto(&page);
    wait_banner(&browser);
    // A call before the choice waits in memory: nothing leaves, nothing is kept.
    browser.execute(
        "consentric.track('Product Viewed', {product_id: 'early'})",
        &[],
    );
    std::thread::sleep(Duration::from_millis(1200));
    let before: Vec<(String, String)> = browser.requests();
    assert!(
        before.iter().all(|(_, url)| !url.starts_with(&app.base)
            || url.contains("/consent/v1/")
            || url.contains("/v1/purposes")),
        "only the script, its stylesheet and the purposes before a choice: {before:?}"
    );
    assert!(
        before
            .iter()
            .any(|(_, url)| url == &format!("{}/v1/purposes?lang=en", app.base)),
        "the purposes are asked in the page's language: {before:?}"
    );
    nothing_kept(&browser);
    check_page(&browser, &axe, "banner");
    let texts = browser.execute(
        "return [...document.querySelectorAll('#consentric-banner button')].map(b => [b.innerText, b.offsetWidth, b.offsetHeight, getComputedStyle(b).backgroundColor])",
        &[],
    );
    let buttons = texts.as_array().expect("buttons");
    assert!(buttons.len() >= 3, "{texts}");
    assert_eq!(
        buttons[0][2], buttons[1][2],
        "reject is as prominent as accept: {texts}"
    );
    assert_eq!(buttons[0][3], buttons[1][3], "{texts}");

    // The preferences: nothing ticked, essential purposes always on.
    browser.execute("document.querySelector('#consentric-choose').click()", &[]);
    browser.wait_for(
        "const d = document.querySelector('#consentric-dialog'); return d && d.offsetHeight > 0 && document.activeElement && d.contains(document.activeElement)",
        Duration::from_secs(10),
    );
    let ticked = browser.execute(
        "return [...document.querySelectorAll('input[name=consentric-purpose]:enabled')].filter(i => i.checked).length",
        &[],
    );
    assert_eq!(ticked, json!(0), "nothing is pre-ticked");
    let essential = browser.execute(
        "const i = document.querySelector('input[name=consentric-purpose][value=essential]'); return i.checked && i.disabled",
        &[],
    );
    assert_eq!(essential, json!(true), "essential shows as always on");
    check_page(&browser, &axe, "banner-preferences");
    nothing_kept(&browser);

    // Reject all: the refusal is the one request, and later calls send nothing.
    browser.execute(
        "document.querySelector('#consentric-dialog-reject').click()",
        &[],
    );
    let anonymous = anonymous_id(&browser);
    let started = Instant::now();
    while event_requests(&browser, &app).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the refusal is recorded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.execute(
        "consentric.track('Product Viewed', {product_id: 'after-reject'})",
        &[],
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        event_requests(&browser, &app).is_empty(),
        "nothing is sent for refused purposes"
    );
    let consent = consent_of(&app, &anonymous);
    for id in ["analytics", "personalization", "marketing.ads_sharing"] {
        assert_eq!(
            purpose(&consent, id)["decision"],
            "denied",
            "{id}: {consent}"
        );
        assert_eq!(purpose(&consent, id)["source"], "banner");
    }
    let stored = events_of(&app, &anonymous, Duration::from_millis(300));
    assert!(
        stored
            .iter()
            .all(|e| e["event"]["event"] != "Product Viewed"),
        "no event after a refusal: {stored:?}"
    );

    // A new visitor accepts analytics only: the event is stored with the consent record.
    browser.execute("localStorage.clear()", &[]);
    browser.goto(&page);
    wait_banner(&browser);
    browser.execute("document.querySelector('#consentric-choose').click()", &[]);
    browser.wait_for(
        "return document.querySelector('input[name=consentric-purpose][value=analytics]')",
        Duration::from_secs(10),
    );
    browser.execute(
        "document.querySelector('input[name=consentric-purpose][value=analytics]').click(); document.querySelector('#consentric-save').click(); consentric.track('Product Viewed', {product_id: 'A-1'});",
        &[],
    );
    let anonymous = anonymous_id(&browser);
    let events = events_of(&app, &anonymous, Duration::from_secs(20));
    let viewed = events
        .iter()
        .find(|e| e["event"]["event"] == "Product Viewed")
        .unwrap_or_else(|| panic!("the event was stored: {events:?}"));
    assert_eq!(
        viewed["event"]["context"]["consent"]["categoryPreferences"]["analytics"],
        true
    );
    let consent = consent_of(&app, &anonymous);
    assert_eq!(purpose(&consent, "analytics")["decision"], "granted");
    assert_eq!(purpose(&consent, "analytics")["source"], "banner");
    assert_eq!(purpose(&consent, "analytics")["purpose_version"], 1);
    assert_eq!(purpose(&consent, "personalization")["decision"], "denied");

    // On a phone.
    browser.execute("localStorage.clear()", &[]);
    browser.set_window_size(390, 844);
    browser.goto(&page);
    wait_banner(&browser);
    check_page(&browser, &axe, "banner-phone");
    browser.set_window_size(1280, 900);
}

#[test]
fn with_global_privacy_control_sale_and_sharing_start_denied() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let axe = axe_source();
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    // Chromium has no switch for GPC: the page gives its navigator the property, as a browser
    // that sends it does.
    let gpc = "<script>Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});</script>";
    browser.goto(&shop_page(&app, gpc, "async"));
    wait_banner(&browser);
    let said = browser.execute(
        "return document.querySelector('#consentric-banner .consentric-gpc').innerText",
        &[],
    );
    assert!(
        said.as_str()
            .unwrap_or_default()
            .contains("Global Privacy Control"),
        "the banner says so: {said}"
    );
    browser.execute("document.querySelector('#consentric-choose').click()", &[]);
    browser.wait_for(
        "return document.querySelector('input[name=consentric-purpose][value=\"marketing.ads_sharing\"]')",
        Duration::from_secs(10),
    );
    let locked = browser.execute(
        "const i = document.querySelector('input[name=consentric-purpose][value=\"marketing.ads_sharing\"]'); return i.disabled && !i.checked",
        &[],
    );
    assert_eq!(locked, json!(true));
    check_page(&browser, &axe, "banner-gpc");
    browser.execute(
        "document.querySelector('#consentric-dialog-accept').click()",
        &[],
    );
    let anonymous = anonymous_id(&browser);
    let who = format!("anonymous_id:{anonymous}");
    let consent = consent_when(&app, &who, "analytics", "granted");
    for id in ["marketing.ads_sharing", "partner_matching"] {
        assert_eq!(purpose(&consent, id)["decision"], "denied", "{id}");
    }
}

#[test]
fn a_site_with_a_tcf_cmp_gets_no_second_banner_and_its_string_travels() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let cmp = r#"<script>window.__tcfapi = function (command, version, callback) {
  if (command === 'addEventListener') setTimeout(function () {
    callback({eventStatus: 'tcloaded', tcString: 'COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA', listenerId: 1}, true);
  }, 50);
};</script>"#;
    browser.goto(&shop_page(&app, cmp, "async"));
    browser.wait_for("return window.consentric && typeof consentric.choices === 'function' && consentric.choices()", Duration::from_secs(20));
    browser.execute(
        "consentric.track('Product Viewed', {product_id: 'T-1'})",
        &[],
    );
    let started = Instant::now();
    while event_requests(&browser, &app).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the event left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let banner = browser.execute(
        "return document.querySelector('#consentric-banner') === null",
        &[],
    );
    assert_eq!(banner, json!(true), "no second banner");
    let anonymous = anonymous_id(&browser);
    let events = events_of(&app, &anonymous, Duration::from_secs(10));
    let viewed = events
        .iter()
        .find(|e| e["event"]["event"] == "Product Viewed")
        .unwrap_or_else(|| panic!("stored: {events:?}"));
    assert!(viewed["event"]["context"]["consent"]["tcfString"]
        .as_str()
        .is_some_and(|s| s.starts_with("COvFyGB")));
}

#[test]
fn segment_s_analytics_js_waits_behind_the_banner_and_sends_once_allowed() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let snippet = crate::browser::segment_snippet(&app);
    let page = serve_page(format!(
        r#"<!doctype html><html lang="en"><head><title>Shop</title>
<script src="{}/consent/v1/{}/consent.js" data-mode="wrap"></script>
<script>{snippet}</script></head>
<body><main><h1>A shop</h1></main><script>
analytics.track("Product Viewed", {{ product_id: "S-1" }});
</script></body></html>"#,
        app.base, app.browser
    ));
    browser.goto(&page);
    wait_banner(&browser);
    std::thread::sleep(Duration::from_millis(800));
    let before = browser.requests();
    assert!(
        before
            .iter()
            .all(|(_, url)| !url.contains("/analytics.js/")),
        "analytics.js is not even downloaded before a choice: {before:?}"
    );
    nothing_kept(&browser);
    browser.execute("document.querySelector('#consentric-accept').click()", &[]);
    let anonymous = anonymous_id(&browser);
    let events = events_of(&app, &anonymous, Duration::from_secs(30));
    let viewed = events
        .iter()
        .find(|e| e["event"]["event"] == "Product Viewed")
        .unwrap_or_else(|| {
            panic!(
                "analytics.js's event was stored: {events:?}; console {:?}",
                browser.console()
            )
        });
    assert_eq!(
        viewed["event"]["context"]["library"]["name"], "analytics.js",
        "sent by Segment's library"
    );
    assert_eq!(
        viewed["event"]["context"]["consent"]["categoryPreferences"]["analytics"],
        true
    );
    assert!(
        browser
            .requests()
            .iter()
            .any(|(_, url)| url.contains("/analytics.js/v1/")),
        "loaded from this server once allowed"
    );
}

#[test]
fn the_dialog_keeps_the_keyboard_inside_and_escape_gives_focus_back() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    browser.goto(&shop_page(&app, "", "async"));
    wait_banner(&browser);
    browser.execute(
        "const c = document.querySelector('#consentric-choose'); c.focus(); c.click();",
        &[],
    );
    browser.wait_for(
        "const d = document.querySelector('#consentric-dialog'); return d && d.contains(document.activeElement)",
        Duration::from_secs(10),
    );
    let focusable = browser.execute(
        "return document.querySelectorAll('#consentric-dialog button, #consentric-dialog input:enabled, #consentric-dialog a[href]').length",
        &[],
    );
    let n = focusable.as_u64().expect("a count") as usize;
    assert!(n > 3, "{focusable}");
    let inside =
        "return document.querySelector('#consentric-dialog').contains(document.activeElement)";
    // Round the dialog and beyond, both ways: focus never leaves it.
    for shift in [false, true] {
        for _ in 0..n + 2 {
            browser.press(&["\u{E004}"], shift);
            assert_eq!(browser.execute(inside, &[]), json!(true), "shift={shift}");
        }
    }
    browser.press(&["\u{E00C}"], false);
    let back = browser.execute(
        "return document.querySelector('#consentric-dialog') === null || document.querySelector('#consentric-dialog').offsetHeight === 0 ? document.activeElement.id : 'still open'",
        &[],
    );
    assert_eq!(
        back,
        json!("consentric-choose"),
        "Escape closes and gives focus back"
    );
    nothing_kept(&browser);
}

#[test]
fn a_choice_is_asked_again_when_a_purpose_s_version_changes_and_follows_the_visitor_who_signs_in() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let page = shop_page(&app, "", "async");
    browser.goto(&page);
    wait_banner(&browser);
    browser.execute("document.querySelector('#consentric-accept').click()", &[]);
    let anonymous = anonymous_id(&browser);
    // The same versions: no banner on the next page.
    browser.goto(&page);
    browser.wait_for(
        "return window.consentric && consentric.choices()",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        browser.execute("return document.querySelector('#consentric-banner') === null || document.querySelector('#consentric-banner').offsetHeight === 0", &[]),
        json!(true),
        "a choice made is not asked again"
    );
    // The visitor identifies with the site's user hash: their banner consent is theirs.
    browser.execute(
        "consentric.identify('u-77', {plan: 'pro'}, {userHash: arguments[0]})",
        &[json!(app.user_hash("u-77"))],
    );
    let consent = consent_when(&app, "u-77", "analytics", "granted");
    assert_eq!(purpose(&consent, "analytics")["source"], "banner");
    let identities: Value = app
        .get("/v1/profiles/u-77/identities")
        .json()
        .expect("json");
    assert!(
        identities.to_string().contains(&anonymous),
        "the visitor's anonymous id is the customer's: {identities}"
    );
    // A purpose's text changed (its version here no longer matches): the banner asks again.
    browser.execute(
        "const s = JSON.parse(localStorage.getItem('consentric.consent')); s.versions.analytics = 0; localStorage.setItem('consentric.consent', JSON.stringify(s));",
        &[],
    );
    browser.goto(&page);
    wait_banner(&browser);
}

#[test]
fn events_are_batched_and_retried_until_the_server_takes_them_all() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let db = TestDb::sqlite();
    // One request a second per visitor (bursts of five): most batches are refused with 429
    // and `Retry-After` at first.
    let app = crate::app::spawn_app_full(
        &db,
        |e| e,
        consentric_engine::ServerSettings {
            browser_requests_per_second: 1,
            ..consentric_engine::ServerSettings::default()
        },
    );
    browser.goto(&shop_page(&app, "", "async"));
    wait_banner(&browser);
    browser.execute(
        "document.querySelector('#consentric-accept').click(); for (let i = 0; i < 200; i++) consentric.track('Product Viewed', {product_id: 'P-' + i});",
        &[],
    );
    let anonymous = anonymous_id(&browser);
    let started = Instant::now();
    let mut posts = 0;
    loop {
        posts += event_requests(&browser, &app).len();
        let r = app.get(&format!("/v1/profiles/anonymous_id:{anonymous}"));
        if r.status() == 200 {
            let p: Value = r.json().expect("json");
            if p["counters"]["events"] == 201 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "every event arrives in the end"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // 201 events fit in 11 batches; more requests than that means refused ones were retried.
    assert!(posts > 11, "{posts} requests");
}

/// The banner's size and time to show beside Klaro's (`docs/benchmarks.md`); figures, not a
/// check. `KLARO_DIST=$(scripts/klaro.sh) cargo test --release -p consentric-server --test it
/// banner_figures -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run by hand with KLARO_DIST set"]
fn banner_figures_beside_klaro() {
    use std::io::Write;
    let Some(klaro) = std::env::var_os("KLARO_DIST").map(std::path::PathBuf::from) else {
        eprintln!("KLARO_DIST is not set (scripts/klaro.sh prints it)");
        return;
    };
    let Some(browser) = Browser::start() else {
        return;
    };
    let gz = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).expect("gzip");
        e.finish().expect("gzip").len()
    };
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let fetched = |path: &str| {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .header("accept-encoding", "identity")
            .send()
            .expect("get");
        r.bytes().expect("body").to_vec()
    };
    let ours_js = fetched(&format!("/consent/v1/{}/consent.js", app.browser));
    let ours_css = fetched("/consent/v1/consent.css");
    let klaro_js = std::fs::read(klaro.join("klaro.js")).expect("klaro.js");
    println!(
        "size: consentric consent.js {} B ({} B gzipped) + consent.css {} B ({} B gzipped); klaro.js (CSS inside) {} B ({} B gzipped)",
        ours_js.len(), gz(&ours_js), ours_css.len(), gz(&ours_css), klaro_js.len(), gz(&klaro_js)
    );
    let watch = r#"<script>new MutationObserver(function (_, o) {
  var b = document.querySelector('#consentric-banner, .klaro .cookie-notice');
  if (b && b.offsetHeight > 0 && !window.__shown) { window.__shown = performance.now(); o.disconnect(); }
}).observe(document.documentElement, {childList: true, subtree: true, attributes: true});</script>"#;
    let ours = shop_page(&app, watch, "async");
    let klaro_site = consentric_testkit::browser::serve_site(vec![
        (
            "/".into(),
            "text/html; charset=utf-8",
            format!(
                r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A shop</title>{watch}
<script>window.klaroConfig = {{version: 1, elementID: 'klaro', storageMethod: 'localStorage', mustConsent: false,
  services: [{{name: 'analytics', title: 'Analytics', purposes: ['analytics']}}]}};</script>
<script defer src="/klaro.js"></script></head><body><main><h1>A shop</h1></main></body></html>"#
            ),
        ),
        (
            "/klaro.js".into(),
            "text/javascript",
            String::from_utf8(klaro_js).expect("utf-8"),
        ),
    ]);
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..15 {
        for (i, page) in [&ours, &klaro_site].into_iter().enumerate() {
            browser.goto(page);
            let shown = browser.wait_for("return window.__shown", Duration::from_secs(20));
            times[i].push(shown.as_f64().expect("ms"));
            browser.execute("localStorage.clear()", &[]);
        }
    }
    for (name, t) in ["consentric", "klaro"].iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!(
            "page load to banner shown, {name}: median {:.1} ms, min {:.1}, max {:.1} ({} loads)",
            t[t.len() / 2],
            t[0],
            t[t.len() - 1],
            t.len()
        );
    }
}
