//! The privacy centre over plain HTTP: signing in with a code sent to the address the profile
//! holds, what an unknown or planted address gets, guessed codes, forged and expired sessions,
//! CSRF, bad forms, and that a session reaches its own customer's data and nobody else's.
//! The flows a person clicks through run in Chromium (`privacy_centre_browser.rs`).

use std::sync::Arc;

use chrono::Duration;
use consentric_engine::{Clock, Notifier, Outbox};
use consentric_testkit::parity_test;
use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::app::{spawn_app_with, TestApp};

/// A form body, `application/x-www-form-urlencoded`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A visitor's browser, as far as HTTP goes: its cookie, no redirects followed.
pub struct Visitor<'a> {
    app: &'a TestApp,
    http: Client,
    pub cookie: Option<String>,
}

impl<'a> Visitor<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Visitor {
            app,
            http: Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            cookie: None,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        let mut r = self.http.get(format!("{}{path}", self.app.base));
        if let Some(c) = &self.cookie {
            r = r.header("cookie", format!("consentric_privacy={c}"));
        }
        r.send().expect("get")
    }

    pub fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Response {
        self.post_raw(path, form(pairs), &[])
    }

    pub fn post_raw(&self, path: &str, body: String, headers: &[(&str, &str)]) -> Response {
        let mut r = self
            .http
            .post(format!("{}{path}", self.app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = &self.cookie {
            r = r.header("cookie", format!("consentric_privacy={c}"));
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().expect("post")
    }

    /// Asks for a code for `email`; the challenge id the page carries.
    pub fn ask_code(&self, email: &str) -> String {
        let r = self.post("/privacy/code", &[("email", email)]);
        assert_eq!(r.status(), 200);
        let page = r.text().expect("page");
        hidden(&page, "challenge").expect("the page carries its challenge")
    }

    /// Signs in with `code`; the session's CSRF token (from the first page).
    pub fn sign_in(&mut self, challenge: &str, code: &str) -> String {
        let r = self.post(
            "/privacy/sign-in",
            &[("challenge", challenge), ("code", code)],
        );
        assert_eq!(r.status(), 303, "signed in");
        let set = r
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .expect("ascii")
            .to_owned();
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/privacy",
            "Max-Age=1800",
        ] {
            assert!(set.contains(attribute), "{attribute} in {set}");
        }
        let token = set
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_owned())
            .expect("token");
        self.cookie = Some(token);
        let page = self.get("/privacy/consent").text().expect("page");
        hidden(&page, "csrf").expect("a csrf token")
    }
}

/// The value of the hidden input `name` in `page`.
pub fn hidden(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\""))?;
    let rest = &page[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_owned())
}

/// The six-digit code in the latest message to `to`.
pub fn code_sent_to(outbox: &Outbox, to: &str) -> Option<String> {
    // The message leaves from another thread (see `send_code`): wait for it.
    for _ in 0..100 {
        let latest = outbox
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.to == to && m.subject.contains("privacy centre"));
        if let Some(m) = latest {
            return m
                .body
                .split_whitespace()
                .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_owned);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

/// A visitor signed in as the customer with `email`, and their session's CSRF token.
pub fn signed_in<'a>(app: &'a TestApp, outbox: &Outbox, email: &str) -> (Visitor<'a>, String) {
    let mut v = Visitor::new(app);
    let challenge = v.ask_code(email);
    let code = code_sent_to(outbox, email).expect("a code was sent");
    let csrf = v.sign_in(&challenge, &code);
    (v, csrf)
}

/// An app whose messages stay in an outbox, and two customers with addresses and names.
pub fn app_with_customers(db: &consentric_testkit::TestDb) -> (TestApp, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::default());
    let notifier: Arc<dyn Notifier> = outbox.clone();
    let app = spawn_app_with(db, move |e| e.with_notifier(notifier));
    for (user, email, name) in [
        ("ada", "Ada.Lovelace@Example.com", "Ada Lovelace"),
        ("bob", "bob@example.org", "Bob Babbage"),
    ] {
        let r = app.send(
            "/v1/identify",
            &json!({"userId": user, "traits": {"email": email, "name": name},
                    "context": {"consent": {"categoryPreferences": {"analytics": true, "marketing.email": true}}}}),
        );
        assert_eq!(r.status(), 200);
        let r = app.send(
            "/v1/track",
            &json!({"userId": user, "event": "Product Viewed", "properties": {"sku": format!("{user}-sku")}}),
        );
        assert_eq!(r.status(), 200);
    }
    (app, outbox)
}

parity_test!(
    a_customer_signs_in_with_a_code_sent_to_the_address_their_profile_holds,
    |db| {
        let (app, outbox) = app_with_customers(&db);
        let mut ada = Visitor::new(&app);
        // Typed in another case, with spaces: the same address.
        let challenge = ada.ask_code("  ADA.lovelace@example.COM ");
        let code = code_sent_to(&outbox, "ada.lovelace@example.com").expect("a code was sent");
        ada.sign_in(&challenge, &code);
        let page = ada.get("/privacy/data").text().expect("page");
        assert!(page.contains("Ada Lovelace"), "her name is shown");
        assert!(!page.contains("Bob Babbage"), "nobody else's");
        // A spent code does not work twice.
        let again = Visitor::new(&app).post(
            "/privacy/sign-in",
            &[("challenge", &challenge), ("code", &code)],
        );
        assert_eq!(again.status(), 400);
        // The sign-in is in the audit trail of her profile.
        let audit: Value = app.get("/v1/profiles/ada/export").json().expect("export");
        assert!(
            audit.to_string().contains("privacy.signed_in"),
            "the sign-in is audited"
        );
    }
);

parity_test!(
    an_unknown_or_planted_address_gets_the_same_answer_and_no_message,
    |db| {
        let (app, outbox) = app_with_customers(&db);
        // A page may claim an address for a user id without the site's user hash: the address
        // is not stored, so it never receives a code.
        let r = app.send_from_browser(
            "/v1/identify",
            &json!({"userId": "ada", "traits": {"email": "mallory@evil.example"}}),
        );
        assert_eq!(r.status(), 200);
        let visitor = Visitor::new(&app);
        let page = |email: &str| {
            let r = visitor.post("/privacy/code", &[("email", email)]);
            assert_eq!(r.status(), 200);
            let page = r.text().expect("page");
            let challenge = hidden(&page, "challenge").expect("a challenge");
            page.replace(&challenge, "CHALLENGE")
        };
        let known = page("bob@example.org");
        let unknown = page("nobody@example.net");
        let planted = page("mallory@evil.example");
        assert_eq!(
            known, unknown,
            "the form says the same for an unknown address"
        );
        assert_eq!(known, planted);
        assert!(code_sent_to(&outbox, "bob@example.org").is_some());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let to: Vec<String> = outbox.messages().into_iter().map(|m| m.to).collect();
        assert_eq!(
            to,
            vec!["bob@example.org".to_owned()],
            "only the held address got a code"
        );
        // Not an address at all: a clear refusal.
        let r = visitor.post("/privacy/code", &[("email", "not an address")]);
        assert_eq!(r.status(), 400);
        assert!(r.text().expect("page").contains("e-mail address"));
    }
);

parity_test!(
    codes_guessed_too_often_and_asked_too_often_stop_working,
    |db| {
        let (app, outbox) = app_with_customers(&db);
        let mut v = Visitor::new(&app);
        let challenge = v.ask_code("bob@example.org");
        let code = code_sent_to(&outbox, "bob@example.org").expect("code");
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..consentric_engine::CODE_ATTEMPTS {
            let r = v.post(
                "/privacy/sign-in",
                &[("challenge", &challenge), ("code", wrong)],
            );
            assert_eq!(r.status(), 400);
            assert!(r.headers().get("set-cookie").is_none());
        }
        let r = v.post(
            "/privacy/sign-in",
            &[("challenge", &challenge), ("code", &code)],
        );
        assert_eq!(
            r.status(),
            400,
            "the right code no longer works after too many wrong ones"
        );
        // Five codes an hour per address, known or not; the sixth is refused.
        for email in ["bob@example.org", "nobody@example.net"] {
            let used = if email.starts_with("bob") { 1 } else { 0 };
            for _ in used..consentric_engine::CODES_PER_HOUR {
                assert_eq!(v.post("/privacy/code", &[("email", email)]).status(), 200);
            }
            assert_eq!(v.post("/privacy/code", &[("email", email)]).status(), 429);
        }
        // An hour later the address may ask again (once the earlier codes have all left).
        let to_bob = || {
            outbox
                .messages()
                .iter()
                .filter(|m| m.to == "bob@example.org")
                .count()
        };
        while to_bob() < consentric_engine::CODES_PER_HOUR as usize {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        app.clock.set(app.clock.now() + Duration::minutes(61));
        let c = v.ask_code("bob@example.org");
        while to_bob() <= consentric_engine::CODES_PER_HOUR as usize {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let code = code_sent_to(&outbox, "bob@example.org").expect("code");
        v.sign_in(&c, &code);
    }
);

parity_test!(
    forged_and_expired_sessions_are_refused_and_change_nothing,
    |db| {
        let (app, outbox) = app_with_customers(&db);
        let (v, csrf) = signed_in(&app, &outbox, "bob@example.org");
        assert_eq!(v.get("/privacy/data").status(), 200);

        let mut forged = Visitor::new(&app);
        for token in ["0".repeat(64), "x".into(), "a".repeat(10_000)] {
            forged.cookie = Some(token);
            for path in [
                "/privacy/data",
                "/privacy/consent",
                "/privacy/decisions",
                "/privacy/requests",
                "/privacy/download?format=json",
            ] {
                assert_eq!(forged.get(path).status(), 401, "{path}");
            }
            let r = forged.post(
                "/privacy/requests",
                &[("csrf", &csrf), ("kind", "erasure"), ("confirm", "yes")],
            );
            assert_eq!(r.status(), 401);
        }
        assert_eq!(
            app.get("/v1/profiles/bob").status(),
            200,
            "nothing was erased"
        );

        app.clock
            .set(app.clock.now() + Duration::minutes(consentric_engine::SESSION_MINUTES + 1));
        assert_eq!(v.get("/privacy/data").status(), 401, "the session expired");
    }
);

fn consent_of(app: &TestApp, user: &str, purpose: &str) -> Value {
    let v: Value = app
        .get(&format!("/v1/consent/{user}"))
        .json()
        .expect("json");
    v["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|p| p["purpose"] == purpose)
        .map(|p| p["decision"].clone())
        .unwrap_or(Value::Null)
}

parity_test!(csrf_and_bad_forms_are_refused_and_change_nothing, |db| {
    let (app, outbox) = app_with_customers(&db);
    let (v, csrf) = signed_in(&app, &outbox, "bob@example.org");
    assert_eq!(consent_of(&app, "bob", "analytics"), "granted");

    let deny = |token: &str| form(&[("csrf", token), ("p.analytics", "denied")]);
    // No token, a wrong one, and the right one from another site.
    assert_eq!(
        v.post_raw("/privacy/consent", form(&[("p.analytics", "denied")]), &[])
            .status(),
        403
    );
    assert_eq!(
        v.post_raw("/privacy/consent", deny(&"f".repeat(64)), &[])
            .status(),
        403
    );
    assert_eq!(
        v.post_raw(
            "/privacy/consent",
            deny(&csrf),
            &[("sec-fetch-site", "cross-site")]
        )
        .status(),
        403
    );
    // A huge body, a malformed one, an unknown purpose, an unknown decision.
    let huge = format!("{}&p.analytics=denied", deny(&csrf)) + &"&x=".repeat(20_000);
    assert_eq!(v.post_raw("/privacy/consent", huge, &[]).status(), 413);
    let r = v.post_raw(
        "/privacy/consent",
        format!("csrf={csrf}&p.analytics=%ZZ"),
        &[],
    );
    assert_eq!(r.status(), 400);
    let r = v.post(
        "/privacy/consent",
        &[
            ("csrf", &csrf),
            ("p.analytics", "denied"),
            ("p.nope", "granted"),
        ],
    );
    assert_eq!(r.status(), 400);
    assert!(r.text().expect("page").contains("Nothing was changed"));
    let r = v.post(
        "/privacy/consent",
        &[("csrf", &csrf), ("p.analytics", "maybe")],
    );
    assert_eq!(r.status(), 400);
    assert_eq!(
        consent_of(&app, "bob", "analytics"),
        "granted",
        "nothing changed"
    );

    // The right form from the page works, and is recorded as the privacy centre's.
    let r = v.post_raw(
        "/privacy/consent",
        deny(&csrf),
        &[("sec-fetch-site", "same-origin")],
    );
    assert_eq!(r.status(), 303);
    assert_eq!(consent_of(&app, "bob", "analytics"), "denied");
    let page = v.get("/privacy/consent").text().expect("page");
    assert!(
        page.contains("here, in the privacy centre"),
        "the history says where the choice was made"
    );
});

parity_test!(a_session_reaches_its_own_customer_and_nobody_else, |db| {
    let (app, outbox) = app_with_customers(&db);
    let (v, csrf) = signed_in(&app, &outbox, "ada.lovelace@example.com");
    // Every page and download, also when the request names Bob every way it could.
    let namings = [
        "",
        "?id=bob",
        "?userId=bob",
        "?profile=bob",
        "?user_id=bob&email=bob@example.org",
    ];
    for path in [
        "/privacy/data",
        "/privacy/consent",
        "/privacy/decisions",
        "/privacy/requests",
        "/privacy/download",
    ] {
        for naming in namings {
            let sep = if naming.is_empty() || !path.contains('?') {
                naming.to_owned()
            } else {
                naming.replacen('?', "&", 1)
            };
            let r = v.get(&format!("{path}{sep}"));
            let status = r.status().as_u16();
            let body = r.text().expect("body");
            assert!(status == 200, "{path}{sep}: {status}");
            assert!(
                !body.contains("Bob Babbage")
                    && !body.contains("bob-sku")
                    && !body.contains("bob@example.org"),
                "{path}{sep} showed Bob"
            );
        }
    }
    let export = v
        .get("/privacy/download?format=json")
        .text()
        .expect("export");
    assert!(
        export.contains("ada-sku"),
        "her own events are in her export"
    );
    // A change that names Bob changes Ada's consent only.
    let r = v.post(
        "/privacy/consent",
        &[
            ("csrf", &csrf),
            ("userId", "bob"),
            ("profile", "bob"),
            ("p.analytics", "denied"),
        ],
    );
    assert_eq!(r.status(), 303);
    assert_eq!(consent_of(&app, "ada", "analytics"), "denied");
    assert_eq!(consent_of(&app, "bob", "analytics"), "granted");
    // And an erasure that names Bob erases Ada.
    let r = v.post(
        "/privacy/requests",
        &[
            ("csrf", &csrf),
            ("kind", "erasure"),
            ("confirm", "yes"),
            ("userId", "bob"),
        ],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/v1/profiles/ada").status(), 404);
    assert_eq!(app.get("/v1/profiles/bob").status(), 200);
});

parity_test!(
    a_customer_objects_restricts_downloads_and_erases_themself,
    |db| {
        let (app, outbox) = app_with_customers(&db);
        let (v, csrf) = signed_in(&app, &outbox, "bob@example.org");

        let zip = v.get("/privacy/download?format=zip");
        assert_eq!(zip.status(), 200);
        assert_eq!(zip.headers()["content-type"], "application/zip");
        assert!(zip.bytes().expect("zip").starts_with(b"PK"), "a ZIP file");
        assert_eq!(v.get("/privacy/download?format=pdf").status(), 400);

        let r = v.post(
            "/privacy/requests",
            &[("csrf", &csrf), ("kind", "objection")],
        );
        assert_eq!(r.status(), 200);
        // Legitimate interests (model training) and every sale or sharing are now denied.
        assert_eq!(consent_of(&app, "bob", "model_training"), "denied");
        assert_eq!(consent_of(&app, "bob", "marketing.ads_sharing"), "denied");
        let r = v.post(
            "/privacy/requests",
            &[("csrf", &csrf), ("kind", "restriction")],
        );
        assert_eq!(r.status(), 200);
        let state: Value = app.get("/v1/consent/bob").json().expect("json");
        assert_eq!(state["restricted"], true);
        let r = v.post(
            "/privacy/requests",
            &[("csrf", &csrf), ("kind", "lift_restriction")],
        );
        assert_eq!(r.status(), 200);
        let state: Value = app.get("/v1/consent/bob").json().expect("json");
        assert_eq!(state["restricted"], false);

        // Erasure wants its box ticked, then happens at once with its receipt.
        let r = v.post("/privacy/requests", &[("csrf", &csrf), ("kind", "erasure")]);
        assert_eq!(r.status(), 400);
        assert_eq!(app.get("/v1/profiles/bob").status(), 200);
        let r = v.post(
            "/privacy/requests",
            &[("csrf", &csrf), ("kind", "erasure"), ("confirm", "yes")],
        );
        assert_eq!(r.status(), 200);
        let cleared = r.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        let page = r.text().expect("page");
        assert!(page.contains("rcpt_"), "the receipt is shown");
        assert_eq!(app.get("/v1/profiles/bob").status(), 404);
        assert_eq!(
            v.get("/privacy/data").status(),
            401,
            "the session went with the data"
        );
        // Nothing of the address is left in the database files: neither it nor its blind index.
        if let Some(dir) = db.data_dir() {
            let email = consentric_model::Email::parse("bob@example.org").expect("address");
            let blind = consentric_testkit::test_vault().blind_index("email", email.as_str());
            for needle in [email.as_str().as_bytes(), blind.as_bytes()] {
                assert_eq!(consentric_testkit::hits_in_database_files(dir, needle), 0);
            }
        }
        // The address is forgotten: no code goes to it, and the outbox kept nothing for it.
        assert!(outbox.messages().iter().all(|m| m.to != "bob@example.org"));
        v.ask_code("bob@example.org");
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(outbox.messages().iter().all(|m| m.to != "bob@example.org"));
    }
);

parity_test!(
    requests_from_other_channels_show_with_their_deadline_and_merges_keep_the_address,
    |db| {
        let (app, outbox) = app_with_customers(&db);
        // An operator filed a request for Bob by another channel.
        let r = app
        .post("/v1/dsr")
        .bearer_auth(&app.admin)
        .json(&json!({"kind": "access", "regime": "gdpr", "identity": "user_id:bob", "contact": "bob@example.org"}))
        .send()
        .expect("file");
        assert_eq!(r.status(), 201, "{:?}", r.text());
        // Bob's profile is merged into a new account: his address still finds him.
        let alias = json!({"userId": "bob-2", "previousId": "bob"});
        assert_eq!(app.send("/v1/alias", &alias).status(), 200);
        let mut v = Visitor::new(&app);
        let challenge = v.ask_code("bob@example.org");
        let code = code_sent_to(&outbox, "bob@example.org").expect("a code");
        v.sign_in(&challenge, &code);
        let page = v.get("/privacy/requests").text().expect("page");
        assert!(
            page.contains("access") && page.contains("received"),
            "the request is listed"
        );
        assert!(
            page.contains("13 June 2024"),
            "with its deadline (30 days): {page}"
        );
        let data = v.get("/privacy/data").text().expect("page");
        assert!(
            data.contains("bob-2"),
            "the merged profile is the one signed in"
        );
    }
);

parity_test!(
    behind_an_https_public_url_the_session_cookie_is_secure,
    |db| {
        let outbox = Arc::new(Outbox::default());
        let notifier: Arc<dyn Notifier> = outbox.clone();
        let server = consentric_engine::ServerSettings {
            public_url: Some(
                consentric_engine::PublicUrl::try_from("https://events.shop.example".to_owned())
                    .expect("url"),
            ),
            ..consentric_engine::ServerSettings::default()
        };
        let app = crate::app::spawn_app_full(&db, move |e| e.with_notifier(notifier), server);
        let r = app.send(
            "/v1/identify",
            &json!({"userId": "cy", "traits": {"email": "cy@example.com"}}),
        );
        assert_eq!(r.status(), 200);
        let v = Visitor::new(&app);
        let challenge = v.ask_code("cy@example.com");
        let code = code_sent_to(&outbox, "cy@example.com").expect("code");
        let r = v.post(
            "/privacy/sign-in",
            &[("challenge", &challenge), ("code", &code)],
        );
        assert_eq!(r.status(), 303);
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(cookie.contains("; Secure"), "{cookie}");
    }
);
