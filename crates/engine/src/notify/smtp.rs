//! Mail through an SMTP server, by `lettre`: implicit TLS (port 465), STARTTLS that must
//! succeed (port 587; no silent fall-back to plain text), or plain SMTP for a relay on the same
//! host; optional authentication, allowed only over TLS.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use serde::Deserialize;

use super::{Message, Notifier};

/// How the connection to the SMTP server is protected (`[notify] security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain text, then `STARTTLS`; a server that does not offer it is refused, so a
    /// man-in-the-middle cannot strip the upgrade.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a trusted network.
    None,
}

/// `[notify]`: where one-time codes are sent from and through.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// `host:port` of the SMTP server; without it, messages are not sent.
    pub smtp: Option<String>,
    /// The sender address; required with `smtp` (relays refuse or junk a made-up one). Its
    /// domain is also the name this host gives in `EHLO` and in `Message-ID`s.
    pub from: Option<String>,
    /// `starttls` (default), `tls` or `none`.
    pub security: SmtpSecurity,
    /// The account to log in with; needs a password and a `security` other than `none`.
    pub username: Option<String>,
    /// A file holding the password (first line), so it stays out of the configuration;
    /// `CONSENTRIC_SMTP_PASSWORD` takes precedence.
    pub password_file: Option<PathBuf>,
    /// PEM certificates to trust besides the system's (a private relay's own CA).
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for the server at each step.
    pub timeout_seconds: u64,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            smtp: None,
            from: None,
            security: SmtpSecurity::default(),
            username: None,
            password_file: None,
            ca_file: None,
            timeout_seconds: 10,
        }
    }
}

/// Sends messages through an SMTP server, connecting afresh for each (codes are rare).
#[derive(Clone)]
pub struct SmtpNotifier {
    transport: SmtpTransport,
    from: Mailbox,
    server: String,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpNotifier {
    /// The notifier `settings` describe, or `None` when no server is set. Everything that can
    /// be wrong with the settings (the server's address, the sender, a missing password, a CA
    /// file without certificates, credentials over plain text) is found here, at start-up, not
    /// at the first code. The password is `CONSENTRIC_SMTP_PASSWORD` when set, else
    /// `password_file`'s first line.
    ///
    /// # Errors
    /// A sentence naming the setting at fault.
    pub fn from_settings(settings: &SmtpSettings) -> Result<Option<Self>, String> {
        let env = std::env::var("CONSENTRIC_SMTP_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        Self::from_settings_and_password(settings, env)
    }

    /// [`SmtpNotifier::from_settings`] with the environment's password given, not read.
    ///
    /// # Errors
    /// As [`SmtpNotifier::from_settings`].
    pub fn from_settings_and_password(
        settings: &SmtpSettings,
        env_password: Option<String>,
    ) -> Result<Option<Self>, String> {
        let Some(server) = &settings.smtp else {
            return Ok(None);
        };
        let (host, port) = parse_server(server)?;
        let from_text = settings
            .from
            .as_deref()
            .ok_or("[notify] from is required with smtp: the address codes are sent from")?;
        let from: Mailbox = from_text
            .parse()
            .map_err(|e| format!("[notify] from `{from_text}` is not an address: {e}"))?;
        let mut builder = SmtpTransport::builder_dangerous(&host)
            .port(port)
            .hello_name(ClientId::Domain(from.email.domain().to_owned()))
            .timeout(Some(Duration::from_secs(settings.timeout_seconds.max(1))));
        if settings.security != SmtpSecurity::None {
            let mut tls = TlsParameters::builder(host.clone());
            if let Some(path) = &settings.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("[notify] ca_file {}: {e}", path.display()))?;
                // lettre skips what is not a certificate; a file with none would only fail at
                // the first code, as an unknown issuer.
                let not_pem = || {
                    format!(
                        "[notify] ca_file {} holds no PEM certificate",
                        path.display()
                    )
                };
                if !pem
                    .windows(CERT_BEGIN.len())
                    .any(|w| w == CERT_BEGIN.as_bytes())
                {
                    return Err(not_pem());
                }
                let ca = Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", not_pem()))?;
                tls = tls.add_root_certificate(ca);
            }
            let tls = tls
                .build_rustls()
                .map_err(|e| format!("[notify] TLS settings: {e}"))?;
            builder = builder.tls(match settings.security {
                SmtpSecurity::Tls => Tls::Wrapper(tls),
                _ => Tls::Required(tls),
            });
        }
        if let Some(username) = &settings.username {
            if settings.security == SmtpSecurity::None {
                return Err(
                    "[notify] username needs security = \"starttls\" or \"tls\": the password would cross the network in clear text"
                        .into(),
                );
            }
            let password = match env_password {
                Some(p) => p,
                None => {
                    let path = settings.password_file.as_ref().ok_or(
                        "[notify] username is set but there is no password: set password_file or CONSENTRIC_SMTP_PASSWORD",
                    )?;
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("[notify] password_file {}: {e}", path.display()))?;
                    text.lines().next().unwrap_or_default().to_owned()
                }
            };
            if password.is_empty() {
                return Err(
                    "[notify] username is set but there is no password: the password is empty"
                        .into(),
                );
            }
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Some(SmtpNotifier {
            transport: builder.build(),
            from,
            server: server.clone(),
        }))
    }
}

const CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

/// `host:port` into a host (a DNS name, an IPv4 address, or an IPv6 address in brackets,
/// returned without them) and a port.
fn parse_server(server: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("[notify] smtp must be host:port, not `{server}`: {why}");
    let (host, port) = server.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the port is not 1 to 65535"))?;
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok((inner.to_owned(), port)),
            Err(_) => Err(bad("not an IPv6 address in brackets")),
        };
    }
    if host.contains(':') {
        return Err(bad("an IPv6 address goes in brackets, as [::1]:25"));
    }
    let dns_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if dns_name || host.parse::<std::net::Ipv4Addr>().is_ok() {
        Ok((host.to_owned(), port))
    } else {
        Err(bad("the host is neither a name nor an address"))
    }
}

impl Notifier for SmtpNotifier {
    fn send(&self, message: &Message) -> Result<(), String> {
        // Header injection: an address or subject with a line break is refused outright (the
        // parser would refuse the address too, less plainly).
        for (what, value) in [("recipient", &message.to), ("subject", &message.subject)] {
            if value.chars().any(char::is_control) {
                return Err(format!("the {what} contains control characters"));
            }
        }
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|e| format!("`{}` is not an e-mail address: {e}", message.to))?;
        let mail = lettre::Message::builder()
            .message_id(Some(format!(
                "<{}@{}>",
                uuid::Uuid::new_v4().simple(),
                self.from.email.domain()
            )))
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| format!("the message could not be built: {e}"))?;
        self.transport
            .send(&mail)
            .map(|_| ())
            .map_err(|e| format!("SMTP {}: {e}", self.server))
    }
}
