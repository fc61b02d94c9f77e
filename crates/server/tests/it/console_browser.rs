//! The console in a real headless Chromium: each role logs in through the form and opens every
//! page it may (photographed, checked with axe-core, charts drawn by uPlot); markup a browser
//! key smuggled into a trait and an event name is shown as text and never runs.

use std::time::Duration;

use consentric_testkit::browser::Browser;
use consentric_testkit::TestDb;
use serde_json::{json, Value};

use crate::console::{console_app, pages, PASSWORD, ROLES};
use crate::privacy_centre_browser::{axe_source, check_accessibility, check_page};

const TRAIT_MARKUP: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";
const EVENT_MARKUP: &str = "<svg onload=alert(3)>Viewed</svg>";

fn log_in(browser: &Browser, base: &str, name: &str) {
    browser.goto(&format!("{base}/console/login"));
    browser.execute(
        "document.querySelector('#name').value = arguments[0]; document.querySelector('#password').value = arguments[1]; document.querySelector('main form').requestSubmit();",
        &[json!(name), json!(PASSWORD)],
    );
    browser.wait_for(
        "return location.pathname !== '/console/login' && document.readyState === 'complete'",
        Duration::from_secs(20),
    );
}

#[test]
fn every_role_opens_its_pages_and_smuggled_markup_never_runs() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let axe = axe_source();
    let db = TestDb::sqlite();
    let app = console_app(&db);
    // A page of any site can send this with the public browser key.
    let consent =
        json!({"consent": {"categoryPreferences": {"analytics": true, "personalization": true}}});
    let r = app.send_from_browser(
        "/v1/identify",
        &json!({"anonymousId": "xss-visitor", "traits": {"name": TRAIT_MARKUP}, "context": consent}),
    );
    assert_eq!(r.status(), 200);
    let r = app.send_from_browser(
        "/v1/track",
        &json!({"anonymousId": "xss-visitor", "event": EVENT_MARKUP, "context": consent}),
    );
    assert_eq!(r.status(), 200);
    // The value models fitted, so that the lifecycle page draws their tracking plot.
    let r = app
        .post("/v1/lifecycle/fit")
        .bearer_auth(&app.admin)
        .send()
        .expect("fit");
    assert_eq!(r.status(), 200);
    let visitor = app.profile("anonymous_id:xss-visitor");
    assert_eq!(
        crate::app::trait_of(&visitor, "name"),
        json!(TRAIT_MARKUP),
        "the markup was stored as sent"
    );
    let visitor_id = visitor["profile_id"].as_str().expect("id").to_owned();
    let ada = app.profile("ada")["profile_id"]
        .as_str()
        .expect("id")
        .to_owned();

    for role in ROLES {
        log_in(&browser, &app.base, role.as_str());
        for (path, allowed) in pages(&ada) {
            if !allowed.contains(&role) {
                continue;
            }
            browser.goto(&format!("{}{path}", app.base));
            let page = if path.contains("/customers/") {
                "customer"
            } else {
                path.trim_start_matches("/console")
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("overview")
            };
            let name = format!("console-{}-{page}", role.as_str());
            let h1 = browser.execute("return document.querySelector('h1').innerText", &[]);
            assert_ne!(h1, json!("Not for your role"), "{name}");
            let charts = browser.execute(
                "return document.querySelectorAll('[data-chart]').length",
                &[],
            );
            if charts != json!(0) {
                browser.wait_for(
                    "return document.querySelectorAll('[data-chart]').length === document.querySelectorAll('[data-drawn] canvas').length",
                    Duration::from_secs(10),
                );
            }
            // The admin's pages are photographed for docs/console.md; every role's are checked.
            let placeholder = browser.execute(
                "return document.body.innerText.includes('not built yet')",
                &[],
            );
            if placeholder == json!(false)
                && (role == consentric_engine::Role::Admin || path.contains("/customers/"))
            {
                check_page(&browser, &axe, &name);
                if path.ends_with("/lifecycle") && role == consentric_engine::Role::Admin {
                    // The fitted model's tracking plot and distributions, further down.
                    browser.execute(
                        "document.querySelector('[data-chart=\"bg_nbd-tracking\"]').closest('figure').scrollIntoView()",
                        &[],
                    );
                    browser.screenshot(
                        &crate::privacy_centre_browser::screenshot_dir()
                            .join("console-admin-lifecycle-models.png"),
                    );
                }
            } else {
                check_accessibility(&browser, &axe, &name);
            }
        }
        browser.execute("document.querySelector('nav form button').click()", &[]);
        browser.wait_for(
            "return location.pathname === '/console/login'",
            Duration::from_secs(10),
        );
    }

    // A marketer types a segment condition: its size appears as they type.
    log_in(&browser, &app.base, "marketer");
    browser.goto(&format!("{}/console/segments", app.base));
    browser.execute(
        "const a = document.querySelector('#condition'); a.value = arguments[0]; a.dispatchEvent(new Event('input'));",
        &[json!(r#"{"all": [{"field": "orders", "op": "gte", "value": 2}]}"#)],
    );
    let shown = browser.wait_for(
        "const t = document.querySelector('#condition-size').innerText; return t.includes('match now') && t",
        Duration::from_secs(20),
    );
    assert!(
        !shown.as_str().unwrap_or_default().starts_with("0 of"),
        "{shown}"
    );
    browser.execute("document.querySelector('nav form button').click()", &[]);
    browser.wait_for(
        "return location.pathname === '/console/login'",
        Duration::from_secs(10),
    );

    // The admin opens the visitor: the markup is text on the page, and nothing ran.
    log_in(&browser, &app.base, "admin");
    browser.console(); // what came before is not this page's
    browser.goto(&format!("{}/console/customers/{visitor_id}", app.base));
    let text = browser.execute("return document.body.innerText", &[]);
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains(TRAIT_MARKUP) && text.contains(EVENT_MARKUP),
        "shown as text: {text}"
    );
    let smuggled = browser.execute(
        "return document.querySelectorAll('main img, main svg, main script').length",
        &[],
    );
    assert_eq!(smuggled, json!(0), "no element was made from the markup");
    let errors: Vec<(String, String)> = browser
        .console()
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    check_page(&browser, &axe, "console-admin-customer-markup");
    let _: Value = browser.execute("return 1", &[]); // an open alert would fail this call
}
