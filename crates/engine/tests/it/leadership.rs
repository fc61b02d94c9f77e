//! Periodic jobs on a store several processes may share: run by the leader once per period,
//! and a leader superseded while its job runs writes nothing more.

use std::time::Duration;

use consentric_engine::{EngineError, Scope};
use consentric_store::StoreError;
use consentric_testkit::parity_test;

use crate::support::engine;

parity_test!(a_job_runs_once_per_period, |db| {
    let e = engine(&db);
    let hour = Duration::from_secs(3600);
    let first = e.run_timer("sweep", hour, |_| Ok(1)).expect("first");
    assert_eq!(first, Some(1));
    let again = e.run_timer("sweep", hour, |_| Ok(2)).expect("again");
    assert_eq!(again, None, "the period has not passed");
    // Another job has a period of its own.
    assert_eq!(
        e.run_timer("train", hour, |_| Ok(4)).expect("train"),
        Some(4)
    );
    // Another engine on the same database does not run it again: on PostgreSQL it does not
    // lead, and had it led, the last run is the database's.
    let other = engine(&db);
    assert_eq!(
        other.run_timer("sweep", hour, |_| Ok(3)).expect("other"),
        None
    );
});

parity_test!(
    a_leader_superseded_while_its_job_runs_writes_nothing_more,
    |db| {
        let e = engine(&db);
        let out = e.run_timer("job", Duration::from_secs(60), |e| {
            // A new leader takes over (its token is the next one), as when this one's lock was
            // lost while the job ran.
            db.execute_raw("UPDATE cluster_leader SET token = token + 1 WHERE id = 1");
            e.create_key(Scope::Admin, Some("written by a deposed leader"))
        });
        assert!(
            matches!(out, Err(EngineError::Store(StoreError::Fenced(_)))),
            "{out:?}"
        );
        assert!(
            e.keys()
                .expect("keys")
                .iter()
                .all(|k| k.label.as_deref() != Some("written by a deposed leader")),
            "the fenced write was not committed"
        );
        // Fenced once, the node leads again only by taking the lead anew (a newer token): its
        // next job runs and writes.
        // (On PostgreSQL the old lock's session may take a moment to end.)
        let started = std::time::Instant::now();
        loop {
            let next = e
                .run_timer("other job", Duration::from_secs(60), |e| {
                    e.create_key(Scope::Admin, Some("written by the new leader"))
                })
                .expect("the new lead writes");
            if next.is_some() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never led again"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
);
