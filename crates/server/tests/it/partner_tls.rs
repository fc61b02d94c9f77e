//! The clean-room guest's client speaks TLS: it reaches an https host whose certificate it can
//! verify, and refuses one that no root it trusts vouches for.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::fixture_in;

/// A host on a loopback port that answers every request over TLS with `{"ok":true}`.
async fn https_host() -> u16 {
    let certs = CertificateDer::pem_slice_iter(&fixture_in("tls", "host.pem"))
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(&fixture_in("tls", "host.key")).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = [0u8; 4096];
                let _ = tls.read(&mut request).await;
                let body = r#"{"ok":true}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn the_guest_reaches_an_https_host_it_can_verify_and_refuses_one_it_cannot() {
    let port = https_host().await;
    let url = format!("https://localhost:{port}/v1/cleanroom/sessions/s/blinded");

    let ca = reqwest::Certificate::from_pem(&fixture_in("tls", "ca.pem")).expect("CA");
    let trusting = consentric_server::partner::client(vec![ca]).expect("client");
    let answer = trusting
        .post(&url)
        .send()
        .await
        .expect("TLS to a host whose certificate a trusted root signed");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), r#"{"ok":true}"#);

    let plain = consentric_server::partner::client(Vec::new()).expect("client");
    let refused = plain
        .post(&url)
        .send()
        .await
        .expect_err("no trusted root signed the host's certificate");
    let why = format!("{refused:?}");
    assert!(why.to_lowercase().contains("certificate"), "{why}");
}
