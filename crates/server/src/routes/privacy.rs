//! The privacy centre (`/privacy`): a customer signs in with a one-time code sent to the e-mail
//! address their profile holds, then sees, changes, downloads and erases their own data. The
//! session lives in an HttpOnly, SameSite=Strict cookie (Secure behind an `https` public URL);
//! every form carries the session's CSRF token. No route names a customer: the session does,
//! so one customer can never reach another's data.

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use consentric_engine::{
    CustomerOutcome, CustomerRequest, CustomerSession, EngineError, SESSION_MINUTES,
};
use serde::Deserialize;

use crate::pages::forms::{cookie_value, field, run, session_cookie, Pairs};
use crate::pages::{page, privacy as pages};
use crate::routes::sdk::PublicUrl;
use crate::AppState;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "consentric_privacy";
/// The most a privacy-centre form may hold: every purpose's choice fits many times over.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// Decisions shown on the decisions page.
const DECISIONS_SHOWN: u32 = 50;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/privacy", get(start))
        .route("/privacy/style.css", get(style))
        .route("/privacy/code", post(send_code))
        .route("/privacy/sign-in", post(sign_in))
        .route("/privacy/sign-out", post(sign_out))
        .route("/privacy/data", get(data))
        .route("/privacy/consent", get(consent).post(set_consent))
        .route("/privacy/decisions", get(decisions))
        .route("/privacy/download", get(download))
        .route("/privacy/requests", get(requests).post(request))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

fn refused(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, pages::refused(title, message))
}

/// A fault that is ours: logged, and the visitor told only that it failed.
fn fault(e: EngineError) -> Response {
    tracing::error!(error = %e, "privacy centre");
    refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "We could not do that just now; nothing was changed. Please try again.",
    )
}

fn form_refused(e: &FormRejection) -> Response {
    refused(
        e.status(),
        "That form could not be read",
        "The form was malformed or too large; nothing was changed.",
    )
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE_NAME)
}

/// The session the request's cookie names, or the page that says to sign in again.
async fn session_of(engine: &AppState, headers: &HeaderMap) -> Result<CustomerSession, Response> {
    let signed_out = || {
        refused(
            StatusCode::UNAUTHORIZED,
            "Please sign in",
            "Your session has ended or is not valid. Sign in again with a new code.",
        )
    };
    let token = token_of(headers).ok_or_else(signed_out)?;
    let e = engine.clone();
    match run(move || e.privacy_session(&token)).await {
        Ok(s) => Ok(s),
        Err(EngineError::SignedOut(_)) => Err(signed_out()),
        Err(e) => Err(fault(e)),
    }
}

/// A signed-in page's form: its session, then its fields, which must pass [`check_form`].
async fn signed_form(
    engine: &AppState,
    headers: &HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Result<(CustomerSession, Pairs), Response> {
    let session = session_of(engine, headers).await?;
    let Form(pairs) = form.map_err(|e| form_refused(&e))?;
    match check_form(&session, headers, &pairs) {
        Some(refused) => Err(refused),
        None => Ok((session, pairs)),
    }
}

/// A form of a signed-in page must come from this site (`Sec-Fetch-Site`, where the browser
/// sends it) and carry the session's CSRF token.
fn check_form(session: &CustomerSession, headers: &HeaderMap, pairs: &Pairs) -> Option<Response> {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none");
    let token_ok = field(pairs, "csrf").is_some_and(|t| session.csrf_matches(t));
    (cross_site || !token_ok).then(|| {
        refused(
            StatusCode::FORBIDDEN,
            "That form was refused",
            "It did not come from this privacy centre's own page (its security token was missing or wrong). Nothing was changed.",
        )
    })
}

fn cookie(public: &PublicUrl, token: &str, max_age: i64) -> HeaderValue {
    session_cookie(public, COOKIE_NAME, "/privacy", token, max_age)
}

async fn start(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    if token_of(&headers).is_some() && session_of(&engine, &headers).await.is_ok() {
        return see_other("/privacy/data");
    }
    page(StatusCode::OK, pages::sign_in(None))
}

async fn style() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/privacy/privacy.css"),
    )
        .into_response()
}

async fn send_code(
    State(engine): State<AppState>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let Form(pairs) = match form {
        Ok(f) => f,
        Err(e) => return form_refused(&e),
    };
    let address = field(&pairs, "email").unwrap_or_default().to_owned();
    let e = engine.clone();
    match run(move || e.privacy_send_code(&address)).await {
        Ok(challenge) => page(
            StatusCode::OK,
            pages::enter_code(&challenge.challenge_id, None),
        ),
        Err(EngineError::Invalid { message, .. }) => {
            page(StatusCode::BAD_REQUEST, pages::sign_in(Some(&message)))
        }
        Err(EngineError::TooMany(message)) => page(
            StatusCode::TOO_MANY_REQUESTS,
            pages::sign_in(Some(&message)),
        ),
        Err(e) => fault(e),
    }
}

async fn sign_in(
    State(engine): State<AppState>,
    Extension(public): Extension<PublicUrl>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let Form(pairs) = match form {
        Ok(f) => f,
        Err(e) => return form_refused(&e),
    };
    let challenge = field(&pairs, "challenge").unwrap_or_default().to_owned();
    let code = field(&pairs, "code").unwrap_or_default().to_owned();
    let (e, c) = (engine.clone(), challenge.clone());
    match run(move || e.privacy_sign_in(&c, &code)).await {
        Ok((_, token)) => {
            let mut r = see_other("/privacy/data");
            r.headers_mut()
                .insert(SET_COOKIE, cookie(&public, &token, SESSION_MINUTES * 60));
            r
        }
        Err(EngineError::Invalid { message, .. }) => {
            // Echo the challenge only if it is one of ours in shape; it is a form field.
            let shown = if challenge.len() <= 64
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                challenge
            } else {
                String::new()
            };
            page(
                StatusCode::BAD_REQUEST,
                pages::enter_code(&shown, Some(&message)),
            )
        }
        Err(e) => fault(e),
    }
}

async fn sign_out(
    State(engine): State<AppState>,
    Extension(public): Extension<PublicUrl>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, _) = match signed_form(&engine, &headers, form).await {
        Ok(signed) => signed,
        Err(r) => return r,
    };
    let e = engine.clone();
    if let Err(e) = run(move || e.privacy_sign_out(&session)).await {
        return fault(e);
    }
    let mut r = see_other("/privacy");
    r.headers_mut().insert(SET_COOKIE, cookie(&public, "", 0));
    r
}

async fn data(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_of(&engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, s) = (engine.clone(), session.clone());
    match run(move || e.privacy_held(&s)).await {
        Ok(held) => page(StatusCode::OK, pages::data(&session, &held)),
        Err(e) => gone_or_fault(e),
    }
}

fn gone_or_fault(e: EngineError) -> Response {
    match e {
        EngineError::NotFound(_) => refused(
            StatusCode::NOT_FOUND,
            "Nothing held",
            "We hold nothing about you any more.",
        ),
        e => fault(e),
    }
}

async fn consent_page(
    engine: &AppState,
    session: CustomerSession,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let (e, s) = (engine.clone(), session.clone());
    match run(move || e.privacy_consent(&s)).await {
        Ok((now, history)) => page(
            status,
            pages::consent(&session, &engine.purposes(), &now, &history, message),
        ),
        Err(e) => gone_or_fault(e),
    }
}

async fn consent(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    match session_of(&engine, &headers).await {
        Ok(s) => consent_page(&engine, s, StatusCode::OK, None).await,
        Err(r) => r,
    }
}

async fn set_consent(
    State(engine): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, pairs) = match signed_form(&engine, &headers, form).await {
        Ok(signed) => signed,
        Err(r) => return r,
    };
    let decisions: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("p.").map(|p| (p.to_owned(), v.clone())))
        .collect();
    let (e, s) = (engine.clone(), session.clone());
    match run(move || e.privacy_set_consent(&s, &decisions)).await {
        Ok(_) => see_other("/privacy/consent"),
        Err(EngineError::Invalid { message, .. }) => {
            let message = format!("Nothing was changed: {message}");
            consent_page(&engine, session, StatusCode::BAD_REQUEST, Some(&message)).await
        }
        Err(e) => gone_or_fault(e),
    }
}

async fn decisions(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_of(&engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (e, s) = (engine.clone(), session.clone());
    match run(move || e.privacy_decisions(&s, DECISIONS_SHOWN)).await {
        Ok(list) => page(StatusCode::OK, pages::decisions(&session, &list)),
        Err(e) => gone_or_fault(e),
    }
}

#[derive(Deserialize)]
struct DownloadQuery {
    format: Option<String>,
}

async fn download(
    State(engine): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DownloadQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let session = match session_of(&engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let zip = match query.as_ref().map(|q| q.format.as_deref()) {
        Ok(None | Some("json")) => false,
        Ok(Some("zip")) => true,
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "Unknown format",
                "Choose JSON or ZIP.",
            )
        }
    };
    let e = engine.clone();
    let result = run(move || {
        let mut out = Vec::new();
        e.privacy_export(&session, zip, &mut out)?;
        Ok(out)
    })
    .await;
    match result {
        Ok(bytes) => {
            let (kind, name) = if zip {
                ("application/zip", "attachment; filename=\"my-data.zip\"")
            } else {
                ("application/json", "attachment; filename=\"my-data.json\"")
            };
            (
                [
                    (CONTENT_TYPE, kind),
                    (CONTENT_DISPOSITION, name),
                    (axum::http::header::CACHE_CONTROL, "no-store"),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => gone_or_fault(e),
    }
}

async fn requests_page(
    engine: &AppState,
    session: CustomerSession,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let (e, s) = (engine.clone(), session.clone());
    let result = run(move || Ok((e.privacy_consent(&s)?.0, e.privacy_requests(&s)?))).await;
    match result {
        Ok((now, others)) => page(
            status,
            pages::requests(&session, now.restricted, &others, message),
        ),
        Err(e) => gone_or_fault(e),
    }
}

async fn requests(State(engine): State<AppState>, headers: HeaderMap) -> Response {
    match session_of(&engine, &headers).await {
        Ok(s) => requests_page(&engine, s, StatusCode::OK, None).await,
        Err(r) => r,
    }
}

async fn request(
    State(engine): State<AppState>,
    Extension(public): Extension<PublicUrl>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (session, pairs) = match signed_form(&engine, &headers, form).await {
        Ok(signed) => signed,
        Err(r) => return r,
    };
    let kind = match field(&pairs, "kind") {
        Some("erasure") if field(&pairs, "confirm") == Some("yes") => CustomerRequest::Erasure,
        Some("erasure") => {
            let m = "Tick the box to confirm that everything will be deleted.";
            return requests_page(&engine, session, StatusCode::BAD_REQUEST, Some(m)).await;
        }
        Some("restriction") => CustomerRequest::Restriction,
        Some("lift_restriction") => CustomerRequest::LiftRestriction,
        Some("objection") => CustomerRequest::Objection,
        _ => {
            let m = "That is not a request we know; nothing was changed.";
            return requests_page(&engine, session, StatusCode::BAD_REQUEST, Some(m)).await;
        }
    };
    let (e, s) = (engine.clone(), session.clone());
    match run(move || e.privacy_request(&s, kind)).await {
        Ok(CustomerOutcome::Erased(receipt)) => {
            let mut r = page(StatusCode::OK, pages::erased(&receipt));
            r.headers_mut().insert(SET_COOKIE, cookie(&public, "", 0));
            r
        }
        Ok(CustomerOutcome::Consent(_)) => {
            let done = match kind {
                CustomerRequest::Restriction => "Processing is now restricted.",
                CustomerRequest::LiftRestriction => "The restriction is lifted.",
                _ => "Your objection is recorded: those uses have stopped.",
            };
            requests_page(&engine, session, StatusCode::OK, Some(done)).await
        }
        Err(e) => gone_or_fault(e),
    }
}
