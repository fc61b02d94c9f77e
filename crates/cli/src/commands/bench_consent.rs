//! `consentric bench ingest --consent-ab`: what consent signals cost, as a ratio against the
//! same traffic without them, side by side on each path.
//!
//! Customers who grant purposes keep more of their events than customers who grant none, so
//! comparing traffic with choices against traffic from customers without any would charge
//! the signals with storing what the customers allowed. Here both runs start from the same
//! first contact with each consenting customer; in one it already carried their choices
//! (recorded before the measured run, whose events then carry none), in the other the
//! measured events carry the choices, on every event, as a banner sends them. Both keep the
//! same fields; the difference is reading, comparing and recording the signals.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use super::bench::{
    first_contact, fresh_engine, in_process, over_http, rate, sqlite_options, traffic, BATCH,
};
use crate::cli::BenchIngestArgs;

/// Runs the three paths, each first without then with the signals, on fresh stores.
pub fn run(args: &BenchIngestArgs) -> anyhow::Result<()> {
    let n = args.events.max(BATCH);
    if args.consent_share == 0 {
        bail!("--consent-ab needs --consent-share above 0");
    }
    let options = sqlite_options(args)?;
    println!(
        "consentric bench ingest --consent-ab: {n} events in batches of {BATCH}, {}% of customers consenting, vault {}, release={}",
        args.consent_share,
        if args.no_vault { "off" } else { "on" },
        !cfg!(debug_assertions)
    );
    let c = args.connections;
    let paths = [
        ("in-process, 1 producer".to_owned(), Path::InProcess(1)),
        (format!("in-process, {c} producers"), Path::InProcess(c)),
        (format!("over HTTP, {c} connections"), Path::Http(c)),
    ];
    println!();
    println!(
        "{:<28} {:>16} {:>16} {:>7}",
        "path", "choices before", "on every event", "ratio"
    );
    for (name, path) in paths {
        let mut rates = [0.0; 2];
        for (slot, on_events) in [false, true].into_iter().enumerate() {
            let (_dir, engine) = fresh_engine(&options, args)?;
            in_process(
                &engine,
                &first_contact(n, args.consent_share, !on_events),
                1,
            )?;
            let bodies = traffic(n, "a", args.consent_share, on_events);
            let took: Duration = match path {
                Path::InProcess(p) => in_process(&engine, &bodies, p)?,
                Path::Http(k) => over_http(Arc::new(engine), &bodies, k)?,
            };
            rates[slot] = rate(n, took);
        }
        println!(
            "{name:<28} {:>16.0} {:>16.0} {:>7.2}",
            rates[0],
            rates[1],
            rates[1] / rates[0]
        );
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Path {
    InProcess(usize),
    Http(usize),
}
