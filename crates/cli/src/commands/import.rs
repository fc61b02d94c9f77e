use std::fs::File;
use std::io::Read;
use std::time::Instant;

use anyhow::Context;
use consentric_engine::import::{import_with_options, ImportFormat, ImportOptions, ImportSummary};
use consentric_engine::Engine;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ImportArgs;

pub fn run(engine: &Engine, args: &ImportArgs) -> anyhow::Result<()> {
    let format = ImportFormat::parse(&args.format)?;
    let (reader, size): (Box<dyn Read>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = File::open(&args.file)
            .with_context(|| format!("Failed to open {}", args.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let started = Instant::now();
    let options = ImportOptions {
        consent: &args.consent,
        shift_days: args.shift_days,
    };
    let summary = with_progress(engine, reader, format, &options, size, args.quiet)?;
    print_summary(&summary, started.elapsed());
    // A script that imports must be able to tell that something was left out.
    if summary.rejected > 0 {
        anyhow::bail!(
            "{} of {} lines were rejected (the first {} listed above); the other events are stored",
            summary.rejected,
            summary.lines,
            summary.rejections.len()
        );
    }
    Ok(())
}

/// Imports with a byte progress bar (hidden when `quiet` or not a terminal).
pub fn with_progress(
    engine: &Engine,
    reader: impl Read,
    format: ImportFormat,
    options: &ImportOptions<'_>,
    size: Option<u64>,
    quiet: bool,
) -> anyhow::Result<ImportSummary> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        match size {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        }
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = import_with_options(engine, reader, format, options, &mut |bytes| {
        bar.set_position(bytes)
    })
    .context("Import failed; the batches before the failure are stored")?;
    bar.finish_and_clear();
    Ok(summary)
}

pub fn print_summary(s: &ImportSummary, took: std::time::Duration) {
    let secs = took.as_secs_f64();
    println!("imported in {secs:.2} s");
    println!("  lines read         {}", s.lines);
    println!("  events stored      {}", s.accepted);
    println!("  already stored     {}", s.duplicates);
    println!("  lines rejected     {}", s.rejected);
    if secs > 0.0 {
        println!(
            "  events/s           {:.0}",
            (s.accepted + s.duplicates) as f64 / secs
        );
    }
    if let Some(rss) = super::peak_rss_bytes() {
        println!("  peak RSS           {:.1} MB", rss as f64 / 1_048_576.0);
    }
    for (line, why) in &s.rejections {
        println!("  rejected line {line}: {why}");
    }
}
