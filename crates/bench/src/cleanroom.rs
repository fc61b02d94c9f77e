//! `consentric-bench cleanroom`: the clean room's protocol end to end on synthetic e-mail
//! sets (ours `shopper0..n`, theirs overlapping by `overlap`), both sides in this process with
//! the same pets code the engine runs: cardinality PSI, Paillier's rates, and
//! intersection-sum; with `--reference`, OpenMined's PSI and python-paillier on the same sets.

use std::io::Write;
use std::time::Instant;

use consentric_pets::paillier::{random_below, SecretKey};
use consentric_pets::psi::{self, Blinder, IdKind};
use dashu::integer::UBig;
use serde_json::json;

use crate::args::CleanroomArgs;

fn emails(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .filter_map(|i| IdKind::Email.normalise(&format!("shopper{i}@example.org")))
        .collect()
}

/// Operations per second of `f`, run on one core for about `seconds`.
fn rate(seconds: f64, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let (t, mut done) = (Instant::now(), 0u32);
    while t.elapsed().as_secs_f64() < seconds {
        f()?;
        done += 1;
    }
    Ok(f64::from(done) / t.elapsed().as_secs_f64())
}

pub fn run(args: &CleanroomArgs) -> anyhow::Result<()> {
    let (n, k) = (args.n, args.overlap.min(args.n));
    println!(
        "consentric-bench cleanroom: release={}, {} × {} identifiers, overlap {}",
        !cfg!(debug_assertions),
        n,
        n,
        k
    );
    let ours = emails(0..n);
    let theirs = emails(n - k..2 * n - k);

    // Cardinality PSI: both sides' steps, in order.
    let t = Instant::now();
    let (host, guest) = (Blinder::random()?, Blinder::random()?);
    let a = psi::shuffled(host.blind(IdKind::Email, &ours));
    let ab = psi::shuffled(guest.reblind(&a)?);
    let b = psi::shuffled(guest.blind(IdKind::Email, &theirs));
    let ba = host.reblind(&b)?;
    let cardinality = psi::cardinality(&ab, &ba);
    let psi_seconds = t.elapsed().as_secs_f64();
    anyhow::ensure!(cardinality == k, "cardinality {cardinality}, expected {k}");
    println!("cardinality PSI: {psi_seconds:.2} s end to end (cardinality {cardinality})");

    // Paillier.
    let t = Instant::now();
    let key = SecretKey::generate(2048)?;
    println!(
        "Paillier 2048-bit key generation: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let pk = key.public().clone();
    // The key holder encrypts in runs (as a session does): 2,000 values at a time, one core.
    let batch: Vec<u64> = (0..2000).collect();
    let t = Instant::now();
    let mut runs = 0u32;
    while t.elapsed().as_secs_f64() < 3.0 {
        let one_core =
            std::thread::scope(|s| s.spawn(|| key.encrypt_many_on_one_core(&batch)).join());
        one_core.map_err(|_| anyhow::anyhow!("encryption thread"))??;
        runs += 1;
    }
    let holder = f64::from(runs) * batch.len() as f64 / t.elapsed().as_secs_f64();
    let mut v = 0u64;
    let public = rate(3.0, || {
        v += 1;
        pk.encrypt(&UBig::from(v))?;
        Ok(())
    })?;
    let c = key.encrypt(&UBig::from(12_345u32))?;
    let decrypt = rate(3.0, || {
        anyhow::ensure!(key.decrypt(&c) == UBig::from(12_345u32));
        Ok(())
    })?;
    println!(
        "Paillier 2048-bit, one core: encrypt {holder:.0}/s (key holder: CRT, fixed-base short exponent), {public:.0}/s (public key, full r^n), decrypt {decrypt:.0}/s"
    );

    // Intersection-sum: the guest's values are i cents for shopper i.
    let values: Vec<u64> = (n - k..2 * n - k).map(|i| i as u64).collect();
    let t = Instant::now();
    let (host, guest) = (Blinder::random()?, Blinder::random()?);
    let a = psi::shuffled(host.blind(IdKind::Email, &ours));
    let ab = psi::shuffled(guest.reblind(&a)?);
    let key = SecretKey::generate(2048)?;
    let mut pairs: Vec<(psi::Blinded, u64)> = guest
        .blind(IdKind::Email, &theirs)
        .into_iter()
        .zip(values.iter().copied())
        .collect();
    pairs.sort_unstable_by_key(|p| p.0);
    let (b, vals): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
    let encrypted = key.encrypt_many(&vals)?;
    let t_guest = t.elapsed().as_secs_f64();
    // The host: blind theirs again, add the matched ciphertexts, mask, re-randomise.
    let ba = host.reblind(&b)?;
    let mine: std::collections::HashSet<&psi::Blinded> = ab.iter().collect();
    let pk = key.public();
    let matched: Vec<_> = ba
        .iter()
        .zip(&encrypted)
        .filter(|(p, _)| mine.contains(p))
        .map(|(_, c)| c.clone())
        .collect();
    let mask = random_below(pk.modulus())?;
    let masked = pk.rerandomize(&pk.add(&pk.sum(&matched), &pk.encrypt(&mask)?))?;
    let opened = key.decrypt(&masked);
    let n_mod = pk.modulus();
    let sum = (opened + n_mod - &mask) % n_mod;
    let sum_seconds = t.elapsed().as_secs_f64();
    let want: u64 = (n - k..n).map(|i| i as u64).sum();
    anyhow::ensure!(sum == UBig::from(want), "sum {sum}, expected {want}");
    println!(
        "intersection-sum: {sum_seconds:.2} s end to end ({:.2} s of it the guest's blinding, key and {} encryptions; sum {sum}, cardinality {})",
        t_guest,
        vals.len(),
        matched.len()
    );

    match &args.reference {
        None => println!("(references skipped: pass --reference \"$(scripts/cleanroom-venv.sh)\")"),
        Some(python) => {
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/cleanroom_reference.py");
            let mut child = std::process::Command::new(python)
                .arg(&script)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                writeln!(stdin, "{}", json!({"n": n, "overlap": k, "seconds": 5}))?;
            }
            let out = child.wait_with_output()?;
            anyhow::ensure!(out.status.success(), "the reference failed");
            let theirs: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let their_psi = theirs["psi_seconds"].as_f64().unwrap_or(f64::NAN);
            let their_enc = theirs["encrypt_per_s"].as_f64().unwrap_or(f64::NAN);
            println!(
                "OpenMined PSI: {their_psi:.2} s (cardinality {}); ours is {:.2}× faster",
                theirs["cardinality"],
                their_psi / psi_seconds
            );
            println!(
                "phe encrypt: {their_enc:.1}/s; ours {:.1}× (key holder), {:.1}× (public key)",
                holder / their_enc,
                public / their_enc
            );
        }
    }
    Ok(())
}
