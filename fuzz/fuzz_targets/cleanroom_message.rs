//! A partner's clean-room message as the host decodes it: blinded points (base64 Ristretto
//! encodings, re-blinded), a Paillier modulus and ciphertexts, a masked sum. Never a panic:
//! a hostile partner gets a protocol error.
#![no_main]

use base64::Engine as _;
use consentric_pets::paillier::PublicKey;
use consentric_pets::psi::{Blinded, Blinder};
use libfuzzer_sys::fuzz_target;

fn points(v: &serde_json::Value, key: &str) -> Vec<Blinded> {
    v.get(key)
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .filter_map(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(blinder) = Blinder::random() {
        for key in ["blinded", "double_blinded"] {
            let _ = blinder.reblind(&points(&msg, key));
        }
    }
    let modulus = msg
        .get("paillier_modulus")
        .and_then(|m| m.as_str())
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
    if let Some(Ok(pk)) = modulus.map(|m| PublicKey::from_bytes(&m)) {
        let values = msg
            .get("values")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten();
        let mut picked = Vec::new();
        for v in values.filter_map(|v| v.as_str()) {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(v) {
                if let Ok(c) = pk.ciphertext(&bytes) {
                    picked.push(c);
                }
            }
        }
        let _ = pk.sum(&picked);
    }
    if let Some(s) = msg.get("masked_sum").and_then(|m| m.as_str()) {
        // Parsed as a decimal big integer, as the host does.
        let _ = s.parse::<dashu::integer::UBig>();
    }
});
