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

    /// Drops whatever this notifier still holds for `addresses` (an erased customer's): a
    /// channel that keeps nothing, like mail handed to a server, has nothing to drop.
    fn forget(&self, addresses: &[String]) {
        let _ = addresses;
    }

    /// Drops what is kept of messages to every address `erased` picks (another node erased
    /// the customer, and announced only keyed hashes of the addresses).
    fn forget_where(&self, erased: &dyn Fn(&str) -> bool) {
        let _ = erased;
    }
}

/// Messages an [`Outbox`] keeps, newest last; older ones are dropped.
pub const OUTBOX_KEEPS: usize = 1000;

/// Keeps the latest [`OUTBOX_KEEPS`] messages in memory instead of sending them, and forgets
/// an erased customer's.
#[derive(Debug, Default)]
pub struct Outbox {
    sent: Mutex<std::collections::VecDeque<Message>>,
}

impl Outbox {
    /// What is kept of what was "sent", oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

impl Notifier for Outbox {
    fn send(&self, message: &Message) -> Result<(), String> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.len() >= OUTBOX_KEEPS {
            sent.pop_front();
        }
        sent.push_back(message.clone());
        Ok(())
    }

    fn forget(&self, addresses: &[String]) {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|m| !addresses.contains(&m.to));
    }

    fn forget_where(&self, erased: &dyn Fn(&str) -> bool) {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|m| !erased(&m.to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(address: &str, i: usize) -> Message {
        Message {
            to: address.into(),
            subject: "s".into(),
            body: format!("code {i}"),
        }
    }

    #[test]
    fn the_outbox_keeps_only_the_latest_and_forgets_an_address() {
        let outbox = Outbox::default();
        for i in 0..OUTBOX_KEEPS + 5 {
            outbox.send(&to("a@example.com", i)).expect("kept");
        }
        outbox.send(&to("b@example.com", 0)).expect("kept");
        let kept = outbox.messages();
        assert_eq!(kept.len(), OUTBOX_KEEPS);
        assert_eq!(kept[0].body, "code 6");
        outbox.forget(&["a@example.com".to_owned()]);
        assert_eq!(outbox.messages(), vec![to("b@example.com", 0)]);
    }
}
