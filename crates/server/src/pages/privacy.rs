//! The privacy centre's pages, in plain words: sign in with a code, then what is held, your
//! choices, why you saw what you saw, and your requests. Forms post back with the session's
//! CSRF token; nothing here runs script.

use consentric_engine::{
    ConsentHistoryEntry, ConsentView, CustomerSession, DsrView, ErasureReceipt, HeldData,
    LoggedDecision, PurposeView, CODE_MINUTES,
};
use maud::{html, Markup, DOCTYPE};

use super::{day, when};

/// Which page is open, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    Data,
    Consent,
    Decisions,
    Requests,
}

const TABS: [(Tab, &str, &str); 4] = [
    (Tab::Data, "/privacy/data", "What we hold"),
    (Tab::Consent, "/privacy/consent", "Your choices"),
    (Tab::Decisions, "/privacy/decisions", "Why you saw it"),
    (
        Tab::Requests,
        "/privacy/requests",
        "Download, erase, object",
    ),
];

fn layout(title: &str, signed_in: Option<(&CustomerSession, Tab)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Privacy centre" }
                link rel="stylesheet" href="/privacy/style.css";
            }
            body {
                header {
                    p.brand { "Privacy centre" }
                    @if let Some((session, open)) = signed_in {
                        nav aria-label="Privacy centre" {
                            ul {
                                @for (tab, href, label) in TABS {
                                    li {
                                        @if tab == open {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form method="post" action="/privacy/sign-out" {
                            (csrf(session))
                            button.link type="submit" { "Sign out" }
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

fn csrf(session: &CustomerSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token()); }
}

/// A table that may be wider than a phone: it scrolls, and the keyboard can reach it.
fn scrolling(label: &str, table: Markup) -> Markup {
    html! { div.scroll tabindex="0" role="region" aria-label=(label) { (table) } }
}

fn alert(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p.alert role="alert" { (m) }
        }
    }
}

/// The first page: the address to send a code to.
pub(crate) fn sign_in(message: Option<&str>) -> Markup {
    layout(
        "See and control your data",
        None,
        html! {
            p { "Sign in with the e-mail address you use with us. We will send a code to that address; nobody needs a password." }
            (alert(message))
            form method="post" action="/privacy/code" {
                label for="email" { "Your e-mail address" }
                input id="email" name="email" type="email" autocomplete="email" required;
                button type="submit" { "Send me a code" }
            }
        },
    )
}

/// After a code was asked for: the same words whether or not the address is known.
pub(crate) fn enter_code(challenge_id: &str, message: Option<&str>) -> Markup {
    layout(
        "Enter your code",
        None,
        html! {
            p { "If this address belongs to a customer, we have sent it a six-digit code. It works for " (CODE_MINUTES) " minutes." }
            (alert(message))
            form method="post" action="/privacy/sign-in" {
                input type="hidden" name="challenge" value=(challenge_id);
                label for="code" { "Code" }
                input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
                button type="submit" { "Sign in" }
            }
            p { a href="/privacy" { "Use another address, or ask for a new code" } }
        },
    )
}

fn source_words(source: &str) -> &str {
    match source {
        "banner" => "our consent banner",
        "privacy_centre" => "here, in the privacy centre",
        "api" => "our staff or systems",
        "segment" => "a consent tool on our site",
        "tcf" => "a consent tool on our site (IAB TCF)",
        "gpc" => "your browser (Global Privacy Control)",
        other => other,
    }
}

fn decision_words(decision: &str) -> &str {
    match decision {
        "granted" => "Yes",
        "denied" => "No",
        "withdrawn" => "Withdrawn",
        other => other,
    }
}

fn basis_words(basis: &str) -> &'static str {
    match basis {
        "consent" => "Only with your consent",
        "contract" => "Needed to provide what you asked for",
        "legitimate_interest" => "Our legitimate interest (you may object)",
        "legal_obligation" => "Required by law",
        _ => "Other",
    }
}

/// What is held, by category, and who receives it for which purpose.
pub(crate) fn data(session: &CustomerSession, held: &HeldData) -> Markup {
    let p = &held.profile;
    layout(
        "What we hold about you",
        Some((session, Tab::Data)),
        html! {
            section aria-labelledby="summary" {
                h2 id="summary" { "In short" }
                dl {
                    dt { "Customer since" } dd { (day(&p.created_at)) }
                    dt { "Activity recorded" } dd { (p.counters.events) " events, from " (day(&p.counters.first_seen)) " to " (day(&p.counters.last_seen)) }
                    dt { "Orders" } dd { (p.counters.orders) }
                    dt { "How we recognise you" }
                    dd {
                        ul {
                            @for i in &p.identities {
                                li { (if i.kind == "user_id" { "Account id" } else { "Device or browser id" }) ": " code { (i.value) } }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="details" {
                h2 id="details" { "Your details, by kind" }
                @if held.categories.is_empty() {
                    p { "We hold no details such as your name or address." }
                }
                @for c in &held.categories {
                    h3 { (c.category) }
                    (scrolling("Your details", html! { table {
                        caption.visually-hidden { "Details of kind " (c.category) }
                        thead { tr { th scope="col" { "Detail" } th scope="col" { "What we hold" } } }
                        tbody {
                            @for (name, value) in &c.traits {
                                tr { th scope="row" { (name) } td { (value) } }
                            }
                        }
                    } }))
                    p.small {
                        "Used for: "
                        @if c.purposes.is_empty() { "no declared purpose" }
                        @for (n, purpose) in c.purposes.iter().enumerate() {
                            @if n > 0 { ", " } (purpose)
                        }
                    }
                }
            }
            section aria-labelledby="purposes" {
                h2 id="purposes" { "What we use it for, and who receives it" }
                (scrolling("Purposes and recipients", html! { table {
                    thead { tr { th scope="col" { "Purpose" } th scope="col" { "Why we may" } th scope="col" { "Now" } th scope="col" { "Who receives it" } th scope="col" { "Kept for" } } }
                    tbody {
                        @for u in &held.purposes {
                            tr {
                                th scope="row" { (u.text) }
                                td { (basis_words(&u.legal_basis)) }
                                td { @if u.allowed { "in use" } @else { "not used" } }
                                td { @if u.recipients.is_empty() { "only us" } @else { (u.recipients.join(", ")) } }
                                td { (u.retention_days) " days" }
                            }
                        }
                    }
                } }))
            }
        },
    )
}

/// Each purpose's state, a form to change those on consent, and the history.
pub(crate) fn consent(
    session: &CustomerSession,
    purposes: &[PurposeView],
    now: &ConsentView,
    history: &[ConsentHistoryEntry],
    message: Option<&str>,
) -> Markup {
    layout(
        "Your choices",
        Some((session, Tab::Consent)),
        html! {
            (alert(message))
            @if now.restricted {
                p.alert role="status" { "You asked us to restrict processing: we keep your data but use it only where the law requires." }
            }
            form method="post" action="/privacy/consent" {
                (csrf(session))
                @for p in purposes {
                    @let state = now.purposes.iter().find(|c| c.purpose == p.id);
                    @let granted = state.is_some_and(|s| s.decision.as_deref() == Some("granted"));
                    fieldset {
                        legend { (p.text) }
                        p.small { (basis_words(&p.legal_basis)) @if p.sale_or_share { " · this shares or sells data" } }
                        @if p.legal_basis == "consent" {
                            @let yes = format!("p-{}-yes", p.id);
                            @let no = format!("p-{}-no", p.id);
                            @let name = format!("p.{}", p.id);
                            div.choice {
                                input type="radio" id=(yes) name=(name) value="granted" checked[granted];
                                label for=(yes) { "Yes, I agree" }
                            }
                            div.choice {
                                input type="radio" id=(no) name=(name) value="denied" checked[!granted];
                                label for=(no) { "No" }
                            }
                        } @else {
                            p { @if state.is_some_and(|s| s.has_basis) { "In use: this does not need your consent." } @else { "Not in use." } }
                        }
                    }
                }
                button type="submit" { "Save my choices" }
            }
            h2 { "History" }
            @if history.is_empty() {
                p { "No choices recorded yet." }
            } @else {
                (scrolling("Choice history", html! { table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Purpose" } th scope="col" { "Choice" } th scope="col" { "Where" } th scope="col" { "Version" } } }
                    tbody {
                        @for h in history.iter().rev() {
                            tr {
                                td { (when(&h.decided_at)) }
                                td { (purposes.iter().find(|p| p.id == h.purpose).map_or(h.purpose.as_str(), |p| p.text.as_str())) }
                                td { (decision_words(&h.decision)) }
                                td { (source_words(&h.source)) }
                                td { (h.purpose_version) }
                            }
                        }
                    }
                } }))
            }
        },
    )
}

fn strings(v: &serde_json::Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The latest decisions and their reasons, in the words the decision gave.
pub(crate) fn decisions(session: &CustomerSession, logged: &[LoggedDecision]) -> Markup {
    layout(
        "Why you saw what you saw",
        Some((session, Tab::Decisions)),
        html! {
            @if logged.is_empty() {
                p { "We have not chosen anything for you yet." }
            }
            @for d in logged {
                @let personal = d.decision.get("personal").and_then(serde_json::Value::as_bool).unwrap_or(false);
                article.decision {
                    h2 { (d.placement) " · " time datetime=(d.decided_at) { (when(&d.decided_at)) } }
                    p { @if personal { "Chosen for you, using the data listed below." } @else { "The same for everyone: we used nothing about you." } }
                    @let items = strings(&d.decision, "items");
                    @if !items.is_empty() { p { "Shown: " (items.join(", ")) } }
                    @let used = strings(&d.decision, "data_used");
                    @if !used.is_empty() { h3 { "Data used" } ul { @for u in &used { li { (u) } } } }
                    @let reasons = strings(&d.decision, "reasons");
                    @if !reasons.is_empty() { h3 { "Why" } ul { @for r in &reasons { li { (r) } } } }
                }
            }
        },
    )
}

/// Downloads, and the requests carried out at once or made elsewhere.
pub(crate) fn requests(
    session: &CustomerSession,
    restricted: bool,
    others: &[DsrView],
    message: Option<&str>,
) -> Markup {
    layout(
        "Download, erase, object",
        Some((session, Tab::Requests)),
        html! {
            (alert(message))
            section aria-labelledby="download" {
                h2 id="download" { "Download your data" }
                p { "Everything we hold about you, in one file." }
                ul.actions {
                    li { a.button href="/privacy/download?format=json" download { "Download (JSON)" } }
                    li { a.button href="/privacy/download?format=zip" download { "Download (spreadsheets, ZIP)" } }
                }
            }
            section aria-labelledby="object" {
                h2 id="object" { "Object" }
                p { "Stop every use that relies on our legitimate interest, and any sale or sharing of your data." }
                form method="post" action="/privacy/requests" {
                    (csrf(session))
                    input type="hidden" name="kind" value="objection";
                    button type="submit" { "I object" }
                }
            }
            section aria-labelledby="restrict" {
                h2 id="restrict" { "Restrict" }
                @if restricted {
                    p { "Processing is restricted: we keep your data but use it only where the law requires." }
                    form method="post" action="/privacy/requests" {
                        (csrf(session))
                        input type="hidden" name="kind" value="lift_restriction";
                        button type="submit" { "Lift the restriction" }
                    }
                } @else {
                    p { "Keep your data but stop using it, except where the law requires (while you contest it, for example)." }
                    form method="post" action="/privacy/requests" {
                        (csrf(session))
                        input type="hidden" name="kind" value="restriction";
                        button type="submit" { "Restrict processing" }
                    }
                }
            }
            section aria-labelledby="erase" {
                h2 id="erase" { "Erase everything" }
                p { "We delete all we hold about you at once and give you a signed receipt. This cannot be undone." }
                form method="post" action="/privacy/requests" {
                    (csrf(session))
                    input type="hidden" name="kind" value="erasure";
                    div.choice {
                        input type="checkbox" id="confirm" name="confirm" value="yes" required;
                        label for="confirm" { "I understand that everything will be deleted" }
                    }
                    button.danger type="submit" { "Erase my data" }
                }
            }
            section aria-labelledby="elsewhere" {
                h2 id="elsewhere" { "Requests made elsewhere" }
                @if others.is_empty() {
                    p { "None." }
                } @else {
                    (scrolling("Requests made elsewhere", html! { table {
                        thead { tr { th scope="col" { "Request" } th scope="col" { "Status" } th scope="col" { "Received" } th scope="col" { "Answer due" } } }
                        tbody {
                            @for r in others {
                                tr {
                                    td { (r.kind) }
                                    td { (r.status) @if r.overdue { " (late)" } }
                                    td { (day(&r.received_at)) }
                                    td { (day(&r.due_at)) }
                                }
                            }
                        }
                    } }))
                }
            }
        },
    )
}

/// After an erasure: the receipt, and nothing else (the session went with the data).
pub(crate) fn erased(receipt: &ErasureReceipt) -> Markup {
    layout(
        "Your data is erased",
        None,
        html! {
            p { "We deleted everything we held about you. Keep this receipt: it is signed, so anyone can check that we did." }
            h2 { "Receipt" }
            pre.receipt { (receipt.body) }
            dl {
                dt { "Signature" } dd { code.wrap { (receipt.signature) } }
                dt { "Our public key" } dd { code.wrap { (receipt.public_key) } }
            }
        },
    )
}

/// A refusal the visitor can act on: why, and where to go.
pub(crate) fn refused(title: &str, message: &str) -> Markup {
    layout(
        title,
        None,
        html! {
            p.alert role="alert" { (message) }
            p { a href="/privacy" { "Back to the privacy centre" } }
        },
    )
}
