//! Group commit: concurrent calls (ingest batches, decisions) share one transaction, so one
//! durable commit (one fsync on SQLite with `synchronous = FULL`) acknowledges many.
//!
//! A caller that finds no leader and requests waiting becomes the leader: it takes the queued
//! requests (usually its own among them; not if its own is in a group another leader is
//! flushing), commits them together, steps down, flushes, and hands each caller its own
//! result. Callers that arrived meanwhile wait; one of them leads the next group. A request is
//! never answered before the transaction holding it is durable. If a group's transaction
//! fails, each request is retried alone, so one request's fault cannot fail another's; if the
//! leader panics, every request of its group is answered with an error.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
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
    /// Queues `request` and returns once it is committed and durable (or has failed).
    /// `commit` stores a group in one transaction and returns one outcome per request, in
    /// order, with what `flush` must make durable before any of them is answered. The leader
    /// steps down between the two, so the next group is written while this one is flushed.
    pub(crate) fn submit<P>(
        &self,
        request: T,
        commit: impl Fn(&[T]) -> (Vec<Outcome<O>>, P),
        flush: impl Fn(P) -> Result<(), EngineError>,
    ) -> Outcome<O> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = state.next;
        state.next += 1;
        state.queue.push((ticket, request));
        loop {
            if let Some(outcome) = state.done.remove(&ticket) {
                return outcome;
            }
            // Our request may be in a group another leader is flushing: then only wait.
            if !state.leading && !state.queue.is_empty() {
                state.leading = true;
                let take = state.queue.len().min(MAX_GROUP_REQUESTS);
                let group: Vec<(Ticket, T)> = state.queue.drain(..take).collect();
                drop(state);
                self.lead(ticket, group, &commit, &flush);
                state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Commits `group`, steps down so the next group can be written, flushes, and answers
    /// each request. A panic while leading must not leave the others waiting for ever: they
    /// are answered with an error (see [`GroupCommit::abandon`]).
    fn lead<P>(
        &self,
        own: Ticket,
        group: Vec<(Ticket, T)>,
        commit: &impl Fn(&[T]) -> (Vec<Outcome<O>>, P),
        flush: &impl Fn(P) -> Result<(), EngineError>,
    ) {
        let (tickets, batches): (Vec<Ticket>, Vec<T>) = group.into_iter().unzip();
        let committed = catch_unwind(AssertUnwindSafe(|| commit(&batches)));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.leading = false;
        self.wake.notify_all();
        drop(state);
        let answered = committed.and_then(|(mut outcomes, pending)| {
            let flushed = catch_unwind(AssertUnwindSafe(|| flush(pending)))?;
            if let Err(e) = flushed {
                // Committed but not known durable: no one is told it succeeded.
                let why = e.to_string();
                for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
                    *o = Err(EngineError::Writer(format!("the flush failed: {why}")));
                }
            }
            Ok(outcomes)
        });
        match answered {
            Ok(outcomes) => self.answer(tickets.into_iter().zip(outcomes)),
            Err(panic) => self.abandon(own, tickets, panic),
        }
    }

    /// Hands each caller its outcome and wakes them.
    fn answer(&self, outcomes: impl IntoIterator<Item = (Ticket, Outcome<O>)>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.done.extend(outcomes);
        self.wake.notify_all();
    }

    /// Answers every request of a group whose leader panicked with an error, except the
    /// leader's own: if that is in the group, the panic goes on to the leader's caller. If it
    /// is not (it is in a group another leader is flushing, or still queued), the panic is
    /// logged and the leader goes back to waiting for its own answer.
    fn abandon(&self, own: Ticket, tickets: Vec<Ticket>, panic: Box<dyn Any + Send>) {
        let ours = tickets.contains(&own);
        self.answer(tickets.into_iter().filter(|t| *t != own).map(|t| {
            let why = "the request's group failed while being written";
            (t, Err(EngineError::Writer(why.into())))
        }));
        if ours {
            resume_unwind(panic);
        }
        tracing::error!("a group commit's leader panicked while writing others' requests");
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
                        answers.push(gc.submit(
                            events,
                            |group| {
                                commits.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_micros(200));
                                let outcomes = group
                                    .iter()
                                    .map(|b| {
                                        Ok(IngestReport {
                                            accepted: b.capacity() as u64,
                                            ..IngestReport::default()
                                        })
                                    })
                                    .collect();
                                (outcomes, ())
                            },
                            |()| Ok(()),
                        ));
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
                    gc.submit(
                        i,
                        |group| {
                            sizes.lock().expect("sizes").push(group.len());
                            std::thread::sleep(std::time::Duration::from_millis(2));
                            (group.iter().map(|r| Ok(r * 10)).collect(), ())
                        },
                        |()| Ok(()),
                    )
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

    /// The leader lets go before flushing: a request queued while a group is being flushed
    /// is committed before that flush ends (the flush below waits for it, and would wait
    /// forever if the leader held on). The flushed group is answered only after its flush.
    #[test]
    fn the_next_group_is_written_while_the_last_one_is_flushed() {
        use std::sync::mpsc::channel;
        use std::time::Duration;
        let gc = Arc::new(GroupCommit::<usize, usize>::default());
        let (flushing_tx, flushing) = channel();
        let (second_tx, second) = channel();
        let flushed = Arc::new(AtomicUsize::new(0));
        let first = {
            let (gc, flushed) = (gc.clone(), flushed.clone());
            std::thread::spawn(move || {
                gc.submit(
                    1,
                    |group| (group.iter().map(|r| Ok(*r)).collect(), ()),
                    |()| {
                        flushing_tx.send(()).expect("send");
                        let overlapped = second.recv_timeout(Duration::from_secs(30)).is_ok();
                        flushed.store(1, Ordering::SeqCst);
                        assert!(overlapped, "no commit while the last group was flushed");
                        Ok(())
                    },
                )
            })
        };
        flushing.recv().expect("the first group is being flushed");
        // On a thread of its own: were the leader to hold on, this would wait forever.
        let later = std::thread::spawn(move || {
            gc.submit(
                2,
                |group| {
                    second_tx.send(()).expect("send");
                    (group.iter().map(|r| Ok(*r)).collect(), ())
                },
                |()| Ok(()),
            )
        });
        assert_eq!(first.join().expect("first").expect("first"), 1);
        assert_eq!(flushed.load(Ordering::SeqCst), 1);
        assert_eq!(later.join().expect("second").expect("second"), 2);
    }

    /// A group whose flush fails is committed but not known durable: none of its requests is
    /// told it succeeded.
    #[test]
    fn a_failed_flush_answers_every_request_of_its_group_with_an_error() {
        let gc = GroupCommit::<usize, usize>::default();
        let answer = gc.submit(
            7,
            |group| (group.iter().map(|r| Ok(*r)).collect(), ()),
            |()| {
                Err(EngineError::Store(consentric_store::StoreError::Io {
                    path: "wal".into(),
                    source: std::io::Error::other("disk gone"),
                }))
            },
        );
        let e = answer.expect_err("a request answered before it was durable");
        assert!(e.to_string().contains("disk gone"), "{e}");
    }

    /// Starts a caller that leads and holds its commit until the returned sender is used, and
    /// returns once it leads: requests submitted meanwhile queue and form the next group.
    fn hold_the_lead(
        gc: &Arc<GroupCommit<usize, usize>>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        std::thread::JoinHandle<Outcome<usize>>,
    ) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holder = {
            let gc = gc.clone();
            std::thread::spawn(move || {
                gc.submit(
                    0,
                    |group| {
                        held.recv().expect("released");
                        (group.iter().map(|r| Ok(*r)).collect(), ())
                    },
                    |()| Ok(()),
                )
            })
        };
        while !gc.state.lock().map(|s| s.leading).unwrap_or(false) {
            std::thread::yield_now();
        }
        (release, holder)
    }

    /// A leader that panics does not leave its group waiting for ever: the others in it get
    /// an error, the panic reaches the leader's own caller, and the next request is served.
    #[test]
    fn a_panic_while_leading_fails_its_group_and_the_next_request_is_served() {
        use std::sync::mpsc::channel;
        let gc = Arc::new(GroupCommit::<usize, usize>::default());
        let until = |what: &str, done: &dyn Fn() -> bool| {
            for _ in 0..30_000 {
                if done() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            panic!("{what} never happened");
        };
        // A first caller leads and holds, so the next two queue and form one group.
        let (release, first) = hold_the_lead(&gc);
        let state = |gc: &GroupCommit<usize, usize>| {
            let s = gc.state.lock().unwrap_or_else(|p| p.into_inner());
            (s.leading, s.queue.len())
        };
        // Each answer (or the panic) comes back on a channel, so a caller left waiting for
        // ever fails the test instead of hanging it.
        let (answered, answers) = channel();
        for i in [1, 2] {
            let (gc, answered) = (gc.clone(), answered.clone());
            std::thread::spawn(move || {
                let answer = catch_unwind(AssertUnwindSafe(|| {
                    gc.submit(i, |_| panic!("a bug in the writer"), |()| Ok(()))
                }));
                answered.send(answer).expect("send");
            });
        }
        until("two queued", &|| state(&gc).1 == 2);
        release.send(()).expect("release");
        assert_eq!(first.join().expect("first").expect("first"), 0);
        let wait = std::time::Duration::from_secs(30);
        let answers = [
            answers
                .recv_timeout(wait)
                .expect("a caller was left waiting"),
            answers
                .recv_timeout(wait)
                .expect("a caller was left waiting"),
        ];
        let panicked = answers.iter().filter(|r| r.is_err()).count();
        assert_eq!(panicked, 1, "the leader's own caller gets the panic");
        let failed = answers
            .iter()
            .filter(|r| matches!(r, Ok(Err(EngineError::Writer(_)))))
            .count();
        assert_eq!(failed, 1, "the other in its group gets an error");
        let next = gc.submit(3, |g| (g.iter().map(|r| Ok(*r)).collect(), ()), |()| Ok(()));
        assert_eq!(next.expect("served"), 3);
        let left = gc.state.lock().map(|s| s.done.len()).unwrap_or(usize::MAX);
        assert_eq!(left, 0, "an answer nobody will collect");
    }

    /// A flush that panics is handled as a commit that panics: the others in the group are
    /// answered with an error instead of waiting for ever.
    #[test]
    fn a_panic_while_flushing_fails_its_group() {
        use std::sync::mpsc::channel;
        let gc = Arc::new(GroupCommit::<usize, usize>::default());
        let (answered, answers) = channel();
        let (release, holder) = hold_the_lead(&gc);
        for i in [1, 2] {
            let (gc, answered) = (gc.clone(), answered.clone());
            std::thread::spawn(move || {
                let answer = catch_unwind(AssertUnwindSafe(|| {
                    gc.submit(
                        i,
                        |g| (g.iter().map(|r| Ok(*r)).collect(), ()),
                        |()| panic!("a bug in the flush"),
                    )
                }));
                answered.send(answer).expect("send");
            });
        }
        while gc.state.lock().map(|s| s.queue.len()).unwrap_or(0) < 2 {
            std::thread::yield_now();
        }
        release.send(()).expect("release");
        assert_eq!(holder.join().expect("holder").expect("ok"), 0);
        let wait = std::time::Duration::from_secs(30);
        let mut panicked = 0;
        for _ in 0..2 {
            match answers
                .recv_timeout(wait)
                .expect("a caller was left waiting")
            {
                Err(_) => panicked += 1,
                Ok(answer) => assert!(matches!(answer, Err(EngineError::Writer(_)))),
            }
        }
        assert_eq!(panicked, 1, "only the leader's own caller gets the panic");
    }

    /// A leader whose own request is not in the group it leads (it is in a group another
    /// leader is flushing) does not take a panic of that group to its caller: the group is
    /// answered with errors and the leader waits for its own answer.
    #[test]
    fn a_leader_panicking_for_others_answers_them_and_keeps_waiting_for_its_own() {
        let gc = GroupCommit::<usize, usize>::default();
        let boom = || -> Box<dyn Any + Send> { Box::new("a bug") };
        gc.abandon(9, vec![1, 2], boom());
        {
            let state = gc.state.lock().expect("state");
            assert!(matches!(
                state.done.get(&1),
                Some(Err(EngineError::Writer(_)))
            ));
            assert!(matches!(
                state.done.get(&2),
                Some(Err(EngineError::Writer(_)))
            ));
        }
        let own = catch_unwind(AssertUnwindSafe(|| gc.abandon(3, vec![3, 4], boom())));
        assert!(
            own.is_err(),
            "the leader's own request was in the group: its caller panics"
        );
        let state = gc.state.lock().expect("state");
        assert!(
            !state.done.contains_key(&3),
            "no answer left for the panicking caller"
        );
        assert!(state.done.contains_key(&4));
    }
}
