//! How Consentric reaches a customer who filed a request: a one-time code to prove who they
//! are. A deployment plugs in its mail system behind [`Notifier`]; the [`Outbox`] keeps what
//! would be sent, for tests and for deployments without mail (an operator reads it).

mod smtp;

use std::sync::Mutex;

pub use smtp::{SmtpNotifier, SmtpSecurity, SmtpSettings};

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
