//! `consentric-bench analytics`: sampler speed, end-to-end latency of DP releases over the
//! CDNOW customers, and their error against what the mechanism promises.

use std::sync::Arc;
use std::time::Instant;

use consentric_engine::analytics::QueryRequest;
use consentric_engine::import::ImportFormat;
use consentric_engine::{Engine, Scope, SystemClock};
use consentric_pets::Noise;
use serde_json::json;

use crate::args::AnalyticsArgs;

/// An analyst key with room for every release the bench makes (a grant is at most ρ = 1000).
fn analyst(engine: &Engine) -> anyhow::Result<consentric_engine::NewKey> {
    let key = engine.create_key(Scope::Analyst, Some("bench"))?;
    for _ in 0..3 {
        engine.grant_budget(&key.key_id, "customers", 1000.0, "bench")?;
    }
    Ok(key)
}

/// Times 51 HTTP releases of each query over `customers` customers, one client; the first is
/// reported apart (it folds every customer's consent, see `docs/differential-privacy.md`).
fn time_releases(engine: Arc<Engine>, secret: String, customers: usize) -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    runtime.block_on(async move {
        let app = consentric_server::Application::build(engine, "127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}/v1/analytics/query", app.port());
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::new();
        for (name, body) in [
            ("count", json!({"query": "count", "epsilon": 0.1})),
            (
                "histogram by stage",
                json!({"query": "histogram", "by": "stage", "epsilon": 0.1}),
            ),
            (
                "sum of revenue",
                json!({"query": "sum", "measure": "revenue", "bounds": [0, 500], "epsilon": 0.1}),
            ),
            (
                "median revenue",
                json!({"query": "quantile", "measure": "revenue", "bounds": [0, 500], "epsilon": 0.1}),
            ),
            (
                "top 3 stages",
                json!({"query": "top_k", "by": "stage", "k": 3, "epsilon": 0.1}),
            ),
            ("stage funnel", json!({"query": "funnel", "epsilon": 0.1})),
            (
                "retention, 1997 cohorts × 6 months",
                json!({"query": "retention", "categories": ["1997-01", "1997-02", "1997-03"], "periods": 6, "epsilon": 0.1}),
            ),
        ] {
            let mut lat = Vec::new();
            for _ in 0..51 {
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&secret)
                    .body(body.to_string())
                    .send()
                    .await?;
                let ok = r.status().is_success();
                let text = r.text().await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                anyhow::ensure!(ok, "{name}: {text}");
            }
            // The first release after the import folds every customer's consent; the rest
            // reuse that population until a commit changes it.
            let first = lat.remove(0);
            lat.sort_by(f64::total_cmp);
            println!(
                "HTTP {name} over {customers} customers: p50 {:.2} ms, p99 {:.2} ms (50 releases; the one before them {first:.1} ms)",
                lat[24], lat[49]
            );
        }
        Ok::<_, anyhow::Error>(())
    })
}

/// A fresh durable store in `dir` with `cdnow` (CDNOW's file format) imported, every customer
/// granting analytics and personalisation; with the orders stored and the seconds it took.
pub(crate) fn imported(
    dir: &std::path::Path,
    cdnow: &[u8],
) -> anyhow::Result<(Arc<Engine>, u64, f64)> {
    let store = crate::ingest::durable_sealed_sqlite(dir)?;
    let engine = Arc::new(Engine::new(store, Arc::new(SystemClock)));
    let consent = vec!["analytics".to_owned(), "personalization".to_owned()];
    let t = Instant::now();
    let summary = consentric_engine::import::import_with_consent(
        &engine,
        cdnow,
        ImportFormat::Cdnow,
        &consent,
        &mut |_| {},
    )?;
    Ok((engine, summary.accepted, t.elapsed().as_secs_f64()))
}

/// CDNOW's master file with its customers copied under new ids until there are `n`.
pub(crate) fn cdnow_copied(n: usize) -> anyhow::Result<String> {
    let text = std::str::from_utf8(crate::CDNOW_MASTER)?;
    let rows: Vec<(u64, &str)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (id, rest) = l.trim_start().split_once(' ')?;
            Some((id.parse().ok()?, rest))
        })
        .collect();
    let base = rows.iter().map(|(id, _)| *id).max().unwrap_or(0);
    anyhow::ensure!(base > 0, "no CDNOW customers");
    let mut copy = String::from(" customer_id  date number_of_cds  dollar_value\n");
    'fill: for k in 0.. {
        for (id, rest) in &rows {
            let new = k * base + id;
            if new > n as u64 {
                if k * base >= n as u64 {
                    break 'fill;
                }
                continue;
            }
            copy.push_str(&format!(" {new:07} {rest}\n"));
        }
    }
    Ok(copy)
}

/// The releases over `n` customers: CDNOW's, copied under new ids until there are `n`.
fn scaled(n: usize) -> anyhow::Result<()> {
    let copy = cdnow_copied(n)?;
    let dir = tempfile::tempdir()?;
    let (engine, orders, took) = imported(dir.path(), copy.as_bytes())?;
    let customers = engine.totals()?.1;
    println!("imported {customers} customers ({orders} orders) in {took:.1} s");
    let key = analyst(&engine)?;
    time_releases(engine, key.secret().to_owned(), customers as usize)
}

pub fn run(args: &AnalyticsArgs) -> anyhow::Result<()> {
    println!(
        "consentric-bench analytics: release={}",
        !cfg!(debug_assertions)
    );
    for noise in [
        Noise::DiscreteLaplace { scale: 1.0 },
        Noise::DiscreteLaplace { scale: 10.0 },
        Noise::DiscreteGaussian { sigma: 1.0 },
        Noise::DiscreteGaussian { sigma: 10.0 },
    ] {
        let n = args.draws;
        let t = Instant::now();
        let mut sum = 0i64;
        for _ in 0..n {
            sum = sum.wrapping_add(noise.sample()?);
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        println!("{noise:?}: {rate:.0} draws/s on one core (checksum {sum})");
    }

    let dir = tempfile::tempdir()?;
    let (engine, orders, took) = imported(dir.path(), crate::CDNOW_MASTER)?;
    println!("imported CDNOW ({orders} orders) in {took:.1} s");
    let key = analyst(&engine)?;
    let request =
        |v: serde_json::Value| -> anyhow::Result<QueryRequest> { Ok(serde_json::from_value(v)?) };
    time_releases(engine.clone(), key.secret().to_owned(), 23_570)?;
    if let Some(n) = args.customers {
        scaled(n)?;
    }

    // Accuracy against the exact values, computed from the shipped file itself.
    let exact_count = 23_570.0;
    let mut per_customer: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    let text = std::str::from_utf8(crate::CDNOW_MASTER)?;
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split_whitespace().collect();
        if let [id, _, _, v] = c[..] {
            *per_customer.entry(id).or_default() += v.parse::<f64>().unwrap_or(0.0);
        }
    }
    let exact_sum: f64 = per_customer
        .values()
        .map(|v| (v.clamp(0.0, 500.0) * 100.0).round() / 100.0)
        .sum();
    let mut ours = Vec::new();
    for eps in [0.1, 1.0] {
        for (name, q, exact, unit, sensitivity) in [
            (
                "count",
                json!({"query": "count", "epsilon": eps}),
                exact_count,
                1.0,
                1.0,
            ),
            (
                "sum of revenue [0, 500]",
                json!({"query": "sum", "measure": "revenue", "bounds": [0, 500], "epsilon": eps}),
                exact_sum,
                100.0,
                500.0,
            ),
        ] {
            let q = request(q)?;
            let mut abs = 0.0;
            let mut promised = 0.0;
            let t = Instant::now();
            for _ in 0..args.releases {
                let r = engine.analytics_query(&key.key_id, &q)?;
                abs += (r.value.unwrap_or(0.0) - exact).abs();
                promised = r.noise.as_ref().expect("additive noise").expected_abs() / unit;
            }
            let mae = abs / args.releases as f64;
            println!(
                "ε = {eps}: {name}: mean |error| over {} releases {mae:.3}, expected {promised:.3} (ratio {:.3}); {:.2} ms per release in-process",
                args.releases,
                mae / promised,
                t.elapsed().as_secs_f64() * 1000.0 / args.releases as f64
            );
            ours.push((format!("ε = {eps}: {name}"), eps, sensitivity, exact, mae));
        }
    }
    match &args.reference {
        None => println!("(diffprivlib skipped: pass --reference \"$(scripts/dp-venv.sh)\")"),
        Some(python) => {
            let items: Vec<serde_json::Value> = ours
                .iter()
                .map(|(name, eps, sens, exact, _)| json!({"name": name, "epsilon": eps, "sensitivity": sens, "exact": exact}))
                .collect();
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/dp_reference.py");
            let out = std::process::Command::new(python)
                .arg(&script)
                .arg(json!({"items": items, "releases": args.releases}).to_string())
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "the diffprivlib reference failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            for (name, _, _, _, mae) in &ours {
                let t = theirs[name.as_str()].as_f64().unwrap_or(f64::NAN);
                println!(
                    "{name}: mean |error| ours {mae:.3}, diffprivlib {t:.3} (ours / theirs {:.3})",
                    mae / t
                );
            }
        }
    }
    Ok(())
}
