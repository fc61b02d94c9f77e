use std::sync::Arc;
use std::time::Instant;

use consentric_engine::import::{ImportFormat, ImportOptions};
use consentric_engine::{Engine, Role, Scope, Settings};

use crate::cli::DemoArgs;

/// CDNOW master (Fader & Hardie's CD-store purchases, shipped in the `lifetimes` package
/// under MIT), compiled in so the demo needs no files.
pub(crate) const CDNOW_MASTER: &[u8] = include_bytes!("../../../../data/cdnow/CDNOW_master.txt");

/// The purposes the demo treats CDNOW's customers as having granted, so that lifecycle
/// analytics (analytics) and per-customer scores (personalization) have a basis.
const DEMO_CONSENT: [&str; 2] = ["analytics", "personalization"];

/// The last day of CDNOW's data.
const CDNOW_END: (i32, u32, u32) = (1998, 6, 30);

/// Days that move CDNOW's last day to today. The demo's data is shifted, not its clock: a
/// clock frozen in 1998 would expire one-time codes, deadlines and sessions at once, while
/// shifted data lets retention, stage recompute, segments, decisions and analytics all agree
/// with the time everything else runs on. MovieLens moves by the same days, so the two data
/// sets keep their places in one history.
fn shift_days(today: chrono::NaiveDate) -> i64 {
    let (y, m, d) = CDNOW_END;
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .map(|end| (today - end).num_days())
        .unwrap_or(0)
}

pub fn run(engine: Arc<Engine>, settings: &Settings, args: &DemoArgs) -> anyhow::Result<()> {
    let shift = shift_days(engine.now().date_naive());
    println!("Importing the CDNOW master data set (69,659 purchases by 23,570 customers),");
    println!("each customer granting {DEMO_CONSENT:?} with their first purchase,");
    println!(
        "its dates (1997-01-01 to 1998-06-30) moved {shift} days later so that it ends today…"
    );
    let started = Instant::now();
    let consent: Vec<String> = DEMO_CONSENT.iter().map(|p| (*p).to_owned()).collect();
    let options = ImportOptions {
        consent: &consent,
        shift_days: shift,
    };
    let summary = super::import::with_progress(
        &engine,
        CDNOW_MASTER,
        ImportFormat::Cdnow,
        &options,
        Some(CDNOW_MASTER.len() as u64),
        false,
    )?;
    super::import::print_summary(&summary, started.elapsed());
    if summary.duplicates > 0 {
        println!(
            "(the store held these events already, moved to end on the day it first imported them;"
        );
        println!(" for data that ends today, give the demo a fresh --data-dir)");
    }
    let (events, profiles) = engine.totals()?;
    println!("The store now holds {events} events in {profiles} profiles.");
    let started = Instant::now();
    let fit = engine.lifecycle_fit("demo")?;
    let recomputed = engine.lifecycle_recompute("demo")?;
    println!(
        "Lifecycle: value models fitted on {} customers (calibration ending {}), {} customers placed in stages, in {:.2} s:",
        fit.customers,
        fit.calibration_end,
        recomputed.placed,
        started.elapsed().as_secs_f64()
    );
    for m in &fit.models {
        let params: Vec<String> = m
            .params
            .iter()
            .map(|(k, v)| format!("{k} {v:.3}"))
            .collect();
        println!("  {:<12} {}", m.model, params.join(", "));
    }
    let summary = engine.lifecycle_summary("demo")?;
    let funnel: Vec<String> = summary
        .funnel
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!("  stages today: {}", funnel.join(", "));
    personalisation(&engine, shift)?;

    let admin = engine.create_key(Scope::Admin, Some("demo admin"))?;
    // The guide sends as analytics-node does: a backend's secret server key. A web page would
    // get a browser key (`keys create --scope write`), held to what a visitor may claim.
    let write = engine.create_key_of_kind(
        Scope::Write,
        consentric_engine::KeyKind::Server,
        Some("demo server write"),
    )?;
    // An analyst with a privacy budget of ρ = 2 on the customers (four releases at ε = 1).
    let analyst = engine.create_key(Scope::Analyst, Some("demo analyst"))?;
    engine.grant_budget(&analyst.key_id, "customers", 2.0, "demo")?;
    let keys = Keys {
        admin: admin.secret().to_owned(),
        write: write.secret().to_owned(),
        analyst: analyst.secret().to_owned(),
        operators: console_operators(&engine)?,
    };
    if args.no_serve {
        print_guide(&engine, &settings.server.listen, &keys);
        return Ok(());
    }
    let guide_engine = engine.clone();
    super::serve::runtime()?.block_on(super::serve::serve(engine, settings, move |addr| {
        print_guide(&guide_engine, &addr.to_string(), &keys);
    }))
}

/// Where `scripts/movielens.sh` caches MovieLens 100k (its terms forbid shipping it).
const MOVIELENS: &str = "target/movielens/ml-100k.inter";

/// CDNOW has no products, so recommendations need MovieLens: fetched on first use with
/// `scripts/movielens.sh` (pip download), imported as product reviews by customers granting
/// personalisation and e-mail marketing, then the recommenders are trained. Without it (no
/// network, no script) decisions still work, with actions but no items.
fn personalisation(engine: &Engine, shift_days: i64) -> anyhow::Result<()> {
    let path = std::path::Path::new(MOVIELENS);
    if !path.exists() && std::path::Path::new("scripts/movielens.sh").exists() {
        println!("Fetching MovieLens 100k for recommendations (scripts/movielens.sh)…");
        let fetched = std::process::Command::new("scripts/movielens.sh")
            .stdout(std::process::Stdio::null())
            .status();
        if !fetched.is_ok_and(|s| s.success()) {
            println!("  could not fetch it; decisions will choose actions but no items.");
        }
    }
    if path.exists() {
        println!("Importing MovieLens 100k (100,000 ratings of 1,682 films by 943 users, as users ml-1…ml-943),");
        println!("each user granting {MOVIELENS_CONSENT:?}…");
        let started = Instant::now();
        let consent: Vec<String> = MOVIELENS_CONSENT.iter().map(|p| (*p).to_owned()).collect();
        let file = std::fs::File::open(path)?;
        let size = file.metadata().ok().map(|m| m.len());
        let options = ImportOptions {
            consent: &consent,
            shift_days,
        };
        let summary = super::import::with_progress(
            engine,
            std::io::BufReader::new(file),
            ImportFormat::MovieLens,
            &options,
            size,
            false,
        )?;
        super::import::print_summary(&summary, started.elapsed());
    }
    let started = Instant::now();
    let report = engine.train_recommenders("demo")?;
    print!("Recommenders ({:.2} s): ", started.elapsed().as_secs_f64());
    super::decide::print_train(&report);
    Ok(())
}

/// What the demo's MovieLens users grant.
const MOVIELENS_CONSENT: [&str; 3] = ["analytics", "personalization", "marketing.email"];

/// The secrets the demo prints once.
struct Keys {
    admin: String,
    write: String,
    analyst: String,
    /// One console operator per role, named after it, with a fresh password each run.
    operators: Vec<(&'static str, String)>,
}

/// An operator per role, named after it, each with a new random password (a data directory
/// used before keeps its operators, with the new passwords).
fn console_operators(engine: &Engine) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    for role in [Role::Admin, Role::Dpo, Role::Marketer, Role::Analyst] {
        let mut secret = [0u8; 9];
        getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
        let password = hex::encode(secret);
        match engine.add_operator(role.as_str(), role, &password, "demo") {
            Err(consentric_engine::EngineError::Conflict(_)) => {
                engine.set_operator_password(role.as_str(), &password, "demo")?
            }
            Ok(()) if role == Role::Analyst => {
                // The analyst operator's own budget, as the analyst key's.
                engine.grant_budget("operator:analyst", "customers", 2.0, "demo")?;
            }
            other => other?,
        }
        out.push((role.as_str(), password));
    }
    Ok(out)
}

fn print_guide(engine: &Engine, addr: &str, keys: &Keys) {
    let (admin, write, analyst) = (&keys.admin, &keys.write, &keys.analyst);
    let backend = format!("{:?}", engine.backend()).to_lowercase();
    println!();
    println!("Consentric is serving on http://{addr} ({backend} store). Try:");
    println!();
    println!("  # one CDNOW customer's profile: counters, identities, traits");
    println!("  curl -s -H 'Authorization: Bearer {admin}' http://{addr}/v1/profiles/00001 | jq");
    println!("  # their purchases, newest first");
    println!("  curl -s -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/profiles/00001/events?limit=5' | jq");
    println!("  # the purposes a consent banner offers, and what personalisation may see (granted at import)");
    println!("  curl -s http://{addr}/v1/purposes | jq '.purposes[].id'");
    println!("  curl -s -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/profiles/00001/view?purpose=personalization' | jq");
    println!("  # where customer 00001 stands: stage, history, RFM, P(alive), CLV, churn risk");
    println!("  curl -s -H 'Authorization: Bearer {admin}' http://{addr}/v1/customers/00001/lifecycle | jq");
    println!("  # the funnel, cohort retention and model parameters");
    println!("  curl -s -H 'Authorization: Bearer {admin}' http://{addr}/v1/lifecycle/summary | jq '.funnel, .models'");
    println!("  # what to show MovieLens user 1 and what to do next, with the reasons (a preview: nothing recorded)");
    println!("  curl -s -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/decisions/user_id:ml-1?placement=home&limit=5' | jq");
    println!("  # decide for a CDNOW customer (recorded against caps); they consented to personalisation but not e-mail,");
    println!("  # so no e-mail action is chosen");
    println!("  curl -s -X POST -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/decisions/00001' | jq '.action, .explanation'");
    println!("  # the decisions recorded for them, and why (their decision log)");
    println!("  curl -s -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/profiles/00001/decisions' | jq");
    println!("  # define a segment and size it; clusters k-means proposes");
    println!(
        "  curl -s -X PUT -H 'Authorization: Bearer {admin}' http://{addr}/v1/segments/loyal \\"
    );
    println!("       -d '{{\"all\":[{{\"field\":\"orders\",\"op\":\"gte\",\"value\":5}}]}}' | jq");
    println!("  curl -s -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/segments/loyal?limit=3' | jq");
    println!(
        "  curl -s -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/segments/proposals' | jq"
    );
    println!("  # for an analyst key, differentially private: customers per stage now (the funnel above,");
    println!(
        "  # give or take the interval), then how many ever entered each stage; the budget left"
    );
    println!("  curl -s -H 'Authorization: Bearer {analyst}' http://{addr}/v1/analytics/query \\");
    println!("       -d '{{\"query\":\"histogram\",\"by\":\"stage\",\"epsilon\":0.5}}' | jq '.bins, .interval95'");
    println!("  curl -s -H 'Authorization: Bearer {analyst}' http://{addr}/v1/analytics/query \\");
    println!("       -d '{{\"query\":\"funnel\",\"epsilon\":0.5}}' | jq '.funnel, .budget'");
    println!("  # the median customer's revenue, chosen by the exponential mechanism");
    println!("  curl -s -H 'Authorization: Bearer {analyst}' http://{addr}/v1/analytics/query \\");
    println!("       -d '{{\"query\":\"quantile\",\"measure\":\"revenue\",\"bounds\":[0,500],\"epsilon\":0.5}}' | jq .value");
    println!("  # send an event the way analytics-node does (write key as Basic user name)");
    println!(
        "  curl -s -u '{write}:' -H 'Content-Type: application/json' http://{addr}/v1/identify \\"
    );
    println!("       -d '{{\"userId\":\"00001\",\"traits\":{{\"email\":\"ada@example.com\"}}}}'");
    println!("  # everything held about them (art. 15/20), as JSON or a ZIP of CSV files");
    println!("  curl -s -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/profiles/00002/export' | jq .profile");
    println!("  curl -s -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/profiles/00002/export?format=zip' -o 00002.zip");
    println!(
        "  # erase them: their key is destroyed, their rows deleted, a signed receipt returned"
    );
    println!("  curl -s -X DELETE -H 'Authorization: Bearer {admin}' http://{addr}/v1/profiles/00002 | jq");
    println!("  # operations");
    println!("  curl -s http://{addr}/metrics; curl -s http://{addr}/openapi.json | jq .paths");
    println!();
    println!("The console: http://{addr}/console — log in as (the analyst has ρ = 2 of their own)");
    for (name, password) in &keys.operators {
        println!("  {name:<9} password {password}");
    }
    println!();
    println!("Admin key: {admin}");
    println!("Write key (server): {write}");
    println!("Analyst key: {analyst} (privacy budget ρ = 2 on `customers`)");
    println!(
        "(all are shown only now; make more with `consentric keys create --scope admin|write|analyst`)"
    );
    println!("Stop with Ctrl-C.");
}
