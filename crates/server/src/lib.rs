//! Consentric's HTTP API.
//!
//! Thin by design: a handler authenticates, turns the request into typed values (the model's
//! parser does the real work), calls one [`Engine`] method on a blocking thread, and maps the
//! result or error to HTTP. Nothing here decides anything about data; that is the engine's job.
//! The ingest paths and auth schemes are Segment's, so that analytics.js, analytics-node and
//! RudderStack SDKs work when pointed at Consentric unchanged.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod codes;
mod cors;
mod edge;
mod error;
mod extract;
mod json_errors;
mod negotiate;
mod openapi;
mod pages;
pub mod partner;
mod routes;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};
use consentric_engine::{Engine, ServerSettings};
use tokio::net::TcpListener;

pub use error::ApiError;
pub use openapi::{document as openapi_document, ApiDoc};

/// Shared state of every handler.
pub(crate) type AppState = Arc<Engine>;

/// The router with every endpoint and the default limits; exposed for in-process use.
pub fn router(engine: Arc<Engine>) -> Router {
    let settings = ServerSettings::default();
    router_with(engine, Arc::new(edge::Limits::new(&settings)), &settings)
}

fn router_with(
    engine: Arc<Engine>,
    limits: Arc<edge::Limits>,
    settings: &ServerSettings,
) -> Router {
    Router::new()
        .merge(routes::ingest::routes())
        .merge(routes::sdk::routes())
        .merge(routes::banner::routes())
        .merge(routes::profiles::routes())
        .merge(routes::consent::routes())
        .merge(routes::dsr::routes())
        .merge(routes::lifecycle::routes())
        .merge(routes::decisions::routes())
        .merge(routes::analytics::routes())
        .merge(routes::keys::routes())
        .merge(routes::ops::routes())
        .merge(routes::privacy::routes())
        .merge(routes::console::routes())
        .route("/openapi.json", axum::routing::get(openapi::serve))
        // Transport limit: a whole batch. Single events get their own 32 KB check.
        .layer(DefaultBodyLimit::max(consentric_model::MAX_BATCH_BYTES))
        // Clean-room messages carry whole blinded sets: their own, larger limit.
        .merge(routes::cleanroom::routes())
        .fallback(cors::no_such_endpoint)
        .layer(Extension(limits.clone()))
        .layer(middleware::from_fn_with_state(limits, edge::admit))
        .layer(Extension(routes::sdk::PublicUrl::new(settings)))
        .layer(middleware::from_fn(json_errors::json_errors))
        // Outside the JSON errors and the admission limits, so their answers carry CORS too.
        .layer(middleware::from_fn_with_state(
            cors::Cors::new(settings),
            cors::cors,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(engine)
}

async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// A bound, not yet running server. Binding happens in [`Application::build`] so that callers
/// (tests, the bench) can ask for port 0 and learn the real port before serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: Arc<edge::Limits>,
}

impl Application {
    /// Binds `address` (e.g. `127.0.0.1:0`) with the default limits.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn build(engine: Arc<Engine>, address: &str) -> std::io::Result<Self> {
        let settings = ServerSettings {
            listen: address.to_owned(),
            ..ServerSettings::default()
        };
        Application::with_settings(engine, &settings).await
    }

    /// Binds `settings.listen` with the limits `settings` sets (timeouts, connection and
    /// in-flight caps, browser-key rate limits, trusted proxies), once the engine hears what
    /// other nodes on the same PostgreSQL change (`Engine::follow_cluster`).
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn with_settings(
        engine: Arc<Engine>,
        settings: &ServerSettings,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&settings.listen).await?;
        // A node serving beside others hears their changes before it answers anyone.
        let following = engine.clone();
        tokio::task::spawn_blocking(move || following.follow_cluster())
            .await
            .map_err(std::io::Error::other)?;
        let limits = Arc::new(edge::Limits::new(settings));
        Ok(Application {
            listener,
            router: router_with(engine, limits.clone(), settings),
            limits,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// If the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until Ctrl-C or SIGTERM, finishing in-flight requests.
    ///
    /// # Errors
    /// If the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        edge::serve(self.listener, self.router, self.limits, shutdown_signal()).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
