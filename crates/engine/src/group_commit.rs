//! Group commit: concurrent calls (ingest batches, decisions) share one transaction, so one
//! durable commit (one fsync on SQLite with `synchronous = FULL`) acknowledges many.
//!
//! The first caller to find no leader becomes the leader: it takes every queued request (its
//! own included), commits them together, hands each caller its own result and steps down.
//! Callers that arrived meanwhile wait; one of them leads the next group. A request is never
//! answered before the transaction holding it has committed. If a group's transaction fails,
//! each request is retried alone, so one request's fault cannot fail another's.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use crate::error::EngineError;
use crate::ingest::IngestReport;

/// Most requests one transaction takes; bounds its size and the wait of the last in line.
const MAX_GROUP_REQUESTS: usize = 64;

type Ticket = u64;
pub(crate) type Outcome<O = IngestReport> = Result<O, EngineError>;

struct State<T, O> {
    queue: Vec<(Ticket, T)>,
    done: HashMap<Ticket, Outcome<O>>,
    leading: bool,
    next: Ticket,
}

pub(crate) struct GroupCommit<T, O = IngestReport> {
    state: Mutex<State<T, O>>,
    wake: Condvar,
}

impl<T, O> Default for GroupCommit<T, O> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                queue: Vec::new(),
                done: HashMap::new(),
                leading: false,
                next: 0,
            }),
            wake: Condvar::new(),
        }
    }
}

impl<T, O> GroupCommit<T, O> {
    /// Queues `request` and returns once it is committed (or has failed). `commit` stores a
    /// group in one transaction and returns one outcome per request, in order.
    pub(crate) fn submit(
        &self,
        request: T,
        commit: impl Fn(&[T]) -> Vec<Outcome<O>>,
    ) -> Outcome<O> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = state.next;
        state.next += 1;
        state.queue.push((ticket, request));
        loop {
            if let Some(outcome) = state.done.remove(&ticket) {
                return outcome;
            }
            if !state.leading {
                state.leading = true;
                let take = state.queue.len().min(MAX_GROUP_REQUESTS);
                let group: Vec<(Ticket, T)> = state.queue.drain(..take).collect();
                drop(state);
                let (tickets, batches): (Vec<Ticket>, Vec<T>) = group.into_iter().unzip();
                let outcomes = commit(&batches);
                state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                for (t, o) in tickets.into_iter().zip(outcomes) {
                    state.done.insert(t, o);
                }
                state.leading = false;
                self.wake.notify_all();
                continue;
            }
            state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_requests_share_commits_and_each_gets_its_own_outcome() {
        let gc = Arc::new(GroupCommit::<Vec<u8>>::default());
        let commits = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (gc, commits) = (gc.clone(), commits.clone());
                std::thread::spawn(move || {
                    let mut answers = Vec::new();
                    for _ in 0..50 {
                        let events: Vec<u8> = Vec::with_capacity(i);
                        answers.push(gc.submit(events, |group| {
                            commits.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            group
                                .iter()
                                .map(|b| {
                                    Ok(IngestReport {
                                        accepted: b.capacity() as u64,
                                        ..IngestReport::default()
                                    })
                                })
                                .collect()
                        }));
                    }
                    (i, answers)
                })
            })
            .collect();
        for t in threads {
            let (i, answers) = t.join().expect("thread");
            for a in answers {
                assert_eq!(
                    a.expect("ok").accepted,
                    i as u64,
                    "each caller gets its own result"
                );
            }
        }
        let commits = commits.load(Ordering::SeqCst);
        assert!(commits <= 400, "never more commits than requests");
    }

    #[test]
    fn more_waiters_than_a_group_holds_are_all_answered_each_with_its_own() {
        let gc = Arc::new(GroupCommit::<usize, usize>::default());
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..150)
            .map(|i| {
                let (gc, sizes) = (gc.clone(), sizes.clone());
                std::thread::spawn(move || {
                    gc.submit(i, |group| {
                        sizes.lock().expect("sizes").push(group.len());
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        group.iter().map(|r| Ok(r * 10)).collect()
                    })
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            assert_eq!(t.join().expect("thread").expect("ok"), i * 10);
        }
        let sizes = sizes.lock().expect("sizes");
        assert_eq!(
            sizes.iter().sum::<usize>(),
            150,
            "every request committed once"
        );
        assert!(sizes.iter().all(|&n| n <= MAX_GROUP_REQUESTS));
    }
}
