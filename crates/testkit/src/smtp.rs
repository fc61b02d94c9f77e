//! A small SMTP server for the notifier's tests: real TCP, real TLS (rustls, with the test CA
//! in `crates/testkit/fixtures/smtp/`), STARTTLS or implicit TLS, `AUTH PLAIN`/`LOGIN` offered only
//! once the connection is encrypted, as real submission servers do. It records what it
//! received and how (encrypted? logged in as whom?), so a test can check both.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How the server protects connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain text, `STARTTLS` offered.
    Starttls,
    /// TLS from the first byte.
    ImplicitTls,
    /// Plain text only: `STARTTLS` is never offered.
    PlainOnly,
    /// Plain text, offering `AUTH` without TLS (as a careless or hostile server would).
    AuthWithoutTls,
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// Whether the message came over TLS.
    pub encrypted: bool,
    /// The account that logged in, if any.
    pub user: Option<String>,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent after `DATA`.
    pub data: String,
}

/// A running server; it stops with the test process.
pub struct SmtpServer {
    /// The port it listens on (at 127.0.0.1).
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    auth_attempts: Arc<AtomicUsize>,
}

impl SmtpServer {
    /// Everything accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// How many `AUTH` commands arrived, over TLS or not.
    pub fn auth_attempts(&self) -> usize {
        self.auth_attempts.load(Ordering::SeqCst)
    }
}

/// The test CA's certificate file, for `[notify] ca_file`.
pub fn ca_file() -> PathBuf {
    fixtures().join("ca.pem")
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/smtp")
}

fn tls_config() -> Arc<ServerConfig> {
    let certs = CertificateDer::pem_file_iter(fixtures().join("server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(fixtures().join("server.key")).expect("server.key");
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("certificate and key");
    Arc::new(config)
}

/// Starts a server; with `account = Some((user, password))` it requires that login before
/// accepting mail.
pub fn start(mode: Mode, account: Option<(&str, &str)>) -> SmtpServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let auth_attempts = Arc::new(AtomicUsize::new(0));
    let out = received.clone();
    let auths = auth_attempts.clone();
    let account = account.map(|(u, p)| (u.to_owned(), p.to_owned()));
    let config = tls_config();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (out, account, config) = (out.clone(), account.clone(), config.clone());
            let auths = auths.clone();
            std::thread::spawn(move || session(tcp, mode, account, config, out, auths));
        }
    });
    SmtpServer {
        port,
        received,
        auth_attempts,
    }
}

fn session(
    tcp: TcpStream,
    mode: Mode,
    account: Option<(String, String)>,
    config: Arc<ServerConfig>,
    out: Arc<Mutex<Vec<Received>>>,
    auths: Arc<AtomicUsize>,
) {
    let tls = |tcp| StreamOwned::new(ServerConnection::new(config.clone()).expect("tls"), tcp);
    let mut state = State {
        mode,
        account,
        out,
        auths,
        encrypted: false,
        user: None,
        to: Vec::new(),
    };
    if mode == Mode::ImplicitTls {
        state.encrypted = true;
        let _ = state.converse(BufReader::new(tls(tcp)), true);
    } else if let Ok(Some(tcp)) = state.converse(BufReader::new(tcp), true) {
        state.encrypted = true;
        let _ = state.converse(BufReader::new(tls(tcp)), false);
    }
}

struct State {
    mode: Mode,
    account: Option<(String, String)>,
    out: Arc<Mutex<Vec<Received>>>,
    auths: Arc<AtomicUsize>,
    encrypted: bool,
    user: Option<String>,
    to: Vec<String>,
}

impl State {
    /// Serves commands until `QUIT` (`None`) or `STARTTLS` (the bare stream, to wrap).
    fn converse<S: Read + Write>(
        &mut self,
        mut r: BufReader<S>,
        greet: bool,
    ) -> std::io::Result<Option<S>> {
        fn say<S: Read + Write>(r: &mut BufReader<S>, text: &str) -> std::io::Result<()> {
            r.get_mut().write_all(text.as_bytes())?;
            r.get_mut().flush()
        }
        fn line<S: Read + Write>(r: &mut BufReader<S>) -> std::io::Result<String> {
            let mut l = String::new();
            if r.read_line(&mut l)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            Ok(l.trim_end_matches(['\r', '\n']).to_owned())
        }
        if greet {
            say(&mut r, "220 localhost test ESMTP\r\n")?;
        }
        loop {
            let command = line(&mut r)?;
            let upper = command.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                let mut reply = String::from("250-localhost\r\n");
                if !self.encrypted && self.mode == Mode::Starttls {
                    reply.push_str("250-STARTTLS\r\n");
                }
                if self.account.is_some() && (self.encrypted || self.mode == Mode::AuthWithoutTls) {
                    reply.push_str("250-AUTH PLAIN LOGIN\r\n");
                }
                reply.push_str("250 8BITMIME\r\n");
                say(&mut r, &reply)?;
            } else if upper == "STARTTLS" && !self.encrypted && self.mode == Mode::Starttls {
                say(&mut r, "220 2.0.0 ready to start TLS\r\n")?;
                return Ok(Some(r.into_inner()));
            } else if upper.starts_with("AUTH ")
                && (self.encrypted || self.mode == Mode::AuthWithoutTls)
            {
                self.auths.fetch_add(1, Ordering::SeqCst);
                let (user, password) = if upper.starts_with("AUTH PLAIN") {
                    let initial = command.get(11..).map(str::trim).unwrap_or_default();
                    let b64 = if initial.is_empty() {
                        say(&mut r, "334 \r\n")?;
                        line(&mut r)?
                    } else {
                        initial.to_owned()
                    };
                    let raw = decode(&b64);
                    let mut parts = raw.split('\0').skip(1);
                    (
                        parts.next().unwrap_or_default().to_owned(),
                        parts.next().unwrap_or_default().to_owned(),
                    )
                } else {
                    say(&mut r, "334 VXNlcm5hbWU6\r\n")?;
                    let user = decode(&line(&mut r)?);
                    say(&mut r, "334 UGFzc3dvcmQ6\r\n")?;
                    (user, decode(&line(&mut r)?))
                };
                if self.account.as_ref() == Some(&(user.clone(), password)) {
                    self.user = Some(user);
                    say(&mut r, "235 2.7.0 authenticated\r\n")?;
                } else {
                    say(&mut r, "535 5.7.8 authentication credentials invalid\r\n")?;
                }
            } else if upper.starts_with("MAIL FROM:") {
                if self.account.is_some() && self.user.is_none() {
                    say(&mut r, "530 5.7.0 authentication required\r\n")?;
                } else {
                    self.to.clear();
                    say(&mut r, "250 2.1.0 ok\r\n")?;
                }
            } else if upper.starts_with("RCPT TO:") {
                self.to.push(command[8..].trim().to_owned());
                say(&mut r, "250 2.1.5 ok\r\n")?;
            } else if upper == "DATA" {
                say(&mut r, "354 end with <CRLF>.<CRLF>\r\n")?;
                let mut data = String::new();
                loop {
                    let l = line(&mut r)?;
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push('\n');
                }
                self.out.lock().expect("lock").push(Received {
                    encrypted: self.encrypted,
                    user: self.user.clone(),
                    to: std::mem::take(&mut self.to),
                    data,
                });
                say(&mut r, "250 2.0.0 queued\r\n")?;
            } else if upper == "QUIT" {
                say(&mut r, "221 2.0.0 bye\r\n")?;
                return Ok(None);
            } else if upper == "RSET" || upper == "NOOP" {
                say(&mut r, "250 2.0.0 ok\r\n")?;
            } else {
                say(&mut r, "502 5.5.1 not here\r\n")?;
            }
        }
    }
}

fn decode(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
