//! The console's operators: log-in with a password and, when on, a TOTP code used once;
//! lock-out after repeated failures; disabled accounts and new passwords end sessions.

use chrono::Duration;
use consentric_engine::{Clock, EngineError, Role, MAX_FAILED_LOGINS};
use consentric_testkit::parity_test;
use consentric_vault::totp;

use crate::support::{engine_at, noon};

const PASSWORD: &str = "a long enough password";

parity_test!(
    an_operator_logs_in_and_repeated_failures_lock_the_account,
    |db| {
        let (engine, clock) = engine_at(&db, noon());
        engine
            .add_operator("mia", Role::Marketer, PASSWORD, "cli")
            .expect("added");
        assert!(matches!(
            engine.add_operator("mia", Role::Admin, PASSWORD, "cli"),
            Err(EngineError::Conflict(_))
        ));
        assert!(matches!(
            engine.add_operator("Mia!", Role::Admin, PASSWORD, "cli"),
            Err(EngineError::Invalid { .. })
        ));
        assert!(matches!(
            engine.add_operator("leo", Role::Admin, "short", "cli"),
            Err(EngineError::Invalid { .. })
        ));
        let (session, token) = engine.operator_log_in("mia", PASSWORD, None).expect("in");
        assert_eq!(session.role(), Role::Marketer);
        assert_eq!(engine.operator_session(&token).expect("live").name(), "mia");
        assert!(engine.operator_log_in("nobody", PASSWORD, None).is_err());

        for _ in 0..MAX_FAILED_LOGINS {
            assert!(engine
                .operator_log_in("mia", "wrong password!", None)
                .is_err());
        }
        assert!(
            engine.operator_log_in("mia", PASSWORD, None).is_err(),
            "locked: even the right password is refused"
        );
        clock.set(clock.now() + Duration::minutes(consentric_engine::LOCK_MINUTES + 1));
        assert!(engine.operator_log_in("mia", PASSWORD, None).is_ok());

        // A new password and a disabled account end every session.
        engine
            .set_operator_password("mia", "another long password", "cli")
            .expect("set");
        assert!(engine.operator_session(&token).is_err());
        let (_, token) = engine
            .operator_log_in("mia", "another long password", None)
            .expect("in");
        engine
            .set_operator_disabled("mia", true, "cli")
            .expect("off");
        assert!(engine.operator_session(&token).is_err());
        assert!(engine
            .operator_log_in("mia", "another long password", None)
            .is_err());
    }
);

parity_test!(with_totp_a_log_in_needs_a_fresh_code, |db| {
    let (engine, clock) = engine_at(&db, noon());
    engine
        .add_operator("ada", Role::Admin, PASSWORD, "cli")
        .expect("added");
    let (b32, uri) = engine.enable_operator_totp("ada", "cli").expect("totp");
    assert!(
        uri.starts_with("otpauth://totp/Consentric:ada?secret="),
        "{uri}"
    );
    let secret = base32_decode(&b32);
    assert!(
        engine.operator_log_in("ada", PASSWORD, None).is_err(),
        "a code is needed"
    );
    let code = totp::code_at(&secret, clock.now().timestamp(), 6);
    assert!(engine
        .operator_log_in("ada", "wrong password!", Some(&code))
        .is_err());
    engine
        .operator_log_in("ada", PASSWORD, Some(&code))
        .expect("password and code");
    assert!(
        engine
            .operator_log_in("ada", PASSWORD, Some(&code))
            .is_err(),
        "a code is good once"
    );
    clock.set(clock.now() + Duration::seconds(30));
    let next = totp::code_at(&secret, clock.now().timestamp(), 6);
    engine
        .operator_log_in("ada", PASSWORD, Some(&next))
        .expect("the next code");
    let listed = engine.operators().expect("list");
    assert!(listed[0].totp && listed[0].name == "ada");
});

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.chars() {
        buffer = (buffer << 5) | ALPHABET.find(c).expect("base32") as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}
