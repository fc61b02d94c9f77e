//! The accept loop: HTTP/1.1 connections with a head timeout (which is also the idle
//! keep-alive timeout) and caps on how many are open, in all and from one address. A
//! connection over a cap is answered 503 and closed at once, so that an attacker holding
//! connections open cannot exhaust the process's file descriptors and silence `/healthz`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use super::Limits;

/// Header fields hyper itself parses before answering 431 on its own; the edge's own,
/// lower limit answers with JSON first.
const HYPER_MAX_HEADERS: usize = 512;

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
///
/// # Errors
/// None today: accept errors (out of descriptors, say) are logged and retried.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Arc<Limits>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(Mutex::new(HashMap::new()));
    // Every connection holds a receiver; shutdown is done when all are dropped.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refuse(&stream);
            continue;
        };
        let Some(per_client) = PerClient::enter(&clients, peer, &limits) else {
            refuse(&stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|e| match e {}))
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_headers(HYPER_MAX_HEADERS);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permits = (permit, per_client);
            let io = TokioIo::new(super::json_refusals::JsonRefusals::new(stream));
            let connection = builder.serve_connection(io, service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(stop);
        });
    }
    drop(stop_rx);
    let _ = stop_tx.send(true);
    stop_tx.closed().await;
    Ok(())
}

/// Open connections per client address.
type Clients = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One of a client's open connections, counted while it lives.
struct PerClient {
    clients: Clients,
    address: Option<IpAddr>,
}

impl PerClient {
    /// Counts a connection from `peer`, or `None` if its address holds as many as it may. A
    /// trusted proxy's connections are many clients', and are not counted.
    fn enter(clients: &Clients, peer: SocketAddr, limits: &Limits) -> Option<PerClient> {
        let address = peer.ip();
        if limits.trusted_proxies.contains(&address) {
            return Some(PerClient {
                clients: clients.clone(),
                address: None,
            });
        }
        let mut open = clients.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(address).or_insert(0);
        if *count >= limits.max_connections_per_client {
            return None;
        }
        *count += 1;
        Some(PerClient {
            clients: clients.clone(),
            address: Some(address),
        })
    }
}

impl Drop for PerClient {
    fn drop(&mut self) {
        let Some(address) = self.address else { return };
        let mut open = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&address);
            }
        }
    }
}

/// Answers a connection over the cap with 503 and closes it, without waiting for it.
fn refuse(stream: &TcpStream) {
    const BODY: &str = r#"{"error":{"code":"too_many_connections","message":"the server holds as many connections as it takes; retry shortly"}}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    // A fresh socket's send buffer has room; if not, the client simply sees the close.
    let _ = stream.try_write(response.as_bytes());
}
