//! `consentric recommend evaluate`: the offline harness, with `implicit` side by side.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use consentric_personalize::movielens::{parse_inter, Dataset};
use consentric_personalize::{
    evaluate as score, split, Als, AlsParams, ItemKnn, KnnParams, Metrics, Popularity, Recommender,
    Sparse, Split,
};
use serde::Serialize;

use crate::cli::RecommendEvaluateArgs;

/// One model's row of the report.
#[derive(Debug, Serialize)]
struct Row {
    model: String,
    metrics: Metrics,
    /// NDCG of each seed (ALS rows).
    ndcg_per_seed: Vec<f64>,
    fit_seconds: f64,
    /// Median seconds per ALS iteration (ALS rows).
    iteration_seconds: Option<f64>,
}

pub fn evaluate(args: &RecommendEvaluateArgs) -> anyhow::Result<()> {
    let data = load(&args.data, args.min_rating)?;
    let how = match args.split.as_str() {
        "time" => Split::Time {
            test_fraction: args.test_fraction,
        },
        "last" => Split::LeaveLastOut,
        other => bail!("--split must be `time` or `last`, not `{other}`"),
    };
    let (users, items) = (data.users.len(), data.items.len());
    let divided = split(&data.interactions, users, how);
    let train = Sparse::of(&divided.train, users, items);
    let k = args.k;
    let mut rows = Vec::new();

    let start = Instant::now();
    let pop = Popularity::train(&train);
    let fit = start.elapsed().as_secs_f64();
    rows.push(row(
        "popularity",
        score(|_, s, k| pop.recommend(s, k), &train, &divided.test, k),
        fit,
    ));

    let start = Instant::now();
    let knn = ItemKnn::train(
        &train,
        KnnParams {
            neighbours: args.neighbours,
            shrinkage: args.shrinkage,
        },
    );
    let fit = start.elapsed().as_secs_f64();
    rows.push(row(
        "item-kNN",
        score(|_, s, k| knn.recommend(s, k), &train, &divided.test, k),
        fit,
    ));

    let params = |seed| AlsParams {
        factors: args.factors,
        regularization: args.regularization,
        alpha: args.alpha,
        iterations: args.iterations,
        cg_steps: args.cg_steps,
        seed,
    };
    let seeds: Vec<u64> = (0..args.seeds.max(1)).map(|i| args.seed + i).collect();
    let mut runs = Vec::new();
    for &seed in &seeds {
        let mut times = Vec::new();
        let start = Instant::now();
        let als = Als::train(&train, params(seed), |_, d| times.push(d));
        let fit = start.elapsed().as_secs_f64();
        let m = score(
            |u, s, k| als.recommend_for(als.user(u), s, k),
            &train,
            &divided.test,
            k,
        );
        runs.push((m, fit, times));
    }
    rows.push(averaged("ALS (consentric)", runs));

    if let Some(python) = &args.reference {
        let mut runs = Vec::new();
        for &seed in &seeds {
            runs.push(implicit_run(
                python,
                &divided.train,
                users,
                items,
                &divided.test,
                &params(seed),
                k,
                &train,
            )?);
        }
        rows.push(averaged("ALS (implicit)", runs));
    }

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "data": args.data, "users": users, "items": items,
                "interactions": data.interactions.len(), "train": divided.train.len(),
                "split": args.split, "k": k, "als": params(args.seed), "seeds": seeds.len(),
                "models": rows,
            }))?
        );
        return Ok(());
    }
    println!(
        "{} users, {} items, {} interactions ({} train); split {}; k = {k}; ALS: {} factors, λ {}, α {}, {} iterations, {} CG steps, {} seed(s)",
        users, items, data.interactions.len(), divided.train.len(), args.split,
        args.factors, args.regularization, args.alpha, args.iterations, args.cg_steps, seeds.len()
    );
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "model", "prec@k", "recall@k", "ndcg@k", "coverage", "fit s", "s/iteration"
    );
    for r in &rows {
        println!(
            "{:<18} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.3} {:>12}",
            r.model,
            r.metrics.precision,
            r.metrics.recall,
            r.metrics.ndcg,
            r.metrics.coverage,
            r.fit_seconds,
            r.iteration_seconds
                .map_or("-".to_owned(), |s| format!("{s:.4}"))
        );
    }
    if args.reference.is_none() {
        println!("(implicit skipped: pass --reference \"$(scripts/implicit-venv.sh)\")");
    }
    Ok(())
}

fn load(path: &Path, min_rating: f32) -> anyhow::Result<Dataset> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "Cannot read {} (fetch MovieLens 100k with scripts/movielens.sh)",
            path.display()
        )
    })?;
    let mut data = parse_inter(&text)
        .with_context(|| format!("{} is not a RecBole .inter file", path.display()))?;
    data.interactions.retain(|i| i.weight >= min_rating);
    Ok(data)
}

fn row(model: &str, metrics: Metrics, fit_seconds: f64) -> Row {
    Row {
        model: model.to_owned(),
        metrics,
        ndcg_per_seed: Vec::new(),
        fit_seconds,
        iteration_seconds: None,
    }
}

/// Metrics averaged over seeds; iteration time is the median over every iteration of every seed.
fn averaged(model: &str, runs: Vec<(Metrics, f64, Vec<Duration>)>) -> Row {
    let n = runs.len().max(1) as f64;
    let mean = |f: fn(&Metrics) -> f64| runs.iter().map(|r| f(&r.0)).sum::<f64>() / n;
    let mut its: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.2.iter().map(Duration::as_secs_f64))
        .collect();
    its.sort_by(f64::total_cmp);
    let first = runs.first().map(|r| r.0);
    Row {
        model: model.to_owned(),
        metrics: Metrics {
            k: first.map_or(0, |m| m.k),
            users: first.map_or(0, |m| m.users),
            precision: mean(|m| m.precision),
            recall: mean(|m| m.recall),
            ndcg: mean(|m| m.ndcg),
            coverage: mean(|m| m.coverage),
        },
        ndcg_per_seed: runs.iter().map(|r| r.0.ndcg).collect(),
        fit_seconds: runs.iter().map(|r| r.1).sum::<f64>() / n,
        iteration_seconds: its.get(its.len() / 2).copied(),
    }
}

/// Trains `implicit` on the same training interactions; its lists scored by our metrics.
#[allow(clippy::too_many_arguments)]
fn implicit_run(
    python: &Path,
    train: &[consentric_personalize::Interaction],
    users: usize,
    items: usize,
    test: &[Vec<u32>],
    p: &AlsParams,
    k: usize,
    train_matrix: &Sparse,
) -> anyhow::Result<(Metrics, f64, Vec<Duration>)> {
    let mut file = tempfile::NamedTempFile::new()?;
    {
        let mut w = std::io::BufWriter::new(&mut file);
        for i in train {
            writeln!(w, "{}\t{}\t{}", i.user, i.item, i.weight)?;
        }
    }
    let to_rank: Vec<usize> = (0..users).filter(|&u| !test[u].is_empty()).collect();
    let request = serde_json::json!({
        "train": file.path(), "users": users, "items": items,
        "factors": p.factors, "regularization": p.regularization, "alpha": p.alpha,
        "iterations": p.iterations, "cg_steps": p.cg_steps, "seed": p.seed, "k": k,
        "users_to_rank": to_rank,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/implicit_reference.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(request.to_string())
        .output()
        .with_context(|| format!("Cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "the implicit reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("the implicit reference printed no JSON")?;
    let lists = &v["lists"];
    let m = score(
        |u, _, _| {
            lists[u.to_string()]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.as_u64())
                        .map(|i| (i as u32, 0.0))
                        .collect()
                })
                .unwrap_or_default()
        },
        train_matrix,
        test,
        k,
    );
    let times = v["iteration_seconds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_f64)
                .map(Duration::from_secs_f64)
                .collect()
        })
        .unwrap_or_default();
    Ok((m, v["fit_seconds"].as_f64().unwrap_or(0.0), times))
}
