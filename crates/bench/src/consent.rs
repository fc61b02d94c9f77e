//! `consentric-bench ingest --consent-ab`: what minimisation and consent signals cost, as
//! ratios against the same traffic without them, side by side on each path.
//!
//! Customers who grant purposes keep more of their events than customers who grant none, so
//! comparing traffic with choices against traffic from customers without any would charge
//! the signals with storing what the customers allowed. Here every run starts from the same
//! first contact with each consenting customer. In "choices before" that contact carried
//! their banner's choices, recorded before the measured events, which carry none; in "on
//! every event" the measured events carry the choices, as a banner sends them. Both keep the
//! same fields; the difference is reading, comparing and recording the signals. The
//! reference run is "choices before" through an engine whose policy does not minimise
//! (`PolicySet::reference_without_minimisation`, built only with this crate's `reference` feature): the same path without minimisation and
//! without signals on the measured events, storing every event as received. Its customers'
//! consent is the same as in the other runs, so it derives the same data from their events
//! (lifecycle stages, item interactions for the consenting customers); a reference in which
//! nobody had consented would derive none, and charge minimisation with that work.

use std::time::Duration;

use anyhow::bail;
use consentric_engine::PolicySet;

use crate::args::IngestArgs;
use crate::ingest::{
    first_contact, fresh_engine_with, in_process, over_http, rate, sqlite_options, traffic, BATCH,
};

/// The three runs of a path, in the order they are measured.
const RUNS: [Run; 3] = [Run::Reference, Run::ChoicesBefore, Run::ChoicesOnEvents];

#[derive(Clone, Copy, PartialEq)]
enum Run {
    /// No minimisation; the choices recorded before, no signals on the measured events.
    Reference,
    ChoicesBefore,
    ChoicesOnEvents,
}

#[derive(Clone, Copy)]
enum Path {
    InProcess(usize),
    Http(usize),
}

/// The policy that stores events as received, built only with the `reference` feature.
#[cfg(feature = "reference")]
fn reference() -> anyhow::Result<PolicySet> {
    Ok(PolicySet::reference_without_minimisation())
}

#[cfg(not(feature = "reference"))]
fn reference() -> anyhow::Result<PolicySet> {
    bail!(
        "--consent-ab compares against an engine that does not minimise, which only a bench \
         built with `--features reference` has: cargo run --release -p consentric-bench \
         --features reference -- ingest --consent-ab"
    )
}

/// Runs each path three times (reference, choices before, choices on every event) on fresh
/// stores, one after the other, and prints the rates and their ratios.
pub fn run(args: &IngestArgs) -> anyhow::Result<()> {
    let n = args.events.max(BATCH);
    if args.consent_share == 0 {
        bail!("--consent-ab needs --consent-share above 0");
    }
    let options = sqlite_options(args)?;
    println!(
        "consentric-bench ingest --consent-ab: {n} events in batches of {BATCH}, {}% of customers consenting, vault {}, message ids {:?}, release={}",
        args.consent_share,
        if args.no_vault { "off" } else { "on" },
        args.message_ids,
        !cfg!(debug_assertions)
    );
    println!(
        "stores: fresh temporary directories under {}",
        std::env::temp_dir().display()
    );
    let c = args.connections;
    let paths = [
        ("in-process, 1 producer".to_owned(), Path::InProcess(1)),
        (format!("in-process, {c} producers"), Path::InProcess(c)),
        (format!("over HTTP, {c} connections"), Path::Http(c)),
    ];
    println!();
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "path (events/s)", "reference", "before", "on events", "minimise", "signals", "privacy"
    );
    for (name, path) in paths {
        let mut rates = [0.0; 3];
        for (slot, which) in RUNS.into_iter().enumerate() {
            let policy = match which {
                Run::Reference => reference()?,
                Run::ChoicesBefore | Run::ChoicesOnEvents => PolicySet::retail_defaults(),
            };
            let (_dir, engine) = fresh_engine_with(&options, args, policy)?;
            let before = which != Run::ChoicesOnEvents;
            in_process(&engine, &first_contact(n, args.consent_share, before), 1)?;
            let bodies = traffic(n, "a", args.consent_share, !before, args.message_ids);
            let took: Duration = match path {
                Path::InProcess(p) => in_process(&engine, &bodies, p)?,
                Path::Http(k) => over_http(std::sync::Arc::new(engine), &bodies, k)?.0,
            };
            rates[slot] = rate(n, took);
        }
        let [reference, before, on_events] = rates;
        println!(
            "{name:<26} {reference:>10.0} {before:>10.0} {on_events:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            before / reference,
            on_events / before,
            on_events / reference
        );
    }
    println!();
    println!("minimise = before / reference (what minimisation costs, consent alike);");
    println!("signals = on events / before (what reading and recording the choices costs);");
    println!("privacy = on events / reference (minimisation and signals against neither).");
    Ok(())
}
