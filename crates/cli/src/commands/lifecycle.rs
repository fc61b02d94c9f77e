//! `consentric lifecycle fit|recompute|report|show`.

use anyhow::Context;
use consentric_engine::{Engine, LifecycleSummary, ProfileRef};

use crate::cli::LifecycleCommand;

pub fn run(engine: &Engine, cmd: LifecycleCommand) -> anyhow::Result<()> {
    match cmd {
        LifecycleCommand::Fit => {
            let report = engine.lifecycle_fit("cli")?;
            println!(
                "fitted on {} customers (calibration ending {}); {} left out without a basis for analytics",
                report.customers, report.calibration_end, report.left_out
            );
            for m in &report.models {
                let params: Vec<String> = m
                    .params
                    .iter()
                    .map(|(k, v)| match m.std_errors.get(k).copied().flatten() {
                        Some(se) => format!("{k} = {v:.4} (se {se:.4})"),
                        None => format!("{k} = {v:.4}"),
                    })
                    .collect();
                println!(
                    "  {:<12} {}  LL {:.2}  [{} customers, {:.1} ms]",
                    m.model,
                    params.join(", "),
                    m.ln_likelihood,
                    m.customers,
                    m.seconds * 1000.0
                );
            }
            let recomputed = engine.lifecycle_recompute("cli")?;
            println!(
                "stages recomputed with the new scores: {} placed, {} changed, {} left out",
                recomputed.placed, recomputed.changed, recomputed.left_out
            );
        }
        LifecycleCommand::Recompute => {
            let r = engine.lifecycle_recompute("cli")?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        LifecycleCommand::Report { json } => {
            let summary = engine.lifecycle_summary("cli")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print_report(&summary);
            }
        }
        LifecycleCommand::Show { who } => {
            let view = engine
                .customer_lifecycle(&ProfileRef::parse(&who)?, "cli")
                .with_context(|| format!("No lifecycle for {who}"))?;
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
    }
    Ok(())
}

fn print_report(s: &LifecycleSummary) {
    println!(
        "{} customers with a basis for {}; {} left out",
        s.customers, s.purpose, s.left_out
    );
    println!("\nfunnel (customers per stage now):");
    for (stage, n) in &s.funnel {
        println!("  {:<12} {n:>7}", stage.as_str());
    }
    println!("\ncohort retention (share of each cohort buying k months after its first month):");
    for row in &s.cohorts {
        let shares: Vec<String> = row
            .active
            .iter()
            .take(18)
            .map(|a| format!("{:>4.0}%", 100.0 * *a as f64 / row.size.max(1) as f64))
            .collect();
        println!("  {} ({:>6}) {}", row.cohort, row.size, shares.join(""));
    }
    println!("\nmodels:");
    if s.models.is_empty() {
        println!("  none fitted yet: run `consentric lifecycle fit`");
    }
    for m in &s.models {
        let params: Vec<String> = m
            .params
            .iter()
            .map(|(k, v)| format!("{k} = {v:.4}"))
            .collect();
        println!(
            "  {:<12} {}  LL {:.2}  (fitted {}, calibration ending {})",
            m.model,
            params.join(", "),
            m.ln_likelihood,
            m.fitted_at,
            m.calibration_end
        );
    }
}
