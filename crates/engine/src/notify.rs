//! How Consentric reaches a customer who filed a request: a one-time code to prove who they
//! are. A deployment plugs in its mail system behind [`Notifier`]; the [`Outbox`] keeps what
//! would be sent, for tests and for deployments without mail (an operator reads it).

use std::sync::Mutex;

/// One message to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The text.
    pub body: String,
}

/// Sends messages to customers.
pub trait Notifier: Send + Sync {
    /// Sends `message`, or says why not.
    ///
    /// # Errors
    /// Whatever the channel reports, as text.
    fn send(&self, message: &Message) -> Result<(), String>;
}

/// Keeps messages in memory instead of sending them.
#[derive(Debug, Default)]
pub struct Outbox {
    sent: Mutex<Vec<Message>>,
}

impl Outbox {
    /// Everything "sent" so far, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Notifier for Outbox {
    fn send(&self, message: &Message) -> Result<(), String> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message.clone());
        Ok(())
    }
}

/// Sends messages through an SMTP server (plain SMTP: a local relay or a submission port that
/// does not require TLS or authentication — those are not implemented).
#[derive(Debug, Clone)]
pub struct SmtpNotifier {
    /// `host:port` of the server.
    pub server: String,
    /// The sender address.
    pub from: String,
}

/// Refuses what could inject SMTP commands or mail headers: control characters anywhere.
fn clean(what: &str, value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

impl SmtpNotifier {
    fn converse(&self, m: &Message) -> std::io::Result<Result<(), String>> {
        use std::io::{BufRead, BufReader, Write};
        let stream = std::net::TcpStream::connect(&self.server)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(std::time::Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        // One reply, possibly multi-line ("250-…" … "250 …"); its code.
        let reply = |reader: &mut BufReader<std::net::TcpStream>| -> std::io::Result<String> {
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Err(std::io::Error::other("the server closed the connection"));
                }
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok(line.trim_end().to_owned());
                }
            }
        };
        let step = |writer: &mut std::net::TcpStream,
                    reader: &mut BufReader<std::net::TcpStream>,
                    command: Option<&str>,
                    expect: &[&str]|
         -> std::io::Result<Result<(), String>> {
            if let Some(c) = command {
                writer.write_all(c.as_bytes())?;
                writer.write_all(b"\r\n")?;
            }
            let r = reply(reader)?;
            if expect.iter().any(|code| r.starts_with(code)) {
                Ok(Ok(()))
            } else {
                Ok(Err(format!(
                    "the SMTP server answered `{r}` to {}",
                    command.unwrap_or("the greeting")
                )))
            }
        };
        for (command, expect) in [
            (None, &["220"][..]),
            (Some("EHLO consentric".to_owned()), &["250"][..]),
            (Some(format!("MAIL FROM:<{}>", self.from)), &["250"][..]),
            (Some(format!("RCPT TO:<{}>", m.to)), &["250", "251"][..]),
            (Some("DATA".to_owned()), &["354"][..]),
        ] {
            if let Err(e) = step(&mut writer, &mut reader, command.as_deref(), expect)? {
                return Ok(Err(e));
            }
        }
        let mut data = format!(
            "From: <{}>\r\nTo: <{}>\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
            self.from, m.to, m.subject
        );
        for line in m.body.lines() {
            // Dot-stuffing: a line that starts with "." gets another.
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push('.');
        if let Err(e) = step(&mut writer, &mut reader, Some(&data), &["250"])? {
            return Ok(Err(e));
        }
        let _ = step(&mut writer, &mut reader, Some("QUIT"), &["221"]);
        Ok(Ok(()))
    }
}

impl Notifier for SmtpNotifier {
    fn send(&self, message: &Message) -> Result<(), String> {
        clean("the recipient", &message.to)?;
        clean("the sender", &self.from)?;
        clean("the subject", &message.subject)?;
        if !message.to.contains('@') {
            return Err(format!("`{}` is not an e-mail address", message.to));
        }
        match self.converse(message) {
            Ok(result) => result,
            Err(e) => Err(format!("SMTP {}: {e}", self.server)),
        }
    }
}
