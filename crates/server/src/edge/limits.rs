//! What every request must keep within before a handler runs: a URI and head of sane size, a
//! place among the requests being worked on (else 429 with `Retry-After`, not a queue that
//! grows), and a body that arrives by its deadline (else 408).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consentric_engine::ServerSettings;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::deadline_body::DeadlineBody;
use super::rate::RateLimiter;
use crate::codes;
use crate::error::ApiError;

/// Longest request target (path and query) answered; longer is 414.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields answered; more is 431.
pub(crate) const MAX_HEADERS: usize = 100;
/// Largest head (all header fields) answered; larger is 431.
pub(crate) const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Most of a shed request's body read (and dropped) before it is answered 429: a batch's limit.
const DRAINED_BYTES: usize = consentric_model::MAX_BATCH_BYTES;

/// Paths that answer however busy the server is: a load balancer's probes must not be shed.
const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The edge's limits, from `[server]`, and the state they keep.
pub(crate) struct Limits {
    /// Time for a request's head, and for an idle kept-alive connection.
    pub(crate) header_timeout: Duration,
    /// Time for a request's body, from when its head arrived.
    pub(crate) body_timeout: Duration,
    /// Open connections at most.
    pub(crate) max_connections: usize,
    /// Open connections at most from one address that is not a trusted proxy.
    pub(crate) max_connections_per_client: usize,
    /// Requests being worked on at most.
    in_flight: Arc<Semaphore>,
    /// Per key and client, for browser keys.
    pub(crate) browser_rate: RateLimiter,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub(crate) trusted_proxies: Vec<IpAddr>,
    /// Browser keys this process saw used by a server SDK (noted in the store once).
    pub(crate) server_libraries_noted: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Limits {
    pub(crate) fn new(settings: &ServerSettings) -> Self {
        Limits {
            header_timeout: Duration::from_secs(settings.header_timeout_seconds.max(1)),
            body_timeout: Duration::from_secs(settings.body_timeout_seconds.max(1)),
            max_connections: settings.max_connections.max(1),
            max_connections_per_client: settings.max_connections_per_client.max(1),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            browser_rate: RateLimiter::new(settings.browser_requests_per_second),
            trusted_proxies: settings.trusted_proxies.clone(),
            server_libraries_noted: Default::default(),
        }
    }
}

/// The client's address as the rate limits see it (see [`super::client_address`]), put in
/// every request's extensions by [`admit`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client(pub(crate) IpAddr);

/// The middleware: checks the head, takes a place among the requests in flight, and holds the
/// body to its deadline.
pub(crate) async fn admit(
    State(limits): State<Arc<Limits>>,
    request: Request,
    next: Next,
) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::new(
            &codes::URI_TOO_LONG,
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES} are read"),
        )
        .into_response();
    }
    let headers = request.headers();
    let head: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || head > MAX_HEAD_BYTES {
        return ApiError::new(
            &codes::HEADERS_TOO_LARGE,
            format!(
                "{} header fields of {head} bytes; at most {MAX_HEADERS} fields of {MAX_HEAD_BYTES} bytes are read",
                headers.len()
            ),
        )
        .into_response();
    }
    let permit = if PROBES.contains(&request.uri().path()) {
        None
    } else {
        match limits.in_flight.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                // The body is read and dropped first (within the body limit and deadline): a
                // client still sending it when the connection closed would see a reset, not
                // the 429 that tells it to come back.
                let deadline = limits.body_timeout;
                let _ = tokio::time::timeout(
                    deadline,
                    axum::body::to_bytes(request.into_body(), DRAINED_BYTES),
                )
                .await;
                return ApiError::new(
                    &codes::OVERLOADED,
                    "the server is working on as many requests as it takes; retry shortly",
                )
                .with_retry_after(Duration::from_secs(1))
                .into_response();
            }
        }
    };
    let expired = Arc::new(AtomicBool::new(false));
    let (mut parts, body) = request.into_parts();
    let client = super::client_address(
        super::rate::peer(&parts.extensions),
        &parts.headers,
        &limits.trusted_proxies,
    );
    parts.extensions.insert(Client(client));
    let body = Body::new(DeadlineBody::new(
        body,
        Instant::now() + limits.body_timeout,
        expired.clone(),
    ));
    let response = next.run(Request::from_parts(parts, body)).await;
    drop(permit);
    if expired.load(Ordering::Relaxed) {
        return ApiError::new(
            &codes::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s",
                limits.body_timeout.as_secs()
            ),
        )
        .into_response();
    }
    response
}
