//! Withdrawals sent with a public browser key: processing for the purpose stops at once (the
//! ledger says so), but the deletion they cause waits for `[ingest] withdrawal_grace_hours`,
//! so that a withdrawal forged with the public key cannot erase anyone's data. The customer
//! (through the privacy centre), a server key or the admin API confirms it sooner; otherwise
//! this service carries it out once due, against the ledger as it then stands: if the customer
//! granted again meanwhile, nothing is deleted.

use consentric_store::Store;

use crate::clock::Clock;
use crate::error::EngineError;
use crate::withdrawal::{self, Derived};

/// Customers handled per transaction.
const PAGE: i64 = 100;

/// What this service works on, handed to it by the context.
pub(crate) struct WithdrawalGrace<'a> {
    pub(crate) store: &'a Store,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) derived: Derived<'a>,
}

impl WithdrawalGrace<'_> {
    /// Carries out every deferred withdrawal that is due, as `actor`; how many.
    ///
    /// # Errors
    /// A database fault; withdrawals carried out in earlier pages stay done.
    pub fn carry_out_due_withdrawals(&self, actor: &str) -> Result<u64, EngineError> {
        let mut done = 0u64;
        loop {
            let now = self.clock.now();
            let handled = self.store.write(|tx| -> Result<u64, EngineError> {
                let due = tx.due_withdrawals(now.timestamp_millis(), PAGE)?;
                for profile in &due {
                    if tx.take_withdrawal(profile)? {
                        let ledger = tx.consent_of(profile)?;
                        withdrawal::enforce(
                            tx,
                            self.policy,
                            &self.derived,
                            profile,
                            &ledger,
                            now,
                            actor,
                        )?;
                    }
                }
                Ok(due.len() as u64)
            })?;
            done += handled;
            if handled < PAGE as u64 {
                return Ok(done);
            }
        }
    }
}
