//! An IAB TCF v2.2 TC string (from events' consent objects): never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        if let Ok(tc) = consentric_policy::tcf::decode(raw) {
            let _ = format!("{tc:?}");
        }
    }
});
