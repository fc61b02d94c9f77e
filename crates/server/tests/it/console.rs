//! The operators' console over plain HTTP: log-in, the role × page matrix (every page as every
//! role), CSRF, the Content-Security-Policy on every page, the pinned chart library, and the
//! numbers behind the charts against the API's.

use consentric_engine::Role;
use consentric_testkit::parity_test;
use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::app::{spawn_app_with, TestApp};
use crate::privacy_centre::{form, hidden};

pub const PASSWORD: &str = "a long enough password";
pub const ROLES: [Role; 4] = [Role::Admin, Role::Dpo, Role::Marketer, Role::Analyst];

/// An app with one operator per role (named after it), CDNOW customers placed in the
/// lifecycle, `ada` who allowed personalisation and `bob` who did not.
pub fn console_app(db: &consentric_testkit::TestDb) -> TestApp {
    let app = spawn_app_with(db, |e| {
        for role in ROLES {
            e.add_operator(role.as_str(), role, PASSWORD, "test")
                .expect("operator");
        }
        e.grant_budget("operator:analyst", "customers", 1.0, "test")
            .expect("budget");
        e
    });
    let orders = consentric_testkit::cdnow_sample_orders(0, 400, &["analytics", "personalization"]);
    for chunk in orders.chunks(200) {
        let r = app.send("/v1/batch", &json!({ "batch": chunk }));
        assert_eq!(r.status(), 200);
    }
    for (user, allowed) in [("ada", true), ("bob", false)] {
        let r = app.send(
            "/v1/identify",
            &json!({"userId": user, "traits": {"name": format!("{user} person"), "email": format!("{user}@example.com")},
                    "context": {"consent": {"categoryPreferences": {"personalization": allowed}}}}),
        );
        assert_eq!(r.status(), 200);
        let r = app.send(
            "/v1/track",
            &json!({"userId": user, "event": "Product Viewed", "properties": {"product_id": format!("{user}-sku")}}),
        );
        assert_eq!(r.status(), 200);
    }
    app
}

/// An operator's browser as far as HTTP goes.
pub struct Operator<'a> {
    app: &'a TestApp,
    http: Client,
    pub cookie: String,
}

impl<'a> Operator<'a> {
    pub fn log_in(app: &'a TestApp, name: &str, password: &str) -> Result<Self, u16> {
        let http = Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client");
        let r = http
            .post(format!("{}/console/login", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("name", name), ("password", password)]))
            .send()
            .expect("log in");
        if r.status() != 303 {
            return Err(r.status().as_u16());
        }
        let set = r.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(set.contains(attribute), "{attribute} in {set}");
        }
        let cookie = set
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_owned())
            .expect("token");
        Ok(Operator { app, http, cookie })
    }

    pub fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.app.base))
            .header("cookie", format!("consentric_console={}", self.cookie))
            .send()
            .expect("get")
    }

    pub fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}{path}", self.app.base))
            .header("cookie", format!("consentric_console={}", self.cookie))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .expect("post")
    }
}

/// Every page, and which roles may open it.
pub fn pages(ada: &str) -> Vec<(String, &'static [Role])> {
    use Role::*;
    vec![
        ("/console".into(), &[Admin, Dpo, Marketer]),
        ("/console/lifecycle".into(), &[Admin, Marketer]),
        ("/console/customers".into(), &[Admin, Marketer]),
        (format!("/console/customers/{ada}"), &[Admin, Marketer]),
        ("/console/segments".into(), &[Admin, Marketer]),
        ("/console/actions".into(), &[Admin, Marketer]),
        ("/console/privacy".into(), &[Admin, Dpo]),
        ("/console/analytics".into(), &[Admin, Analyst]),
        ("/console/cleanroom".into(), &[Admin, Dpo]),
        ("/console/account".into(), &[Admin, Dpo, Marketer, Analyst]),
    ]
}

fn profile_id(app: &TestApp, user: &str) -> String {
    app.profile(user)["profile_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

parity_test!(every_page_as_every_role_opens_or_refuses, |db| {
    let app = console_app(&db);
    let ada = profile_id(&app, "ada");
    for role in ROLES {
        let op = Operator::log_in(&app, role.as_str(), PASSWORD).expect("logged in");
        for (path, allowed) in pages(&ada) {
            let r = op.get(&path);
            let want = if allowed.contains(&role) { 200 } else { 403 };
            assert_eq!(r.status().as_u16(), want, "{} {path}", role.as_str());
            let csp = r.headers()["content-security-policy"]
                .to_str()
                .expect("csp");
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe"),
                "{csp}"
            );
            assert_eq!(r.headers()["cache-control"], "no-store");
        }
    }
    // Every form that changes something refuses the roles it is not for, even with their own
    // valid token.
    use Role::*;
    let actions: [(&str, &[Role]); 9] = [
        ("/console/analytics", &[Admin, Analyst]),
        ("/console/segments", &[Admin, Marketer]),
        ("/console/segments/size", &[Admin, Marketer]),
        ("/console/segments/proposals", &[Admin, Marketer]),
        ("/console/privacy/verify-audit", &[Admin, Dpo]),
        ("/console/privacy/retention", &[Admin, Dpo]),
        ("/console/privacy/keys/nokey/revoke", &[Admin, Dpo]),
        ("/console/cleanroom/invite", &[Admin, Dpo]),
        ("/console/cleanroom/join", &[Admin, Dpo]),
    ];
    for role in ROLES {
        let op = Operator::log_in(&app, role.as_str(), PASSWORD).expect("logged in");
        let page = op.get("/console/account").text().expect("page");
        let csrf = hidden(&page, "csrf").expect("a token");
        for (path, allowed) in actions {
            if !allowed.contains(&role) {
                let r = op.post(
                    path,
                    &[("csrf", &csrf), ("partner", "X"), ("output", "cardinality")],
                );
                assert_eq!(r.status(), 403, "{} {path}", role.as_str());
            }
        }
    }
    let sessions: Value = app.get("/v1/cleanroom/sessions").json().expect("sessions");
    assert!(
        !sessions.to_string().contains("\"X\""),
        "no refused invitation was made"
    );

    // Without a session every page sends the visitor to log in.
    let anonymous = Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    for (path, _) in pages(&ada) {
        let r = anonymous
            .get(format!("{}{path}", app.base))
            .send()
            .expect("get");
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/console/login");
    }
});

parity_test!(
    a_marketer_sees_only_customers_who_allowed_personalisation,
    |db| {
        let app = console_app(&db);
        let (ada, bob) = (profile_id(&app, "ada"), profile_id(&app, "bob"));
        let r = app
            .post("/v1/decisions/ada?placement=home")
            .bearer_auth(&app.admin)
            .send()
            .expect("decide");
        assert_eq!(r.status(), 200);
        let marketer = Operator::log_in(&app, "marketer", PASSWORD).expect("in");
        let page = marketer.get(&format!("/console/customers/{ada}"));
        assert_eq!(page.status(), 200);
        let page = page.text().expect("page");
        // What personalisation may use (her events), not what it may not (her name).
        assert!(
            page.contains("Product Viewed") && !page.contains("ada person"),
            "{page}"
        );
        assert!(
            page.contains("Recent decisions") && page.contains("home ·"),
            "her decisions: {page}"
        );
        let page = marketer.get(&format!("/console/customers/{bob}"));
        assert_eq!(page.status(), 403);
        assert!(!page.text().expect("page").contains("bob person"));
        // The admin sees both, and who read them: the marketer's read is audited as theirs.
        let admin = Operator::log_in(&app, "admin", PASSWORD).expect("in");
        let page = admin
            .get(&format!("/console/customers/{ada}"))
            .text()
            .expect("page");
        assert!(
            page.contains("ada person") && page.contains("operator:marketer"),
            "{page}"
        );
        assert!(admin
            .get(&format!("/console/customers/{bob}"))
            .text()
            .expect("page")
            .contains("bob person"));
        // Finding by any identity leads to the profile.
        let r = admin.get("/console/customers?q=user_id%3Aada");
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()["location"].to_str().expect("ascii"),
            format!("/console/customers/{ada}")
        );
        assert_eq!(
            admin.get("/console/customers?q=nobody-at-all").status(),
            404
        );
    }
);

parity_test!(log_in_refusals_csrf_and_log_out, |db| {
    let app = console_app(&db);
    assert_eq!(
        Operator::log_in(&app, "admin", "not the password").err(),
        Some(401)
    );
    assert_eq!(Operator::log_in(&app, "nobody", PASSWORD).err(), Some(401));
    let admin = Operator::log_in(&app, "admin", PASSWORD).expect("in");
    assert_eq!(
        admin.post("/console/logout", &[]).status(),
        403,
        "no CSRF token"
    );
    assert_eq!(
        admin
            .post("/console/logout", &[("csrf", &"0".repeat(64))])
            .status(),
        403
    );
    assert_eq!(admin.get("/console").status(), 200, "still logged in");
    let page = admin.get("/console").text().expect("page");
    let csrf = hidden(&page, "csrf").expect("a token");
    assert_eq!(
        admin.post("/console/logout", &[("csrf", &csrf)]).status(),
        303
    );
    assert_eq!(admin.get("/console").status(), 303, "logged out");
});

parity_test!(
    the_chart_library_is_the_pinned_one_and_charts_agree_with_the_api,
    |db| {
        use sha2::Digest;
        let app = console_app(&db);
        let sums = include_str!("../../assets/console/SHA256SUMS");
        for line in sums.lines() {
            let (sum, file) = line.split_once("  ").expect("sum and file");
            let r = app
                .client
                .get(format!("{}/console/assets/{file}", app.base))
                .send()
                .expect("asset");
            assert_eq!(r.status(), 200, "{file}");
            assert_eq!(
                hex::encode(sha2::Sha256::digest(r.bytes().expect("bytes"))),
                sum,
                "{file}"
            );
        }
        let marketer = Operator::log_in(&app, "marketer", PASSWORD).expect("in");
        let page = marketer.get("/console/lifecycle").text().expect("page");
        let summary: Value = app.get("/v1/lifecycle/summary").json().expect("summary");
        let json_of = |id: &str| -> Value {
            let start = page
                .find(&format!("id=\"{id}\">"))
                .expect("the chart's data")
                + id.len()
                + 6;
            let end = start + page[start..].find("</script>").expect("end");
            serde_json::from_str(&page[start..end]).expect("json")
        };
        let funnel = json_of("lifecycle-funnel");
        let stages = funnel["x"].as_array().expect("stages");
        let values = funnel["series"][0]["values"].as_array().expect("values");
        let mut shown = 0;
        for (stage, n) in stages.iter().zip(values) {
            let api = summary["funnel"][stage.as_str().expect("stage")]
                .as_u64()
                .unwrap_or(0);
            assert_eq!(n.as_u64(), Some(api), "{stage}");
            shown += api;
        }
        assert!(shown > 0, "customers are placed: {summary}");
        let flows: u64 = summary["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .filter_map(|f| f["transitions"].as_u64())
            .sum();
        assert_eq!(
            Some(flows),
            summary["transitions"].as_u64(),
            "every transition is a flow"
        );
        assert!(page.contains("Flows between stages"));
        assert_eq!(
            json_of("cohorts"),
            json!(summary["cohorts"]
                .as_array()
                .expect("cohorts")
                .iter()
                .map(|c| json!({"cohort": c["cohort"], "size": c["size"], "active": c["active"]}))
                .collect::<Vec<_>>())
        );
    }
);

parity_test!(
    an_analyst_asks_within_their_own_budget_and_sees_only_noisy_answers,
    |db| {
        let app = console_app(&db);
        let analyst = Operator::log_in(&app, "analyst", PASSWORD).expect("in");
        let page = analyst.get("/console/analytics").text().expect("page");
        let csrf = hidden(&page, "csrf").expect("a token");
        let ask = |op: &Operator, csrf: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![("csrf", csrf)];
            pairs.extend_from_slice(extra);
            op.post("/console/analytics", &pairs)
        };
        let r = ask(&analyst, &csrf, &[("query", "count"), ("epsilon", "0.5")]);
        assert_eq!(r.status(), 200);
        let page = r.text().expect("page");
        assert!(
            page.contains("Answer") && page.contains("Mechanism"),
            "{page}"
        );
        let r = ask(
            &analyst,
            &csrf,
            &[("query", "histogram"), ("by", "stage"), ("epsilon", "0.5")],
        );
        assert_eq!(r.status(), 200);
        assert!(
            r.text().expect("page").contains("release-bins"),
            "a chart of the bins"
        );
        // Bad input names the problem and spends nothing; a forged form changes nothing.
        let r = ask(&analyst, &csrf, &[("query", "count"), ("epsilon", "lots")]);
        assert_eq!(r.status(), 400);
        assert!(r.text().expect("page").contains("must be a number"));
        let r = ask(
            &analyst,
            &csrf,
            &[
                ("query", "sum"),
                ("measure", "revenue"),
                ("low", "0"),
                ("epsilon", "0.5"),
            ],
        );
        assert_eq!(r.status(), 400);
        assert_eq!(
            ask(
                &analyst,
                "forged",
                &[("query", "count"), ("epsilon", "0.5")]
            )
            .status(),
            403
        );
        // The admin has a budget of their own, none: refused, nothing spent of the analyst's.
        let admin = Operator::log_in(&app, "admin", PASSWORD).expect("in");
        let page = admin.get("/console/analytics").text().expect("page");
        assert!(page.contains("no privacy budget"), "{page}");
        let csrf = hidden(&page, "csrf").expect("a token");
        let r = ask(&admin, &csrf, &[("query", "count"), ("epsilon", "0.5")]);
        assert_eq!(r.status(), 400);
        // Two ε = 0.5 answers spent ρ = 2 × 0.125 of the analyst's 1.
        let page = analyst.get("/console/analytics").text().expect("page");
        assert!(page.contains("0.7500"), "{page}");
    }
);

parity_test!(
    a_dpo_verifies_the_audit_chain_extends_requests_and_revokes_keys,
    |db| {
        let app = console_app(&db);
        let r = app
        .post("/v1/dsr")
        .bearer_auth(&app.admin)
        .json(&json!({"kind": "erasure", "regime": "gdpr", "identity": "user_id:ada", "contact": "ada@example.com"}))
        .send()
        .expect("file");
        assert_eq!(r.status(), 201);
        let request: Value = r.json().expect("json");
        let id = request["request_id"].as_str().expect("id").to_owned();
        let dpo = Operator::log_in(&app, "dpo", PASSWORD).expect("in");
        let page = dpo.get("/console/privacy").text().expect("page");
        assert!(page.contains(&id), "the request is listed");
        assert!(
            page.contains("The data map") && page.contains("advertising partners"),
            "recipients on the map"
        );
        assert!(
            page.contains("dsr.received"),
            "the audit log lists the request's filing"
        );
        // The audit log pages backwards from the newest record.
        let older = page
            .split("/console/privacy?audit_before=")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse::<i64>().ok())
            .expect("a link to older records");
        let next = dpo
            .get(&format!("/console/privacy?audit_before={older}"))
            .text()
            .expect("page");
        assert!(!next.contains("dsr.received"), "an older page");
        assert!(
            next.contains(&format!(">{}<", older - 1)),
            "starts just before: {older}"
        );
        let csrf = hidden(&page, "csrf").expect("a token");

        let r = dpo.post("/console/privacy/verify-audit", &[("csrf", &csrf)]);
        assert_eq!(r.status(), 200);
        assert!(r.text().expect("page").contains("The audit chain verifies"));
        let r = dpo.post("/console/privacy/retention", &[("csrf", &csrf)]);
        assert_eq!(r.status(), 200);
        assert!(r.text().expect("page").contains("Retention ran"));

        // A wrong code verifies nothing.
        let r = dpo.post(
            &format!("/console/privacy/requests/{id}/verify"),
            &[("csrf", &csrf), ("code", "000000")],
        );
        assert_eq!(r.status(), 400, "a wrong code");
        assert!(r.text().expect("page").contains("Refused"));
        let shown: Value = app.get(&format!("/v1/dsr/{id}")).json().expect("json");
        assert_eq!(
            shown["status"], "received",
            "still waiting for the right code"
        );
        // Not yet verified by the customer: carrying it out is refused, and nothing changes.
        let r = dpo.post(
            &format!("/console/privacy/requests/{id}/process"),
            &[("csrf", &csrf)],
        );
        assert_eq!(r.status(), 400);
        assert_eq!(app.get("/v1/profiles/ada").status(), 200);
        let r = dpo.post(
            &format!("/console/privacy/requests/{id}/extend"),
            &[("csrf", &csrf), ("days", "999"), ("reason", "complex")],
        );
        assert_eq!(r.status(), 400, "past the law's limit");
        let r = dpo.post(
            &format!("/console/privacy/requests/{id}/extend"),
            &[("csrf", &csrf), ("days", "30"), ("reason", "complex")],
        );
        assert_eq!(r.status(), 200);
        let shown: Value = app.get(&format!("/v1/dsr/{id}")).json().expect("json");
        assert_eq!(shown["extended_days"], 30);

        // Revoking a key: a forged form does nothing, the DPO's does.
        let keys: Value = app.get("/v1/keys").json().expect("keys");
        let browser_key = keys
            .as_array()
            .or_else(|| keys["keys"].as_array())
            .expect("keys")
            .iter()
            .find(|k| k["label"] == "test browser")
            .and_then(|k| k["key_id"].as_str())
            .expect("the browser key")
            .to_owned();
        let path = format!("/console/privacy/keys/{browser_key}/revoke");
        assert_eq!(dpo.post(&path, &[("csrf", "forged")]).status(), 403);
        let marketer = Operator::log_in(&app, "marketer", PASSWORD).expect("in");
        assert_eq!(
            marketer.post(&path, &[("csrf", &csrf)]).status(),
            403,
            "not a marketer's"
        );
        let event = json!({"anonymousId": "v", "event": "E"});
        assert_eq!(
            app.send_from_browser("/v1/track", &event).status(),
            200,
            "still live"
        );
        assert_eq!(dpo.post(&path, &[("csrf", &csrf)]).status(), 200);
        assert_eq!(
            app.send_from_browser("/v1/track", &event).status(),
            401,
            "revoked"
        );
    }
);

parity_test!(a_marketer_defines_a_segment_and_sees_its_members, |db| {
    let app = console_app(&db);
    let marketer = Operator::log_in(&app, "marketer", PASSWORD).expect("in");
    let page = marketer.get("/console/segments").text().expect("page");
    let csrf = hidden(&page, "csrf").expect("a token");
    let define = |name: &str, condition: &str, token: &str| {
        marketer.post(
            "/console/segments",
            &[("csrf", token), ("name", name), ("condition", condition)],
        )
    };
    let loyal = r#"{"all": [{"field": "orders", "op": "gte", "value": 2}]}"#;
    // Sized while typed: the page's script asks this, with the form's token.
    let size = |condition: &str, token: &str| {
        marketer.post(
            "/console/segments/size",
            &[("csrf", token), ("condition", condition)],
        )
    };
    let r = size(loyal, &csrf);
    assert_eq!(r.status(), 200);
    let typed: Value = r.json().expect("json");
    assert_eq!(size("{\"all\": [", &csrf).status(), 400, "not JSON yet");
    assert_eq!(size(loyal, "forged").status(), 403);
    assert_eq!(define("loyal", loyal, "forged").status(), 403);
    let r = define("loyal", "{not json", &csrf);
    assert_eq!(r.status(), 400);
    assert!(r.text().expect("page").contains("not JSON"));
    let r = define(
        "loyal",
        r#"{"all": [{"field": "shoe_size", "op": "gte", "value": 2}]}"#,
        &csrf,
    );
    assert_eq!(r.status(), 400);
    let segments: Value = app.get("/v1/segments").json().expect("json");
    assert!(
        !segments.to_string().contains("loyal"),
        "nothing was defined: {segments}"
    );
    let r = define("loyal", loyal, &csrf);
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/segments/loyal");
    let page = marketer
        .get("/console/segments/loyal")
        .text()
        .expect("page");
    let api: Value = app.get("/v1/segments/loyal").json().expect("preview");
    let size = api["size"].as_u64().expect("size");
    assert_eq!(
        typed["size"].as_u64(),
        Some(size),
        "the size shown while typing is the saved one's"
    );
    assert!(size > 0, "{api}");
    assert!(
        page.contains(&format!("<strong>{size}</strong> customers match")),
        "{page}"
    );
    assert!(marketer
        .get("/console/segments")
        .text()
        .expect("page")
        .contains("/console/segments/loyal"));
    assert_eq!(marketer.get("/console/segments/nothing").status(), 404);
    assert!(size > 50, "more than a page of members: {size}");
    {
        let second = marketer
            .get("/console/segments/loyal?page=1")
            .text()
            .expect("page");
        assert!(second.contains("Members, page 2 of"), "{second}");
        let first = marketer
            .get("/console/segments/loyal")
            .text()
            .expect("page");
        let first_member = first
            .split("/console/customers/")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a member");
        assert!(
            !second.contains(&format!("/console/customers/{first_member}\"")),
            "another page's members"
        );
    }
    let r = marketer.post("/console/segments/proposals", &[("csrf", &csrf)]);
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    assert!(page.contains("k-means chose"), "{page}");
    assert_eq!(
        marketer
            .post("/console/segments/proposals", &[("csrf", "forged")])
            .status(),
        403
    );
});

parity_test!(
    actions_show_how_often_each_was_chosen_and_the_clean_room_its_sessions,
    |db| {
        let app = console_app(&db);
        let r = app
            .post("/v1/decisions/ada?placement=home")
            .bearer_auth(&app.admin)
            .send()
            .expect("decide");
        assert_eq!(r.status(), 200);
        let decision: Value = r.json().expect("json");
        let chosen = decision["action"]["name"].as_str().map(str::to_owned);
        let marketer = Operator::log_in(&app, "marketer", PASSWORD).expect("in");
        let page = marketer.get("/console/actions").text().expect("page");
        let start = page
            .find("id=\"actions-chosen\">")
            .expect("the chart's data")
            + 20;
        let end = start + page[start..].find("</script>").expect("end");
        let spec: Value = serde_json::from_str(&page[start..end]).expect("json");
        let names = spec["x"].as_array().expect("names");
        let counts = spec["series"][0]["values"].as_array().expect("counts");
        let total: u64 = counts.iter().filter_map(Value::as_u64).sum();
        match chosen {
            Some(name) => {
                let i = names
                    .iter()
                    .position(|n| n == &json!(name))
                    .expect("in the catalogue");
                assert_eq!(counts[i], 1, "{spec}");
                assert_eq!(total, 1);
            }
            None => assert_eq!(total, 0, "no action was chosen: {decision}"),
        }

        let r = app
            .post("/v1/cleanroom/sessions")
            .bearer_auth(&app.admin)
            .json(&json!({"partner": "Partner <b>Shop</b>", "output": "cardinality"}))
            .send()
            .expect("invite");
        assert_eq!(r.status(), 200, "{:?}", r.text());
        let dpo = Operator::log_in(&app, "dpo", PASSWORD).expect("in");
        let page = dpo.get("/console/cleanroom").text().expect("page");
        assert!(
            page.contains("Partner &lt;b&gt;Shop&lt;/b&gt;"),
            "listed, as text: {page}"
        );
    }
);

/// The JSON a chart on `page` is drawn from.
pub fn chart_data(page: &str, id: &str) -> Value {
    let start = page
        .find(&format!("id=\"{id}\">"))
        .expect("the chart's data")
        + id.len()
        + 6;
    let end = start + page[start..].find("</script>").expect("end");
    serde_json::from_str(&page[start..end]).expect("json")
}

parity_test!(
    the_overview_counts_events_per_hour_and_consent_per_purpose,
    |db| {
        let app = console_app(&db);
        let dpo = Operator::log_in(&app, "dpo", PASSWORD).expect("in");
        let page = dpo.get("/console").text().expect("page");
        assert!(
            !page.contains("overview-funnel"),
            "the lifecycle funnel is not the DPO's"
        );
        let events = chart_data(&page, "overview-events");
        let per_hour: u64 = events["series"][0]["values"]
            .as_array()
            .expect("values")
            .iter()
            .filter_map(Value::as_u64)
            .sum();
        // Everything here arrived within the last hour of the test's clock.
        let totals: u64 = ["ada", "bob"]
            .iter()
            .map(|u| {
                app.profile(u)["counters"]["events"]
                    .as_u64()
                    .expect("events")
            })
            .sum::<u64>()
            + consentric_testkit::cdnow_sample_orders(0, 400, &[]).len() as u64;
        assert_eq!(per_hour, totals);
        let consent = chart_data(&page, "overview-consent");
        let purposes = consent["x"].as_array().expect("purposes");
        let i = purposes
            .iter()
            .position(|p| p == "personalization")
            .expect("personalization");
        assert_eq!(
            consent["series"][0]["values"][i], 401,
            "400 CDNOW customers and ada granted: {consent}"
        );
        assert_eq!(consent["series"][1]["values"][i], 1, "bob denied");
        // Ada granted and Bob denied personalisation this month: half the month's choices.
        let months = chart_data(&page, "overview-consent-months");
        assert_eq!(
            months["x"].as_array().and_then(|m| m.last()),
            Some(&json!("2024-05"))
        );
        let series = months["series"].as_array().expect("series");
        let personalization = series
            .iter()
            .find(|s| s["label"] == "personalization")
            .expect("personalization");
        assert_eq!(
            personalization["values"].as_array().and_then(|v| v.last()),
            Some(&json!(0.5))
        );
    }
);

parity_test!(
    an_operator_changes_their_password_and_turns_on_two_factor_log_in,
    |db| {
        let app = console_app(&db);
        let mia = Operator::log_in(&app, "marketer", PASSWORD).expect("in");
        let page = mia.get("/console/account").text().expect("page");
        let csrf = hidden(&page, "csrf").expect("a token");
        let new = "a brand new long password";
        // The current password is asked for; a short new one is refused; a forged form too.
        let r = mia.post(
            "/console/account/password",
            &[("csrf", &csrf), ("current", "not it at all"), ("new", new)],
        );
        assert_eq!(r.status(), 400);
        let r = mia.post(
            "/console/account/password",
            &[("csrf", &csrf), ("current", PASSWORD), ("new", "short")],
        );
        assert_eq!(r.status(), 400);
        let r = mia.post(
            "/console/account/password",
            &[("csrf", "forged"), ("current", PASSWORD), ("new", new)],
        );
        assert_eq!(r.status(), 403);
        assert!(
            Operator::log_in(&app, "marketer", PASSWORD).is_ok(),
            "unchanged so far"
        );
        let r = mia.post(
            "/console/account/password",
            &[("csrf", &csrf), ("current", PASSWORD), ("new", new)],
        );
        assert_eq!(r.status(), 303);
        assert_eq!(
            mia.get("/console").status(),
            303,
            "the session ended with the old password"
        );
        assert_eq!(
            Operator::log_in(&app, "marketer", PASSWORD).err(),
            Some(401)
        );
        let mia = Operator::log_in(&app, "marketer", new).expect("the new password");

        // Two-factor: the secret is shown once; from then on a log-in needs its code.
        let page = mia.get("/console/account").text().expect("page");
        let csrf = hidden(&page, "csrf").expect("a token");
        let page = mia
            .post("/console/account/totp", &[("csrf", &csrf)])
            .text()
            .expect("page");
        assert!(
            page.contains("otpauth://totp/Consentric:marketer"),
            "{page}"
        );
        assert_eq!(
            Operator::log_in(&app, "marketer", new).err(),
            Some(401),
            "a code is needed now"
        );
    }
);

parity_test!(
    the_value_models_tracking_plot_and_distributions_come_from_the_fit,
    |db| {
        let app = console_app(&db);
        let r = app
            .post("/v1/lifecycle/fit")
            .bearer_auth(&app.admin)
            .send()
            .expect("fit");
        assert_eq!(r.status(), 200);
        let summary: Value = app.get("/v1/lifecycle/summary").json().expect("summary");
        let bg = summary["models"]
            .as_array()
            .expect("models")
            .iter()
            .find(|m| m["model"] == "bg_nbd")
            .expect("BG/NBD")
            .clone();
        let tracking = &bg["tracking"];
        let actual = tracking["actual"].as_array().expect("actual");
        assert!(
            actual.last().and_then(Value::as_u64).expect("weeks") > 0,
            "repeat purchases: {tracking}"
        );
        let fitted = bg["customers"].as_u64().expect("customers");
        let counted: u64 = bg["distributions"]["p_alive"]["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .filter_map(Value::as_u64)
            .sum();
        assert_eq!(
            counted, fitted,
            "every customer fitted on is in a P(alive) bin"
        );
        let marketer = Operator::log_in(&app, "marketer", PASSWORD).expect("in");
        let page = marketer.get("/console/lifecycle").text().expect("page");
        let drawn = chart_data(&page, "bg_nbd-tracking");
        assert_eq!(&drawn["series"][0]["values"], &tracking["actual"]);
        let p_alive = chart_data(&page, "bg_nbd-p-alive");
        assert_eq!(
            &p_alive["series"][0]["values"],
            &bg["distributions"]["p_alive"]["counts"]
        );
    }
);

parity_test!(
    a_dpo_invites_joins_and_runs_clean_room_sessions_from_the_page,
    |db| {
        let app = console_app(&db);
        let dpo = Operator::log_in(&app, "dpo", PASSWORD).expect("in");
        let page = dpo.get("/console/cleanroom").text().expect("page");
        let csrf = hidden(&page, "csrf").expect("a token");
        assert_eq!(
            dpo.post(
                "/console/cleanroom/invite",
                &[
                    ("csrf", "forged"),
                    ("partner", "P"),
                    ("output", "cardinality")
                ]
            )
            .status(),
            403
        );
        let r = dpo.post(
            "/console/cleanroom/invite",
            &[
                ("csrf", &csrf),
                ("partner", "Shop B"),
                ("output", "nonsense"),
            ],
        );
        assert_eq!(r.status(), 400);
        let r = dpo.post(
            "/console/cleanroom/invite",
            &[
                ("csrf", &csrf),
                ("partner", "Shop B"),
                ("output", "cardinality"),
            ],
        );
        assert_eq!(r.status(), 200);
        let page = r.text().expect("page");
        assert!(
            page.contains("Invitation made") && page.contains("Shop B"),
            "{page}"
        );
        let sessions: Value = app.get("/v1/cleanroom/sessions").json().expect("sessions");
        let invited = sessions
            .as_array()
            .or_else(|| sessions["sessions"].as_array())
            .expect("sessions")
            .iter()
            .find(|s| s["partner"] == "Shop B")
            .expect("the invitation is recorded")
            .clone();
        assert_eq!(invited["role"], "host");

        // Joining a host that does not answer: recorded, and a run says why it did not complete.
        let session = "a".repeat(32);
        let token = "b".repeat(64);
        let r = dpo.post(
            "/console/cleanroom/join",
            &[
                ("csrf", &csrf),
                ("host_url", "http://127.0.0.1:9"),
                ("session", &session),
                ("token", &token),
                ("partner", "Shop C"),
            ],
        );
        assert_eq!(r.status(), 200, "{:?}", r.text());
        let page = dpo.get("/console/cleanroom").text().expect("page");
        assert!(
            page.contains(&format!("/console/cleanroom/{session}/run")),
            "a run button"
        );
        let r = dpo.post(
            &format!("/console/cleanroom/{session}/run"),
            &[("csrf", &csrf)],
        );
        assert_eq!(r.status(), 502);
        assert!(r.text().expect("page").contains("The run did not complete"));
    }
);
