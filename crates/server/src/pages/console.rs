//! The operators' console: a page per area, each chart drawn by uPlot from the JSON beside it,
//! with the same numbers in a table underneath. Everything a customer or a browser key could
//! have written (traits, event names, ids) reaches the page only as escaped text.

use consentric_engine::analytics::{BudgetView, Release};
use consentric_engine::cleanroom::SessionView;
use consentric_engine::{
    ActionView, Area, AuditEntry, AuditVerification, ConsentHistoryEntry, CustomerLifecycle,
    DsrView, KeyInfo, LifecycleSummary, LoggedDecision, OperatorSession, ProfileView,
    PurposeScopedProfile, SegmentPreview, SegmentView,
};
use consentric_model::Stage;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::{json, Value};

use super::{day, when};

const AREAS: [(Area, &str, &str); 8] = [
    (Area::Overview, "/console", "Overview"),
    (Area::Lifecycle, "/console/lifecycle", "Lifecycle"),
    (Area::Customers, "/console/customers", "Customers"),
    (Area::Segments, "/console/segments", "Segments"),
    (Area::Actions, "/console/actions", "Actions"),
    (Area::Privacy, "/console/privacy", "Privacy"),
    (Area::Analytics, "/console/analytics", "Analytics"),
    (Area::Cleanroom, "/console/cleanroom", "Clean room"),
];

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Consentric console" }
        link rel="stylesheet" href="/console/assets/console.css";
        link rel="stylesheet" href="/console/assets/uPlot.min.css";
        script src="/console/assets/uPlot.iife.min.js" defer {}
        script src="/console/assets/console.js" defer {}
    }
}

/// A page of the console for `session`, in `area`.
pub(crate) fn layout(session: &OperatorSession, area: Area, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                nav.side aria-label="Console" {
                    p.brand { "Consentric" }
                    ul {
                        @for (a, href, label) in AREAS {
                            @if session.role().may(a) {
                                li {
                                    @if a == area {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        p { a href="/console/account" { (session.name()) } " · " (session.role().as_str()) }
                        form method="post" action="/console/logout" {
                            (csrf(session))
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub(crate) fn csrf(session: &OperatorSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token()); }
}

/// The log-in form.
pub(crate) fn login(message: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Log in")) }
            body.login {
                main.login-box id="main" {
                    h1 { "Consentric console" }
                    @if let Some(m) = message { p.alert role="alert" { (m) } }
                    form method="post" action="/console/login" {
                        label for="name" { "Name" }
                        input id="name" name="name" type="text" autocomplete="username" required;
                        label for="password" { "Password" }
                        input id="password" name="password" type="password" autocomplete="current-password" required;
                        label for="code" { "Two-factor code (if you use one)" }
                        input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code";
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// A refusal inside the console.
pub(crate) fn refused(session: &OperatorSession, area: Area, message: &str) -> Markup {
    layout(
        session,
        area,
        "Not for your role",
        html! { p.alert role="alert" { (message) } },
    )
}

/// A chart and its numbers: the JSON uPlot draws from, the element it draws in, and a table.
fn chart(id: &str, caption: &str, spec: &Value) -> Markup {
    let x: Vec<String> = spec["x"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let series = spec["series"].as_array().cloned().unwrap_or_default();
    // `</` cannot end the script element early: JSON may escape the slash.
    let data = spec.to_string().replace("</", "<\\/");
    html! {
        figure {
            figcaption { (caption) }
            div.chart data-chart=(id) role="img" aria-label=(caption) {}
            script type="application/json" id=(id) { (PreEscaped(data)) }
            details {
                summary { "The numbers" }
                div.scroll tabindex="0" role="region" aria-label=(caption) {
                    table {
                        thead { tr { th scope="col" { (spec["xLabel"].as_str().unwrap_or("")) } @for s in &series { th.num scope="col" { (s["label"].as_str().unwrap_or("")) } } } }
                        tbody {
                            @for (i, label) in x.iter().enumerate() {
                                tr {
                                    th scope="row" { (label) }
                                    @for s in &series { td.num { (s["values"][i]) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the overview counts.
pub(crate) struct Overview {
    pub(crate) customers: u64,
    pub(crate) events: u64,
    pub(crate) open_requests: usize,
    pub(crate) overdue_requests: usize,
    pub(crate) funnel: Option<Value>,
    pub(crate) stats: consentric_engine::ConsoleStats,
}

pub(crate) fn overview(session: &OperatorSession, o: &Overview) -> Markup {
    layout(
        session,
        Area::Overview,
        "Overview",
        html! {
            div.cards {
                div.card { div.n { (o.customers) } div.what { "customers" } }
                div.card { div.n { (o.events) } div.what { "events stored" } }
                div.card { div.n { (o.open_requests) } div.what { "open data-subject requests" } }
                div.card { div.n { (o.overdue_requests) } div.what { "requests past their deadline" } }
            }
            (chart("overview-events", "Events received per hour, the last 48 hours (UTC)", &json!({
                "kind": "bars", "xLabel": "hour", "y": "events",
                "x": o.stats.events_per_hour.iter().map(|(h, _)| h.get(5..13).unwrap_or(h).replace('T', " ")).collect::<Vec<_>>(),
                "series": [{"label": "events", "values": o.stats.events_per_hour.iter().map(|(_, n)| n).collect::<Vec<_>>()}],
            })))
            (chart("overview-consent", "Customers per purpose by their latest decision", &json!({
                "kind": "bars", "xLabel": "purpose", "y": "customers",
                "x": o.stats.consent.iter().map(|r| r.purpose.clone()).collect::<Vec<_>>(),
                "series": [
                    {"label": "granted", "values": o.stats.consent.iter().map(|r| r.granted).collect::<Vec<_>>()},
                    {"label": "denied or withdrawn", "values": o.stats.consent.iter().map(|r| r.refused).collect::<Vec<_>>()},
                ],
            })))
            @if !o.stats.consent_by_month.is_empty() {
                (chart("overview-consent-months", "Of the choices recorded each month, the share that granted", &json!({
                    "kind": "lines", "xLabel": "month", "y": "share granted",
                    "x": o.stats.consent_by_month.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
                    "series": o.stats.consent_by_month[0].1.iter().enumerate().map(|(i, (purpose, _))| json!({
                        "label": purpose,
                        "values": o.stats.consent_by_month.iter().map(|(_, shares)| shares.get(i).and_then(|(_, s)| s.map(|s| (s * 1000.0).round() / 1000.0))).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })))
            }
            @if let Some(f) = &o.funnel {
                (chart("overview-funnel", "Customers per lifecycle stage now", f))
            }
        },
    )
}

fn stages_spec(funnel: &std::collections::BTreeMap<Stage, u64>) -> Value {
    json!({
        "kind": "bars",
        "xLabel": "stage",
        "y": "customers",
        "x": Stage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "series": [{"label": "customers", "values": Stage::ALL.iter().map(|s| funnel.get(s).copied().unwrap_or(0)).collect::<Vec<_>>()}],
    })
}

fn distribution_spec(d: &consentric_engine::Distribution, decimals: usize) -> Value {
    json!({
        "kind": "bars", "xLabel": "from", "y": "customers",
        "x": d.edges.iter().map(|e| format!("{e:.decimals$}")).collect::<Vec<_>>(),
        "series": [{"label": "customers", "values": d.counts}],
    })
}

/// The funnel now, as the overview and the lifecycle page draw it.
pub(crate) fn funnel_spec(summary: &LifecycleSummary) -> Value {
    stages_spec(&summary.funnel)
}

pub(crate) fn lifecycle(session: &OperatorSession, s: &LifecycleSummary) -> Markup {
    let months: Vec<&str> = s
        .funnel_over_time
        .iter()
        .map(|r| r.month.as_str())
        .collect();
    let per_month = json!({
        "kind": "lines",
        "xLabel": "month",
        "y": "customers",
        "x": months,
        "series": Stage::ALL.iter().map(|stage| json!({
            "label": stage.as_str(),
            "values": s.funnel_over_time.iter().map(|r| r.stages.get(stage).copied().unwrap_or(0)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let cohort_json = json!(s
        .cohorts
        .iter()
        .map(|c| json!({"cohort": c.cohort, "size": c.size, "active": c.active}))
        .collect::<Vec<_>>())
    .to_string()
    .replace("</", "<\\/");
    let widest = s.cohorts.iter().map(|c| c.active.len()).max().unwrap_or(0);
    layout(
        session,
        Area::Lifecycle,
        "Lifecycle",
        html! {
            p.muted { (s.customers) " customers with a basis for " code { (s.purpose) } "; " (s.left_out) " left out for want of one; " (s.transitions) " stage transitions." }
            (chart("lifecycle-funnel", "Customers per stage now", &funnel_spec(s)))
            (chart("lifecycle-months", "Customers per stage at the end of each month", &per_month))
            h2 { "Flows between stages" }
            p.muted { "Transitions recorded, by the stage a customer left (rows) and entered (columns); darker is more." }
            @let most = s.flows.iter().map(|f| f.transitions).max().unwrap_or(0).max(1);
            div.scroll tabindex="0" role="region" aria-label="Flows between stages" {
                table.heat {
                    thead { tr { th scope="col" { "left ↓ entered →" } @for to in Stage::ALL { th.num scope="col" { (to.as_str()) } } } }
                    tbody {
                        @for from in std::iter::once(None).chain(Stage::ALL.iter().copied().map(Some)) {
                            @if s.flows.iter().any(|f| f.from == from) {
                                tr {
                                    th scope="row" { (from.map_or("first placement", |f| f.as_str())) }
                                    @for to in Stage::ALL {
                                        @let n = s.flows.iter().find(|f| f.from == from && f.to == to).map_or(0, |f| f.transitions);
                                        td.num class=(format!("h{}", (n as f64 / most as f64 * 10.0).round() as u32)) { (n) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Retention by month of first purchase" }
            p.muted { "Each cell: the share of a cohort buying in the n-th month after its first; darker is more." }
            script type="application/json" id="cohorts" { (PreEscaped(cohort_json)) }
            div.scroll tabindex="0" role="region" aria-label="Cohort retention" {
                table.heat {
                    thead { tr { th scope="col" { "cohort" } th.num scope="col" { "size" } @for m in 0..widest { th.num scope="col" { "+" (m) } } } }
                    tbody {
                        @for c in &s.cohorts {
                            tr {
                                th scope="row" { (c.cohort) }
                                td.num { (c.size) }
                                @for a in &c.active {
                                    @let share = if c.size == 0 { 0.0 } else { *a as f64 / c.size as f64 };
                                    td.num class=(format!("h{}", (share * 10.0).round() as u32)) title=(format!("{a} of {}", c.size)) { (format!("{:.0}%", share * 100.0)) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Value models" }
            @if s.models.is_empty() { p { "No model is fitted yet (" code { "consentric lifecycle fit" } ")." } }
            @for m in &s.models {
                h3 { (m.model) }
                @if let Some(t) = &m.tracking {
                    (chart(&format!("{}-tracking", m.model), "Cumulative repeat purchases, actual and expected by the model (the holdout starts after the calibration window)", &json!({
                        "kind": "lines", "xLabel": "week", "y": "repeat purchases",
                        "x": t.weeks.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
                        "series": [
                            {"label": "actual", "values": t.actual},
                            {"label": "expected", "values": t.expected.iter().map(|v| v.map(|v| (v * 10.0).round() / 10.0)).collect::<Vec<_>>()},
                        ],
                    })))
                    p.muted { "Calibration: the first " (t.holdout_from) " weeks; holdout: the " (t.weeks.len() - t.holdout_from) " after."
                        @if t.expected.iter().all(Option::is_none) { " The model's expectation is not defined for these parameters (a + b ≤ 1): only the actual line is drawn." } }
                }
                @if let Some(d) = &m.distributions {
                    (chart(&format!("{}-p-alive", m.model), "Customers by P(alive)", &distribution_spec(&d.p_alive, 2)))
                    @if let Some(clv) = &d.clv {
                        (chart(&format!("{}-clv", m.model), "Customers by CLV", &distribution_spec(clv, 0)))
                    }
                }
                p.muted { "Fitted on " (m.customers) " customers up to " (m.calibration_end) "; log-likelihood " (format!("{:.2}", m.ln_likelihood)) " after " (m.iterations) " iterations." }
                table {
                    thead { tr { th scope="col" { "parameter" } th.num scope="col" { "estimate" } th.num scope="col" { "standard error" } } }
                    tbody {
                        @for (name, value) in &m.params {
                            tr {
                                th scope="row" { (name) }
                                td.num { (format!("{value:.4}")) }
                                td.num { @match m.std_errors.get(name).copied().flatten() { Some(se) => (format!("{se:.4}")), None => "–" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The search form, and what it found.
pub(crate) fn customers(session: &OperatorSession, q: &str, message: Option<&str>) -> Markup {
    layout(
        session,
        Area::Customers,
        "Customers",
        html! {
            form method="get" action="/console/customers" role="search" {
                label for="q" { "Find a customer by any identity (user id, anonymous id, profile id)" }
                input id="q" name="q" type="search" value=(q) required;
                button type="submit" { "Find" }
            }
            @if let Some(m) = message { p.alert role="status" { (m) } }
        },
    )
}

fn traits_table(traits: &[consentric_engine::TraitView]) -> Markup {
    html! {
        div.scroll tabindex="0" role="region" aria-label="Traits" {
            table {
                thead { tr { th scope="col" { "trait" } th scope="col" { "value" } th scope="col" { "set" } } }
                tbody {
                    @for t in traits {
                        tr {
                            th scope="row" { (t.name) }
                            td { @match &t.value { Value::String(s) => (s), other => (other.to_string()) } }
                            td { (when(&t.updated_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// What an admin sees of one customer.
pub(crate) struct CustomerPage {
    pub(crate) profile: ProfileView,
    pub(crate) consent: Vec<ConsentHistoryEntry>,
    pub(crate) lifecycle: Option<CustomerLifecycle>,
    pub(crate) decisions: Vec<LoggedDecision>,
    pub(crate) trail: Vec<AuditEntry>,
    pub(crate) events: Vec<consentric_engine::StoredEventView>,
}

fn lifecycle_block(l: &Option<CustomerLifecycle>) -> Markup {
    html! {
        h2 { "Lifecycle" }
        @match l {
            None => p.muted { "No basis for the stage purpose: not placed." },
            Some(l) => {
                p { "Stage: " strong { (l.stage.map_or("none", |s| s.as_str())) }
                    @if let Some(since) = &l.since { " since " (day(since)) }
                    @if let Some(rule) = &l.rule { " (" (rule) ")" } }
                @if let Some(s) = &l.scores {
                    p { "P(alive) " (format!("{:.2}", s.p_alive)) "; expected purchases in 90 days " (format!("{:.2}", s.expected_purchases_90d))
                        @if let Some(clv) = s.clv { "; CLV " (format!("{clv:.2}")) } }
                }
            }
        }
    }
}

fn decisions_block(decisions: &[LoggedDecision]) -> Markup {
    html! {
        h2 { "Recent decisions" }
        @if decisions.is_empty() { p.muted { "None logged." } }
        @for d in decisions {
            details {
                summary { (d.placement) " · " (when(&d.decided_at)) }
                pre { (serde_json::to_string_pretty(&d.decision).unwrap_or_default()) }
            }
        }
    }
}

pub(crate) fn customer(session: &OperatorSession, c: &CustomerPage) -> Markup {
    let p = &c.profile;
    layout(
        session,
        Area::Customers,
        &format!("Customer {}", p.profile_id),
        html! {
            p { "Since " (day(&p.created_at)) "; " (p.counters.events) " events, " (p.counters.orders) " orders, revenue " (format!("{:.2}", p.counters.revenue)) "." }
            h2 { "Identities" }
            ul { @for i in &p.identities { li { (i.kind) ": " code { (i.value) } " (first seen " (day(&i.first_seen)) ")" } } }
            h2 { "Traits" }
            (traits_table(&p.traits))
            h2 { "Consent history" }
            div.scroll tabindex="0" role="region" aria-label="Consent history" {
                table {
                    thead { tr { th scope="col" { "when" } th scope="col" { "purpose" } th scope="col" { "decision" } th scope="col" { "source" } th.num scope="col" { "version" } } }
                    tbody { @for h in c.consent.iter().rev() { tr { td { (when(&h.decided_at)) } td { (h.purpose) } td { (h.decision) } td { (h.source) } td.num { (h.purpose_version) } } } }
                }
            }
            h2 { "Recent events" }
            div.scroll tabindex="0" role="region" aria-label="Recent events" {
                table {
                    thead { tr { th scope="col" { "when" } th scope="col" { "call" } th scope="col" { "event or page" } } }
                    tbody {
                        @for e in &c.events {
                            tr {
                                td { (e.event.get("timestamp").and_then(Value::as_str).map(when).unwrap_or_default()) }
                                td { (e.event.get("type").and_then(Value::as_str).unwrap_or("")) }
                                td { (e.event.get("event").or_else(|| e.event.get("name")).and_then(Value::as_str).unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            (lifecycle_block(&c.lifecycle))
            (decisions_block(&c.decisions))
            h2 { "Who read or changed this customer's data" }
            div.scroll tabindex="0" role="region" aria-label="Audit trail" {
                table {
                    thead { tr { th scope="col" { "when" } th scope="col" { "who" } th scope="col" { "what" } th scope="col" { "purpose" } } }
                    tbody {
                        @for a in &c.trail {
                            tr { td { (when(&a.at)) } td { (a.actor) } td { (a.action) } td { (a.detail.get("purpose").and_then(Value::as_str).unwrap_or("")) } }
                        }
                    }
                }
            }
        },
    )
}

/// What a marketer sees of one customer: the personalisation purpose's view, through its gate.
pub(crate) fn customer_for_purpose(
    session: &OperatorSession,
    view: &PurposeScopedProfile,
    lifecycle: &Option<CustomerLifecycle>,
    decisions: &[LoggedDecision],
) -> Markup {
    layout(
        session,
        Area::Customers,
        &format!("Customer {}", view.profile_id),
        html! {
            p.muted { "What " code { (view.purpose) } " may use: " (view.categories.join(", ")) "." }
            h2 { "Traits" }
            (traits_table(&view.traits))
            @if !view.withheld.is_empty() { p.muted { "Withheld for this purpose: " (view.withheld.join(", ")) } }
            (lifecycle_block(lifecycle))
            (decisions_block(decisions))
            h2 { "Recent events" }
            ul { @for e in view.events.iter().take(20) { li { (e.get("event").or_else(|| e.get("type")).and_then(Value::as_str).unwrap_or("")) } } }
        },
    )
}

/// What the last action on the privacy page did, if anything.
pub(crate) enum PrivacyNote {
    None,
    Done(String),
    Refused(String),
    Audit(AuditVerification),
    Retention(consentric_engine::RetentionReport),
}

/// The privacy page's tables.
pub(crate) struct PrivacyData {
    pub(crate) requests: Vec<DsrView>,
    pub(crate) keys: Vec<KeyInfo>,
    pub(crate) purposes: Vec<consentric_engine::PurposeView>,
    /// A page of the audit log, newest first, each record with its position.
    pub(crate) audit: Vec<(i64, AuditEntry)>,
    /// The link to the next (older) page of the audit log, if there is one.
    pub(crate) older_audit: Option<i64>,
    /// Which page of requests (50 a page) is shown, and how many requests there are.
    pub(crate) requests_page: usize,
    pub(crate) requests_total: usize,
}

/// Members a page of a segment lists.
pub(crate) const MEMBERS_PER_PAGE: usize = 50;

/// Requests a page of the privacy page lists.
pub(crate) const REQUESTS_PER_PAGE: usize = 50;

pub(crate) fn privacy(session: &OperatorSession, data: &PrivacyData, note: &PrivacyNote) -> Markup {
    let (requests, keys) = (&data.requests, &data.keys);
    let action = |path: &str, label: &str, extra: Markup| {
        html! {
            form.inline method="post" action=(path) {
                (csrf(session))
                (extra)
                button type="submit" { (label) }
            }
        }
    };
    layout(
        session,
        Area::Privacy,
        "Privacy operations",
        html! {
            @match note {
                PrivacyNote::None | PrivacyNote::Retention(_) => {}
                PrivacyNote::Done(m) => p.alert role="status" { (m) },
                PrivacyNote::Refused(m) => p.alert role="alert" { (m) },
                PrivacyNote::Audit(v) => {
                    p.alert role="status" {
                        @match &v.first_break {
                            None => { "The audit chain verifies: " (v.records) " records" @if let Some(h) = &v.head { ", head " code { (h.seq) ":" (&h.hash[..16.min(h.hash.len())]) } } "." }
                            Some(b) => { strong { "The audit chain breaks at record " (b.seq) ": " (format!("{:?}", b.kind)) "." } }
                        }
                    }
                }
            }
            @if let PrivacyNote::Retention(r) = note {
                p.alert role="status" { "Retention ran: " (r.events_deleted) " events deleted, " (r.events_rewritten) " rewritten, " (r.fields_deleted) " fields and " (r.traits_deleted) " traits deleted, " (r.decisions_deleted) " logged decisions deleted." }
            }
            (action("/console/privacy/verify-audit", "Verify the audit chain", html! {}))
            (action("/console/privacy/retention", "Run retention now", html! {}))
            h2 { "Data-subject requests" }
            @let pages = data.requests_total.div_ceil(REQUESTS_PER_PAGE);
            @if pages > 1 {
                p {
                    "Page " (data.requests_page + 1) " of " (pages) ", earliest deadline first. "
                    @if data.requests_page > 0 { a href=(format!("/console/privacy?requests_page={}", data.requests_page - 1)) { "Earlier" } " " }
                    @if data.requests_page + 1 < pages { a href=(format!("/console/privacy?requests_page={}", data.requests_page + 1)) { "Later" } }
                }
            }
            @if requests.is_empty() { p.muted { "None." } }
            @else {
                div.scroll tabindex="0" role="region" aria-label="Requests" {
                    table {
                        thead { tr { th scope="col" { "request" } th scope="col" { "kind" } th scope="col" { "law" } th scope="col" { "status" } th scope="col" { "received" } th scope="col" { "due" } th scope="col" { "do" } } }
                        tbody {
                            @for r in requests {
                                tr {
                                    td { code { (r.request_id) } }
                                    td { (r.kind) }
                                    td { (r.regime) }
                                    td { (r.status) @if r.overdue { strong { " overdue" } } }
                                    td { (day(&r.received_at)) }
                                    td { (day(&r.due_at)) @if r.extended_days > 0 { " (+" (r.extended_days) " days)" } }
                                    td {
                                        @let path = format!("/console/privacy/requests/{}", r.request_id);
                                        @if r.status == "received" {
                                            (action(&format!("{path}/verify"), "Verify", html! {
                                                label.visually-hidden for=(format!("code-{}", r.request_id)) { "The customer's code" }
                                                input id=(format!("code-{}", r.request_id)) name="code" type="text" inputmode="numeric" size="6" placeholder="code" required;
                                            }))
                                        }
                                        @if r.status == "verified" && r.kind != "access" {
                                            (action(&format!("{path}/process"), "Carry out", html! {}))
                                        }
                                        @if matches!(r.status.as_str(), "received" | "verified" | "in_progress") {
                                            (action(&format!("{path}/extend"), "Extend", html! {
                                                label.visually-hidden for=(format!("days-{}", r.request_id)) { "Days" }
                                                input id=(format!("days-{}", r.request_id)) name="days" type="text" inputmode="numeric" size="3" value="30";
                                                label.visually-hidden for=(format!("reason-{}", r.request_id)) { "Reason" }
                                                input id=(format!("reason-{}", r.request_id)) name="reason" type="text" placeholder="reason" required;
                                            }))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "The data map" }
            p.muted { "Every purpose: why it is lawful, the data it may use, how long that is kept, and who receives it." }
            div.scroll tabindex="0" role="region" aria-label="The data map" {
                table {
                    thead { tr { th scope="col" { "purpose" } th scope="col" { "legal basis" } th scope="col" { "data categories" } th.num scope="col" { "kept (days)" } th scope="col" { "recipients" } th.num scope="col" { "version" } } }
                    tbody {
                        @for p in &data.purposes {
                            tr {
                                th scope="row" { (p.id) @if p.sale_or_share { " (sale or share)" } }
                                td { (p.legal_basis) }
                                td { (p.categories.join(", ")) }
                                td.num { (p.retention_days) }
                                td { @if p.recipients.is_empty() { "—" } @else { (p.recipients.join("; ")) } }
                                td.num { (p.version) }
                            }
                        }
                    }
                }
            }
            h2 { "The audit log, newest first" }
            div.scroll tabindex="0" role="region" aria-label="The audit log" {
                table {
                    thead { tr { th.num scope="col" { "#" } th scope="col" { "when" } th scope="col" { "who" } th scope="col" { "what" } th scope="col" { "about" } } }
                    tbody { @for (seq, a) in &data.audit { tr { td.num { (seq) } td { (when(&a.at)) } td { (a.actor) } td { (a.action) } td { (a.subject.as_deref().unwrap_or("")) } } } }
                }
            }
            @if let Some(before) = data.older_audit {
                p { a href=(format!("/console/privacy?audit_before={before}")) { "Older records" } }
            }
            h2 { "API keys" }
            div.scroll tabindex="0" role="region" aria-label="API keys" {
                table {
                    thead { tr { th scope="col" { "key" } th scope="col" { "scope" } th scope="col" { "kind" } th scope="col" { "label" } th scope="col" { "last used" } th scope="col" { "revoked" } th scope="col" { "do" } } }
                    tbody {
                        @for k in keys {
                            tr {
                                td { code { (k.key_id) } }
                                td { (k.scope) }
                                td { (k.kind) }
                                td { (k.label.as_deref().unwrap_or("")) }
                                td { (k.last_used_at.as_deref().map(when).unwrap_or_default()) }
                                td { (k.revoked_at.as_deref().map(when).unwrap_or_default()) }
                                td { @if k.revoked_at.is_none() { (action(&format!("/console/privacy/keys/{}/revoke", k.key_id), "Revoke", html! {})) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The query builder's fields as the operator filled them.
#[derive(Default)]
pub(crate) struct QueryForm {
    pub(crate) query: String,
    pub(crate) epsilon: String,
    pub(crate) measure: String,
    pub(crate) low: String,
    pub(crate) high: String,
    pub(crate) by: String,
    pub(crate) categories: String,
    pub(crate) k: String,
}

const QUERIES: [&str; 8] = [
    "count",
    "sum",
    "mean",
    "quantile",
    "histogram",
    "top_k",
    "funnel",
    "retention",
];

fn budget_table(budgets: &[BudgetView]) -> Markup {
    html! {
        @if budgets.is_empty() {
            p.alert role="status" { "You have no privacy budget yet: an admin grants one with " code { "consentric analytics grant --analyst operator:NAME --rho 1" } "." }
        } @else {
            table {
                thead { tr { th scope="col" { "data set" } th.num scope="col" { "granted ρ" } th.num scope="col" { "spent ρ" } th.num scope="col" { "left ρ" } } }
                tbody { @for b in budgets { tr { th scope="row" { (b.dataset) } td.num { (format!("{:.4}", b.granted_rho)) } td.num { (format!("{:.4}", b.spent_rho)) } td.num { (format!("{:.4}", b.remaining_rho)) } } } }
            }
        }
    }
}

fn release_block(r: &Release) -> Markup {
    let bins: Option<Value> = r.bins.as_ref().map(|b| {
        json!({"kind": "bars", "xLabel": "bin", "y": "customers (noisy)",
               "x": b.keys().collect::<Vec<_>>(),
               "series": [{"label": "customers", "values": b.values().collect::<Vec<_>>()}]})
    });
    let funnel: Option<Value> = r.funnel.as_ref().map(|f| {
        json!({"kind": "bars", "xLabel": "stage", "y": "customers (noisy)",
               "x": f.iter().map(|s| s.stage.clone()).collect::<Vec<_>>(),
               "series": [{"label": "customers", "values": f.iter().map(|s| s.customers).collect::<Vec<_>>()}]})
    });
    html! {
        section aria-labelledby="answer" {
            h2 id="answer" { "Answer" }
            @if let Some(v) = r.value {
                p.answer { strong { (format!("{v:.2}")) }
                    @if let Some(i) = r.interval95 { " ± " (format!("{i:.2}")) " (95% of the noise is within this)" } }
            }
            @if let Some(spec) = &bins { (chart("release-bins", "Noisy counts per bin", spec)) }
            @if let Some(spec) = &funnel { (chart("release-funnel", "Noisy funnel", spec)) }
            @if let Some(selected) = &r.selected { p { "Selected: " (selected.join(", ")) } }
            @if let Some(retention) = &r.retention {
                table {
                    thead { tr { th scope="col" { "cohort" } th scope="col" { "active per month after (noisy)" } } }
                    tbody { @for (cohort, row) in retention { tr { th scope="row" { (cohort) } td { (row.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" · ")) } } } }
                }
            }
            p.muted { "Mechanism: " (r.mechanism) "; spent ρ = " (format!("{:.6}", r.spent_rho))
                @if let Some(e) = r.epsilon { " (ε = " (e) ")" } "; unit of privacy: " (r.unit_of_privacy) "." }
        }
    }
}

/// The DP query builder: the operator's own budget, the form, and the last answer.
pub(crate) fn analytics(
    session: &OperatorSession,
    budgets: &[BudgetView],
    form: &QueryForm,
    answer: Option<&Release>,
    message: Option<&str>,
) -> Markup {
    let text = |id: &str, label: &str, value: &str, hint: &str| {
        html! {
            label for=(id) { (label) }
            input id=(id) name=(id) type="text" value=(value) placeholder=(hint);
        }
    };
    layout(
        session,
        Area::Analytics,
        "Analytics",
        html! {
            p.muted { "Every answer is differentially private and spends from your own budget; the exact figures are never shown." }
            h2 { "Your budget" }
            (budget_table(budgets))
            @if let Some(m) = message { p.alert role="alert" { (m) } }
            @if let Some(r) = answer { (release_block(r)) }
            h2 { "Ask" }
            form method="post" action="/console/analytics" {
                (csrf(session))
                label for="query" { "Query" }
                select id="query" name="query" {
                    @for q in QUERIES { option value=(q) selected[form.query == q] { (q) } }
                }
                (text("epsilon", "ε (privacy spent; smaller is noisier)", &form.epsilon, "0.5"))
                (text("measure", "Measure (sum, mean, quantile)", &form.measure, "revenue, orders or events"))
                (text("low", "Lower bound (sum, mean, quantile)", &form.low, "0"))
                (text("high", "Upper bound (sum, mean, quantile)", &form.high, "500"))
                (text("by", "Group by (histogram, top-k)", &form.by, "stage, cohort, segment, event or trait.NAME"))
                (text("categories", "Categories, comma-separated (declared in advance)", &form.categories, "2024-01, 2024-02"))
                (text("k", "k (top-k)", &form.k, "3"))
                button type="submit" { "Ask" }
            }
        },
    )
}

/// The segments, each with its size, and the form that defines one.
pub(crate) fn segments(
    session: &OperatorSession,
    list: &[(SegmentView, u64)],
    form: (&str, &str),
    message: Option<&str>,
    proposal: Option<&consentric_engine::SegmentProposal>,
) -> Markup {
    layout(
        session,
        Area::Segments,
        "Segments",
        html! {
            @if let Some(m) = message { p.alert role="alert" { (m) } }
            @if list.is_empty() { p.muted { "No segment is defined yet." } }
            @else {
                div.scroll tabindex="0" role="region" aria-label="Segments" {
                    table {
                        thead { tr { th scope="col" { "segment" } th.num scope="col" { "members" } th scope="col" { "condition" } th scope="col" { "changed" } } }
                        tbody {
                            @for (s, size) in list {
                                tr {
                                    th scope="row" { a href=(format!("/console/segments/{}", s.name)) { (s.name) } }
                                    td.num { (size) }
                                    td { code { (s.definition.to_string()) } }
                                    td { (when(&s.updated_at)) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Define a segment" }
            form method="post" action="/console/segments" {
                (csrf(session))
                label for="name" { "Name" }
                input id="name" name="name" type="text" value=(form.0) required;
                label for="condition" { "Condition (JSON: " code { "{\"all\": [{\"field\": \"orders\", \"op\": \"gte\", \"value\": 5}]}" } ")" }
                textarea id="condition" name="condition" rows="5" cols="60" required data-size-url="/console/segments/size" aria-describedby="condition-size" { (form.1) }
                p id="condition-size" aria-live="polite" {}
                button type="submit" { "Define" }
            }
            p.muted { "The condition language is in docs/personalization.md#segments." }
            h2 { "Proposals" }
            @if let Some(p) = proposal {
                p { "k-means chose " (p.k) " clusters (mean silhouette " (format!("{:.2}", p.silhouette)) ") among " (p.customers) " customers; " (p.left_out) " left out for want of a basis." }
                div.scroll tabindex="0" role="region" aria-label="Proposed clusters" {
                    table {
                        thead { tr { th scope="col" { "cluster" } @for f in &p.features { th.num scope="col" { (f) } } th.num scope="col" { "customers" } } }
                        tbody {
                            @for (i, c) in p.clusters.iter().enumerate() {
                                tr {
                                    th scope="row" { (i + 1) }
                                    @for (j, _) in p.features.iter().enumerate() {
                                        td.num { (c["centre"][j].as_f64().map(|v| format!("{v:.2}")).unwrap_or_default()) }
                                    }
                                    td.num { (c["size"]) }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/console/segments/proposals" {
                (csrf(session))
                p.muted { "Clusters customers by behaviour with k-means, k chosen by silhouette (it reads every customer with a basis: seconds at scale)." }
                button type="submit" { "Propose segments" }
            }
        },
    )
}

/// One segment: its condition and a preview of its members, evaluated now.
pub(crate) fn segment(
    session: &OperatorSession,
    view: &SegmentView,
    preview: &SegmentPreview,
    page: usize,
) -> Markup {
    let per = MEMBERS_PER_PAGE;
    let shown: Vec<&String> = preview.members.iter().skip(page * per).collect();
    let pages = preview.size.div_ceil(per).max(1);
    layout(
        session,
        Area::Segments,
        &format!("Segment {}", view.name),
        html! {
            p { code { (view.definition.to_string()) } }
            p { strong { (preview.size) } " customers match, of " (preview.evaluated) " with a basis for " code { (preview.purpose) } "; " (preview.left_out) " left out for want of one." }
            h2 { "Members, page " (page + 1) " of " (pages) }
            ul { @for m in &shown { li { a href=(format!("/console/customers/{m}")) { code { (m) } } } } }
            p {
                @if page > 0 { a href=(format!("/console/segments/{}?page={}", view.name, page - 1)) { "Previous" } " " }
                @if page + 1 < pages { a href=(format!("/console/segments/{}?page={}", view.name, page + 1)) { "Next" } }
            }
        },
    )
}

/// The next-best-action catalogue and how often each action was chosen.
pub(crate) fn actions(session: &OperatorSession, catalogue: &[ActionView]) -> Markup {
    let chosen = json!({
        "kind": "bars", "xLabel": "action", "y": "times chosen",
        "x": catalogue.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        "series": [{"label": "chosen", "values": catalogue.iter().map(|a| a.chosen).collect::<Vec<_>>()}],
    });
    layout(
        session,
        Area::Actions,
        "Next best actions",
        html! {
            (chart("actions-chosen", "Times each action was chosen by recorded decisions", &chosen))
            div.scroll tabindex="0" role="region" aria-label="The catalogue" {
                table {
                    thead { tr { th scope="col" { "action" } th scope="col" { "what" } th scope="col" { "stages" } th scope="col" { "channel" } th scope="col" { "needs" } th scope="col" { "cap" } th.num scope="col" { "cooldown (days)" } th.num scope="col" { "chosen" } } }
                    tbody {
                        @for a in catalogue {
                            tr {
                                th scope="row" { (a.name) }
                                td { (a.description) }
                                td { @if a.stages.is_empty() { "any" } @else { (a.stages.join(", ")) } }
                                td { (a.channel) }
                                td { (a.purpose.as_deref().unwrap_or("—")) }
                                td { @match a.cap { Some((n, d)) => { (n) " in " (d) " days" }, None => "—" } }
                                td.num { (a.cooldown_days) }
                                td.num { (a.chosen) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What the last clean-room action did, if anything.
pub(crate) enum CleanroomNote {
    None,
    Invited(consentric_engine::cleanroom::Invitation),
    Done(String),
    Refused(String),
}

/// Clean-room sessions and exactly what each revealed; invite, join, run.
pub(crate) fn cleanroom(
    session: &OperatorSession,
    sessions: &[SessionView],
    note: &CleanroomNote,
) -> Markup {
    layout(
        session,
        Area::Cleanroom,
        "Clean room",
        html! {
            @match note {
                CleanroomNote::None => {}
                CleanroomNote::Invited(i) => {
                    div.alert role="status" {
                        p { "Invitation made. Give the partner these, once, over a channel you trust; the token is not shown again." }
                        p { "Session: " code { (i.session) } }
                        p { "Token: " code.secret { (i.token) } }
                    }
                }
                CleanroomNote::Done(m) => p.alert role="status" { (m) },
                CleanroomNote::Refused(m) => p.alert role="alert" { (m) },
            }
            @if sessions.is_empty() { p { "No session yet." } }
            @else {
                div.scroll tabindex="0" role="region" aria-label="Sessions" {
                    table {
                        thead { tr { th scope="col" { "session" } th scope="col" { "role" } th scope="col" { "partner" } th scope="col" { "output" } th scope="col" { "state" } th scope="col" { "what it revealed" } th scope="col" { "do" } } }
                        tbody {
                            @for s in sessions {
                                tr {
                                    td { code { (s.session) } }
                                    td { (s.role) }
                                    td { (s.partner) }
                                    td { (s.output) @if s.sum { " + sum" } }
                                    td { (s.state) }
                                    td { @match &s.result { Some(r) => code { (r.to_string()) }, None => "nothing yet" } }
                                    td {
                                        @if s.role == "guest" && matches!(s.state.as_str(), "joined" | "waiting" | "invited") {
                                            form.inline method="post" action=(format!("/console/cleanroom/{}/run", s.session)) {
                                                (csrf(session))
                                                button type="submit" { "Run" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Invite a partner" }
            form method="post" action="/console/cleanroom/invite" {
                (csrf(session))
                label for="partner" { "Partner" }
                input id="partner" name="partner" type="text" required;
                label for="output" { "What the session reveals to us" }
                select id="output" name="output" {
                    option value="cardinality" { "How many customers we share (nothing else)" }
                    option value="matches" { "Also which of our customers they are" }
                }
                div { input id="sum" name="sum" type="checkbox" value="yes"; label for="sum" { "Also the sum of their spend over the customers we share" } }
                button type="submit" { "Invite" }
            }
            h2 { "Join a partner's session" }
            form method="post" action="/console/cleanroom/join" {
                (csrf(session))
                label for="host_url" { "Their address" }
                input id="host_url" name="host_url" type="text" placeholder="https://partner.example" required;
                label for="join-session" { "Session" }
                input id="join-session" name="session" type="text" required;
                label for="join-token" { "Token" }
                input id="join-token" name="token" type="password" required;
                label for="join-partner" { "Partner" }
                input id="join-partner" name="partner" type="text" required;
                button type="submit" { "Join" }
            }
        },
    )
}

/// The operator's own account: a new password, two-factor log-in.
pub(crate) fn account(
    session: &OperatorSession,
    area: Area,
    message: Option<&str>,
    totp: Option<(&str, &str)>,
) -> Markup {
    layout(
        session,
        area,
        "Your account",
        html! {
            @if let Some(m) = message { p.alert role="status" { (m) } }
            @if let Some((secret, uri)) = totp {
                h2 { "Two-factor log-in is on" }
                p { "Add this secret to your authenticator app now; it is not shown again. From your next log-in the console asks for its code." }
                p { code.secret { (secret) } }
                p.muted { code { (uri) } }
            }
            h2 { "Change your password" }
            form method="post" action="/console/account/password" {
                (csrf(session))
                label for="current" { "Current password" }
                input id="current" name="current" type="password" autocomplete="current-password" required;
                label for="new" { "New password (at least 12 characters)" }
                input id="new" name="new" type="password" autocomplete="new-password" required;
                button type="submit" { "Change password" }
            }
            h2 { "Two-factor log-in" }
            form method="post" action="/console/account/totp" {
                (csrf(session))
                p { "Turn on (or renew) a TOTP code from an authenticator app for every log-in." }
                button type="submit" { "Turn on two-factor log-in" }
            }
        },
    )
}
