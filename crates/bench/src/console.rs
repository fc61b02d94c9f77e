//! `consentric-bench console`: the server time of each console page over HTTP at CDNOW's
//! 23,570 customers (or CDNOW copied to `--customers`), logged in as an admin.

use std::sync::Arc;
use std::time::Instant;

use consentric_engine::{Engine, Role};

use crate::args::ConsoleArgs;

const PASSWORD: &str = "bench password, long enough";

pub fn run(args: &ConsoleArgs) -> anyhow::Result<()> {
    let cdnow = match args.customers {
        Some(n) => crate::analytics::cdnow_copied(n)?,
        None => String::from_utf8(crate::CDNOW_MASTER.to_vec())?,
    };
    let dir = tempfile::tempdir()?;
    let (engine, orders, took) = crate::analytics::imported(dir.path(), cdnow.as_bytes())?;
    let customers = engine.totals()?.1;
    println!(
        "consentric-bench console: {customers} customers ({orders} orders) imported in {took:.1} s, {} requests per page, release={}",
        args.requests,
        !cfg!(debug_assertions)
    );
    let t = Instant::now();
    let fit = engine.lifecycle_fit("bench")?;
    println!(
        "value models fitted in {:.1} s ({} customers)",
        t.elapsed().as_secs_f64(),
        fit.customers
    );
    // As `serve` does in the background on every node, every 30 s.
    let t = Instant::now();
    engine.refresh_console_figures()?;
    println!(
        "the lifecycle summary and the overview's counts (computed in the background): {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    engine.add_operator("admin", Role::Admin, PASSWORD, "bench")?;
    let (_, token) = engine.operator_log_in("admin", PASSWORD, None)?;
    let customer = engine
        .find_profile(&consentric_engine::ProfileRef::parse(
            // Copies are numbered in seven digits, CDNOW's own customers in five.
            if args.customers.is_some() {
                "user_id:0000001"
            } else {
                "user_id:00001"
            },
        )?)?
        .as_str()
        .to_owned();
    time_pages(engine, &token, &customer, args.requests)
}

fn time_pages(engine: Arc<Engine>, token: &str, customer: &str, n: usize) -> anyhow::Result<()> {
    let (_server, port, clients) = crate::ingest::serve_beside_clients(engine)?;
    let base = format!("http://127.0.0.1:{port}");
    let cookie = format!("consentric_console={token}");
    let customer_page = format!("/console/customers/{customer}");
    let pages = [
        "/console".to_owned(),
        "/console/lifecycle".to_owned(),
        customer_page,
        "/console/privacy".to_owned(),
    ];
    let timed: Vec<(String, usize)> = pages.into_iter().map(|p| (p, n)).collect();
    crate::ingest::time_pages(&clients, &base, &cookie, &timed)
}
