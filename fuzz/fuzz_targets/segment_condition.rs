//! A segment definition's condition (it comes over HTTP): never a panic; what parses
//! round-trips through its JSON and can be evaluated.
#![no_main]

use consentric_personalize::segments::Condition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(condition) = Condition::parse(&json) {
        let again = Condition::parse(&condition.to_json()).expect("its own JSON parses");
        assert_eq!(again.to_json(), condition.to_json());
        let _ = condition.holds(&|_| Some(serde_json::json!(1)));
        let _ = condition.holds(&|_| None);
    }
});
