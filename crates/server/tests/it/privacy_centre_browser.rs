//! The privacy centre as a customer uses it, in a real headless Chromium: the code arrives by
//! real SMTP, the session is a real HttpOnly cookie, forms are posted by the browser. Each page
//! is checked with axe-core and photographed (into `$CONSENTRIC_SCREENSHOTS`, else the target
//! directory; `scripts/screenshots.sh` refreshes `docs/images/`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use consentric_engine::{SmtpNotifier, SmtpSecurity, SmtpSettings};
use consentric_testkit::browser::Browser;
use consentric_testkit::smtp;
use consentric_testkit::TestDb;
use serde_json::{json, Value};

use crate::app::spawn_app_with;

/// axe-core's release file, inflated.
pub fn axe_source() -> String {
    use std::io::Read;
    let gz = include_bytes!("../fixtures/browser/axe-core/axe.min.js.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("axe-core inflates");
    text
}

/// Where screenshots go.
pub fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("CONSENTRIC_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Photographs the page and checks it with axe-core: no serious or critical violation.
pub fn check_page(browser: &Browser, axe: &str, name: &str) {
    browser.screenshot(&screenshot_dir().join(format!("{name}.png")));
    check_accessibility(browser, axe, name);
}

/// Checks the page with axe-core: no serious or critical violation.
pub fn check_accessibility(browser: &Browser, axe: &str, name: &str) {
    let violations = browser.accessibility_violations(axe);
    assert!(violations.is_empty(), "{name}: {violations:?}");
}

fn wait_path(browser: &Browser, path: &str) {
    browser.wait_for(
        &format!("return location.pathname === '{path}' && document.readyState === 'complete'"),
        Duration::from_secs(20),
    );
}

#[test]
fn a_customer_signs_in_by_e_mail_changes_a_choice_downloads_and_erases_in_a_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let axe = axe_source();
    let mail = smtp::start(smtp::Mode::PlainOnly, None);
    let notifier = SmtpNotifier::from_settings_and_password(
        &SmtpSettings {
            smtp: Some(format!("localhost:{}", mail.port)),
            from: Some("privacy@shop.example".into()),
            security: SmtpSecurity::None,
            username: None,
            password_file: None,
            ca_file: None,
            timeout_seconds: 5,
        },
        None,
    )
    .expect("notifier")
    .expect("a server is set");
    let db = TestDb::sqlite();
    let app = spawn_app_with(&db, move |e| e.with_notifier(Arc::new(notifier)));
    for (user, email, name) in [
        ("ada", "ada@example.com", "Ada Lovelace"),
        ("bob", "bob@example.org", "Bob Babbage"),
    ] {
        let consent = json!({"consent": {"categoryPreferences": {"analytics": true, "personalization": true}}});
        assert_eq!(
            app.send("/v1/identify", &json!({"userId": user, "traits": {"email": email, "name": name}, "context": consent}))
                .status(),
            200
        );
        assert_eq!(
            app.send("/v1/track", &json!({"userId": user, "event": "Product Viewed", "properties": {"product_id": format!("{user}-sku")}, "context": consent}))
                .status(),
            200
        );
    }
    let r = app
        .post("/v1/decisions/ada?placement=home")
        .bearer_auth(&app.admin)
        .send()
        .expect("decide");
    assert_eq!(r.status(), 200, "a decision is logged for Ada");

    // Sign in: the address, then the code that arrived by SMTP.
    browser.goto(&format!("{}/privacy", app.base));
    check_page(&browser, &axe, "privacy-sign-in");
    browser.execute(
        "document.querySelector('#email').value = arguments[0]; document.querySelector('main form').requestSubmit();",
        &[json!("ada@example.com")],
    );
    wait_path(&browser, "/privacy/code");
    check_page(&browser, &axe, "privacy-code");
    let code = (0..200)
        .find_map(|_| {
            let found = mail.received().into_iter().find_map(|m| {
                let after = m.data.split_once("Your code is ")?.1;
                Some(after.chars().take(6).collect::<String>())
                    .filter(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
            });
            if found.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            found
        })
        .expect("the code arrived by SMTP");
    assert_eq!(mail.received()[0].to, vec!["<ada@example.com>".to_owned()]);
    browser.execute(
        "document.querySelector('#code').value = arguments[0]; document.querySelector('main form').requestSubmit();",
        &[json!(code)],
    );
    wait_path(&browser, "/privacy/data");
    let cookies = browser.cookies();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "consentric_privacy")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(
        browser.execute("return document.cookie", &[]),
        json!(""),
        "the page's script cannot read the session"
    );
    let text = browser.execute("return document.body.innerText", &[]);
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("Ada Lovelace") && !text.contains("Bob"),
        "{text}"
    );
    check_page(&browser, &axe, "privacy-data");

    // Change a choice: the browser posts the form with its CSRF token.
    browser.goto(&format!("{}/privacy/consent", app.base));
    check_page(&browser, &axe, "privacy-consent");
    browser.execute(
        "document.querySelector('#p-analytics-no').click(); document.querySelector('main form').requestSubmit();",
        &[],
    );
    browser.wait_for(
        "return document.readyState === 'complete' && document.body.innerText.includes('in the privacy centre')",
        Duration::from_secs(20),
    );
    let consent: Value = app.get("/v1/consent/ada").json().expect("json");
    let analytics = consent["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|p| p["purpose"] == "analytics")
        .expect("analytics");
    assert_eq!(analytics["decision"], "denied");
    assert_eq!(analytics["source"], "privacy_centre");

    browser.goto(&format!("{}/privacy/decisions", app.base));
    let text = browser.execute("return document.body.innerText", &[]);
    assert!(
        text.as_str().unwrap_or_default().contains("home"),
        "the decision is explained: {text}"
    );
    check_page(&browser, &axe, "privacy-decisions");

    // The download link, followed with the browser's own session cookie (the page's policy
    // lets no script fetch anything, so it is taken from the browser's cookie jar).
    browser.goto(&format!("{}/privacy/requests", app.base));
    check_page(&browser, &axe, "privacy-requests");
    let href = browser.execute(
        "return document.querySelector('a[href*=\"format=json\"]').getAttribute('href')",
        &[],
    );
    let token = browser
        .cookies()
        .iter()
        .find(|c| c["name"] == "consentric_privacy")
        .and_then(|c| c["value"].as_str().map(str::to_owned))
        .expect("the session");
    let export: Value = app
        .client
        .get(format!("{}{}", app.base, href.as_str().expect("href")))
        .header("cookie", format!("consentric_privacy={token}"))
        .send()
        .expect("download")
        .json()
        .expect("the export is JSON");
    assert!(export.to_string().contains("ada-sku") && !export.to_string().contains("bob-sku"));

    // On a phone.
    browser.set_window_size(390, 844);
    browser.goto(&format!("{}/privacy/data", app.base));
    check_page(&browser, &axe, "privacy-data-phone");
    browser.set_window_size(1280, 900);

    // Erase: confirm, and the profile is gone.
    browser.goto(&format!("{}/privacy/requests", app.base));
    browser.execute(
        "document.querySelector('#confirm').click(); document.querySelector('button.danger').click();",
        &[],
    );
    browser.wait_for(
        "return document.readyState === 'complete' && document.querySelector('h1').innerText.includes('erased')",
        Duration::from_secs(20),
    );
    check_page(&browser, &axe, "privacy-erased");
    assert_eq!(app.get("/v1/profiles/ada").status(), 404);
    assert_eq!(app.get("/v1/profiles/bob").status(), 200);
    assert!(
        browser
            .cookies()
            .iter()
            .all(|c| c["name"] != "consentric_privacy"),
        "the session cookie is gone"
    );
}
