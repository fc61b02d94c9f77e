//! `consentric-bench lifecycle`: the figures of docs/benchmarks.md for lifecycle analytics, measured side by
//! side in one run.
//!
//! 1. BG/NBD and Gamma-Gamma fitted on CDNOW's 2,357-customer sample and on all 23,570 master
//!    customers (39-week calibration ending 1997-09-30, day-aggregated), and, when a Python
//!    with `lifetimes` is given, the same summaries fitted by it: parameters compared to three
//!    decimals, time as a ratio.
//! 2. Scoring every master customer: P(alive), expected purchases, CLV.
//! 3. Ingest with and without stage updates (after a fit, so stage rules consult P(alive)).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::NaiveDate;
use consentric_engine::{Engine, LifecycleSettings, Store, SystemClock};
use consentric_lifecycle::summary::summarise;
use consentric_lifecycle::{
    score_all, BgNbd, ClvSettings, CustomerSummary, GammaGamma, ParetoNbd, Purchase, PurchaseModel,
};
use consentric_store::SqliteOptions;
use serde_json::Value;

use crate::args::LifecycleArgs;

const SAMPLE: &str =
    include_str!("../../../data/cdnow/cdnow_customers_summary_with_transactions.csv");
const SAMPLE_RAW: &str = include_str!("../../../data/cdnow/CDNOW_sample.txt");

pub fn run(args: &LifecycleArgs) -> anyhow::Result<()> {
    println!(
        "consentric-bench lifecycle: {} runs per figure (median), release={}",
        args.runs,
        !cfg!(debug_assertions)
    );
    let sample = sample_summaries()?;
    let master = master_summaries()?;
    let dir = tempfile::tempdir()?;
    println!();
    println!(
        "{:<26} {:>10} {:>12} {:>12} {:>8}  parameters (Consentric | lifetimes)",
        "fit", "customers", "consentric", "lifetimes", "ratio"
    );
    for (name, data) in [("CDNOW sample", &sample), ("CDNOW master", &master)] {
        let csv = dir.path().join(format!("{}.csv", name.replace(' ', "_")));
        write_csv(&csv, data)?;
        let reference = match &args.reference {
            Some(python) => Some(lifetimes(python, &csv, args.runs)?),
            None => None,
        };
        let (bg, bg_time) = median(args.runs, || BgNbd::fit(data))?;
        let (gg, gg_time) = median(args.runs, || GammaGamma::fit(data))?;
        let ours = [
            ("BG/NBD", "bg_nbd", bg.names, bg.params.clone(), bg_time),
            (
                "Gamma-Gamma",
                "gamma_gamma",
                gg.names,
                gg.params.clone(),
                gg_time,
            ),
        ];
        for (label, key, names, params, took) in ours {
            let theirs = reference.as_ref().map(|r| &r[key]);
            let their_time = theirs.and_then(|t| t["seconds"].as_f64());
            let mut same = true;
            let shown: Vec<String> = names
                .iter()
                .zip(&params)
                .map(|(n, v)| {
                    let other = theirs.and_then(|t| t["params"][*n].as_f64());
                    if let Some(o) = other {
                        same &= format!("{v:.3}") == format!("{o:.3}");
                    }
                    match other {
                        Some(o) => format!("{n} {v:.3}|{o:.3}"),
                        None => format!("{n} {v:.3}"),
                    }
                })
                .collect();
            println!(
                "{:<26} {:>10} {:>10.2} ms {:>12} {:>8}  {}{}",
                format!("{label}, {name}"),
                data.len(),
                ms(took),
                their_time.map_or("-".into(), |t| format!("{:.1} ms", t * 1000.0)),
                their_time.map_or("-".into(), |t| format!("{:.0}x", t / took.as_secs_f64())),
                shown.join(", "),
                match (theirs, same) {
                    (None, _) => "",
                    (Some(_), true) => "  (same to 3 decimals)",
                    (Some(_), false) => "  (DIFFER at 3 decimals)",
                }
            );
        }
        if name == "CDNOW master" {
            time_scoring(&bg.model, &gg.model, data, args.runs)?;
        }
    }
    if args.reference.is_none() {
        println!("(lifetimes skipped: pass --reference \"$(scripts/lifetimes-venv.sh)\")");
    }
    holdout(args.runs, args.reference.as_deref(), dir.path())?;
    stage_cost(args)
}

/// The holdout check on the raw CDNOW sample: calibrate on weeks 1-39, predict weeks 40-78,
/// compare with what customers did, in total and by calibration repeat purchases.
/// With `reference`, `lifetimes` predicts the same holdout from the same summary, side by side.
fn holdout(runs: usize, reference: Option<&Path>, dir: &Path) -> anyhow::Result<()> {
    let mut by: BTreeMap<&str, Vec<Purchase>> = BTreeMap::new();
    for line in SAMPLE_RAW.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_, id, date, _, dollars] = f[..] else {
            continue;
        };
        by.entry(id).or_default().push(Purchase {
            day: NaiveDate::parse_from_str(date, "%Y%m%d")?,
            amount: dollars.parse()?,
        });
    }
    let cal_end = NaiveDate::from_ymd_opt(1997, 9, 30).context("date")?;
    let end = NaiveDate::from_ymd_opt(1998, 6, 30).context("date")?;
    let cal: Vec<CustomerSummary> = by.values().filter_map(|p| summarise(p, cal_end)).collect();
    let held: Vec<f64> = by
        .values()
        .map(|p| consentric_lifecycle::summary::holdout(p, cal_end, end).x)
        .collect();
    let weeks = consentric_lifecycle::summary::weeks_between(cal_end, end);
    let (bg, _) = median(1, || BgNbd::fit(&cal))?;
    let (pareto, pareto_time) = median(runs.min(3), || ParetoNbd::fit(&cal))?;
    println!();
    println!(
        "holdout, CDNOW sample: calibrated on weeks 1-39, predicting the {weeks:.0} weeks after (Pareto/NBD fitted in {:.1} ms)",
        ms(pareto_time)
    );
    println!(
        "  {:<22} {:>9} {:>9} {:>11}",
        "by calibration repeats",
        "customers",
        "actual",
        "BG/NBD | Pareto/NBD (holdout purchases per customer)"
    );
    let mut total = (0.0, 0.0, 0.0);
    for group in 0..=7 {
        let (mut n, mut actual, mut b, mut p) = (0.0, 0.0, 0.0, 0.0);
        for (c, h) in cal.iter().zip(&held) {
            if (c.x as usize).min(7) == group {
                n += 1.0;
                actual += h;
                b += bg.model.expected_purchases(weeks, c);
                p += pareto.model.expected_purchases(weeks, c);
            }
        }
        total = (total.0 + actual, total.1 + b, total.2 + p);
        if n > 0.0 {
            println!(
                "  calibration x = {:<6} {n:>9.0} {:>9.2} {:>9.2} | {:.2}",
                if group == 7 {
                    "7+".to_owned()
                } else {
                    group.to_string()
                },
                actual / n,
                b / n,
                p / n
            );
        }
    }
    let pct = |v: f64| 100.0 * (v - total.0) / total.0;
    println!(
        "  total: actual {:.0}, BG/NBD {:.0} ({:+.1}%), Pareto/NBD {:.0} ({:+.1}%)",
        total.0,
        total.1,
        pct(total.1),
        total.2,
        pct(total.2)
    );
    if let Some(python) = reference {
        let csv = dir.join("holdout.csv");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(f, "x,t_x,T,holdout")?;
        for (c, h) in cal.iter().zip(&held) {
            writeln!(f, "{},{},{},{h}", c.x, c.t_x, c.t)?;
        }
        f.flush()?;
        drop(f);
        let theirs = reference_script(
            python,
            &[
                "holdout".as_ref(),
                csv.as_os_str(),
                weeks.to_string().as_ref(),
            ],
        )?;
        let get = |k: &str| theirs[k].as_f64().context("the reference's holdout JSON");
        let (actual, b, p) = (get("actual")?, get("bg_nbd")?, get("pareto_nbd")?);
        let pct = |v: f64| 100.0 * (v - actual) / actual;
        println!(
            "  lifetimes, same summary: actual {actual:.0}, BG/NBD {b:.0} ({:+.1}%), Pareto/NBD {p:.0} ({:+.1}%)",
            pct(b),
            pct(p)
        );
    }
    Ok(())
}

/// Time of every master customer's P(alive), expected purchases in 90 days and 12-month CLV.
fn time_scoring(
    bg: &BgNbd,
    gg: &GammaGamma,
    data: &[CustomerSummary],
    runs: usize,
) -> anyhow::Result<()> {
    let settings = ClvSettings::default();
    let (total, took) = median(runs, || -> anyhow::Result<f64> {
        let scores = score_all(bg, Some(gg), data, 90.0 / 7.0, settings);
        let total: f64 = scores
            .iter()
            .map(|s| s.p_alive + s.expected_purchases + s.clv.unwrap_or(f64::NAN))
            .sum();
        if !total.is_finite() {
            bail!("a score is not finite");
        }
        Ok(total)
    })?;
    println!(
        "{:<26} {:>10} {:>10.2} ms   (P(alive), expected purchases in 90 days, 12-month CLV; checksum {total:.1})",
        "scoring, CDNOW master",
        data.len(),
        ms(took)
    );
    Ok(())
}

/// Ingest throughput with and without stage updates, on fresh SQLite stores, after a fit.
fn stage_cost(args: &LifecycleArgs) -> anyhow::Result<()> {
    let n = args.events.max(1000);
    // The fit before the timed part needs histories that identify the models: CDNOW's
    // sample, imported as `consentric import --consent` does.
    let consent = ["analytics".to_owned(), "personalization".to_owned()];
    // Sequential ids, as when this figure was first recorded.
    let bodies = crate::ingest::generate(
        n,
        "timed",
        args.consent_share,
        crate::args::MessageIds::Sequential,
    );
    let mut rates = BTreeMap::new();
    // Interleaved, so drift of the machine hits both alike.
    for round in 0..args.runs.clamp(1, 9) {
        for on_ingest in [false, true] {
            let dir = tempfile::tempdir()?;
            let store = Store::open_sqlite(dir.path(), SqliteOptions::default())?.with_vault(
                Arc::new(consentric_vault::Vault::new(
                    consentric_vault::MasterKeys::load_or_create(dir.path())?,
                )),
            );
            let engine =
                Engine::new(store, Arc::new(SystemClock)).with_lifecycle(LifecycleSettings {
                    on_ingest,
                    ..LifecycleSettings::default()
                })?;
            consentric_engine::import::import_with_consent(
                &engine,
                SAMPLE_RAW.as_bytes(),
                consentric_engine::import::ImportFormat::Cdnow,
                &consent,
                &mut |_| {},
            )?;
            engine.lifecycle_fit("bench")?;
            let took = crate::ingest::in_process(&engine, &bodies, 1)?;
            rates
                .entry(on_ingest)
                .or_insert_with(Vec::new)
                .push(n as f64 / took.as_secs_f64());
            if round == 0 && on_ingest {
                let summary = engine.lifecycle_summary("bench")?;
                let placed: u64 = summary.funnel.values().sum();
                println!();
                println!("stage updates on ingest ({n} events in batches of 100, 1 producer, {}% of customers consenting; {placed} customers placed, {} transitions):", args.consent_share, summary.transitions);
            }
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let off = med(rates.get_mut(&false).context("no run")?);
    let on = med(rates.get_mut(&true).context("no run")?);
    println!("  without stage updates   {off:>10.0} events/s");
    println!("  with stage updates      {on:>10.0} events/s");
    println!(
        "  cost                    {:>10.1} %",
        100.0 * (1.0 - on / off)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `f` `runs` times; its last output and the median time.
fn median<T, E: Into<anyhow::Error>>(
    runs: usize,
    mut f: impl FnMut() -> Result<T, E>,
) -> anyhow::Result<(T, Duration)> {
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        out = Some(f().map_err(Into::into)?);
        times.push(started.elapsed());
    }
    times.sort();
    let out = out.context("no run")?;
    Ok((out, times[times.len() / 2]))
}

fn sample_summaries() -> anyhow::Result<Vec<CustomerSummary>> {
    SAMPLE
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .with_context(|| format!("summary line {l:?}"))?;
            Ok(CustomerSummary {
                x: f[1],
                t_x: f[2],
                t: f[3],
                monetary: f[4],
            })
        })
        .collect()
}

/// The master's customers, day-aggregated, with the sample's calibration window.
fn master_summaries() -> anyhow::Result<Vec<CustomerSummary>> {
    let mut by: BTreeMap<&str, Vec<Purchase>> = BTreeMap::new();
    for line in std::str::from_utf8(crate::CDNOW_MASTER)?.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [customer, date, _, dollars] = f[..] else {
            bail!("master line {line:?}");
        };
        by.entry(customer).or_default().push(Purchase {
            day: NaiveDate::parse_from_str(date, "%Y%m%d")?,
            amount: dollars.parse()?,
        });
    }
    let end = NaiveDate::from_ymd_opt(1997, 9, 30).context("date")?;
    Ok(by.values().filter_map(|p| summarise(p, end)).collect())
}

fn write_csv(path: &Path, data: &[CustomerSummary]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "x,t_x,T,monetary")?;
    for c in data {
        writeln!(f, "{},{},{},{}", c.x, c.t_x, c.t, c.monetary)?;
    }
    f.flush()?;
    Ok(())
}

/// Runs the reference script with `python`; its JSON.
fn lifetimes(python: &Path, csv: &Path, runs: usize) -> anyhow::Result<Value> {
    reference_script(python, &[csv.as_os_str(), runs.to_string().as_ref()])
}

/// `scripts/lifetimes_reference.py` with `args`; its JSON.
fn reference_script(python: &Path, args: &[&std::ffi::OsStr]) -> anyhow::Result<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lifetimes_reference.py");
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("Failed to run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "the lifetimes reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("the lifetimes reference printed no JSON")
}
