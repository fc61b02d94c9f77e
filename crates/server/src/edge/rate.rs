//! Rate limits for public (browser) keys, per key *and* client: a browser key is in every
//! visitor's page, so a limit per key alone would let one abuser silence every visitor.
//!
//! The client is the connection's address, or — behind a proxy named in
//! `[server] trusted_proxies` — the nearest address in `X-Forwarded-For` that is not one of
//! them. An anonymous id is not used: a client picks its own, so it would let one abuser be
//! many clients.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// Buckets kept before full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

/// One token bucket per (key, client): `rate` requests a second, bursts of `burst`.
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<(String, IpAddr), (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` requests a second per key and client, with bursts of five seconds' worth;
    /// 0 turns the limit off.
    pub(crate) fn new(per_second: u32) -> Self {
        RateLimiter {
            rate: f64::from(per_second),
            burst: f64::from(per_second) * 5.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` from `client`, or says how long until one is there.
    pub(crate) fn take(&self, key: &str, client: IpAddr) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            // A full bucket holds nothing worth remembering.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets
            .entry((key.to_owned(), client))
            .or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// The peer of a request served by the edge's accept loop, which puts it in the extensions.
pub(crate) fn peer(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The client's address: the peer's, or behind a trusted proxy the nearest untrusted address
/// `X-Forwarded-For` names (the proxies append, so the rightmost entries are theirs).
pub(crate) fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> IpAddr {
    let Some(peer) = peer.map(|p| p.ip()) else {
        return IpAddr::from([0, 0, 0, 0]);
    };
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_of_a_key_has_its_own_bucket() {
        let limiter = RateLimiter::new(1);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..5 {
            assert!(limiter.take("k", a).is_ok());
        }
        let wait = limiter.take("k", a).expect_err("a's burst is spent");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(limiter.take("k", b).is_ok(), "b is not silenced by a");
        assert!(limiter.take("other", a).is_ok(), "nor is another key");
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = [10, 0, 0, 9].into();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8".parse().expect("header"),
        );
        let peer = Some(SocketAddr::new(proxy, 1234));
        assert_eq!(client_address(peer, &headers, &[]), proxy);
        assert_eq!(
            client_address(peer, &headers, &[proxy]),
            IpAddr::from([5, 6, 7, 8])
        );
        // A client cannot pose as another by prepending: the proxy appends the real one.
        let trusted = [proxy, IpAddr::from([5, 6, 7, 8])];
        assert_eq!(
            client_address(peer, &headers, &trusted),
            IpAddr::from([1, 2, 3, 4])
        );
    }
}
