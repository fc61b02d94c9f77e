//! A `/v1/batch` body: never a panic; every event of an accepted batch is dated within
//! the accepted range, however its times and `sentAt` were skewed.
#![no_main]

use consentric_model::{earliest_time, parse_batch, Envelope, DEFAULT_FUTURE_TOLERANCE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let received = chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_000);
    let env = Envelope::new(received, "f");
    if let Ok(batch) = parse_batch(data, &env) {
        for event in &batch.events {
            assert!(event.timestamp() >= earliest_time());
            assert!(event.timestamp() <= received + DEFAULT_FUTURE_TOLERANCE);
        }
    }
});
