//! Versioned schema migrations. Each version has one DDL script per backend (their types and
//! key generation differ; SQLite's keyed tables are `WITHOUT ROWID`, so a look-up or update by
//! key touches one B-tree, not an index and a table); the statements that read and write the
//! tables are shared.
//! Versions are applied in order, each in the same transaction as its `schema_migrations` row,
//! so a crash leaves the schema at a whole version.

use crate::backend::{BackendKind, Conn, Param};
use crate::error::StoreError;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events, identities, profiles, traits, api keys",
        sqlite: r#"
CREATE TABLE profiles (
    profile_id  TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 0,
    order_count INTEGER NOT NULL DEFAULT 0,
    revenue     REAL    NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE profile_merges (
    from_profile TEXT PRIMARY KEY,
    into_profile TEXT NOT NULL,
    merged_at    INTEGER NOT NULL,
    message_id   TEXT NOT NULL
);
CREATE INDEX profile_merges_into ON profile_merges(into_profile);
CREATE TABLE identities (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX identities_profile ON identities(profile_id);
CREATE TABLE identity_links (
    link_id    INTEGER PRIMARY KEY,
    a_kind     TEXT NOT NULL,
    a_value    TEXT NOT NULL,
    b_kind     TEXT NOT NULL,
    b_value    TEXT NOT NULL,
    via        TEXT NOT NULL,
    message_id TEXT NOT NULL,
    linked_at  INTEGER NOT NULL,
    UNIQUE (a_kind, a_value, b_kind, b_value)
);
CREATE INDEX identity_links_b ON identity_links(b_kind, b_value);
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL UNIQUE,
    profile_id  TEXT NOT NULL,
    call_type   TEXT NOT NULL,
    event_name  TEXT,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX events_profile ON events(profile_id, ts);
CREATE TABLE profile_traits (
    profile_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (profile_id, name)
) WITHOUT ROWID;
CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    scope       TEXT NOT NULL,
    label       TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
"#,
        postgres: r#"
CREATE TABLE profiles (
    profile_id  TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    event_count BIGINT NOT NULL DEFAULT 0,
    order_count BIGINT NOT NULL DEFAULT 0,
    revenue     DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE profile_merges (
    from_profile TEXT PRIMARY KEY,
    into_profile TEXT NOT NULL,
    merged_at    BIGINT NOT NULL,
    message_id   TEXT NOT NULL
);
CREATE INDEX profile_merges_into ON profile_merges(into_profile);
CREATE TABLE identities (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_profile ON identities(profile_id);
CREATE TABLE identity_links (
    link_id    BIGSERIAL PRIMARY KEY,
    a_kind     TEXT NOT NULL,
    a_value    TEXT NOT NULL,
    b_kind     TEXT NOT NULL,
    b_value    TEXT NOT NULL,
    via        TEXT NOT NULL,
    message_id TEXT NOT NULL,
    linked_at  BIGINT NOT NULL,
    UNIQUE (a_kind, a_value, b_kind, b_value)
);
CREATE INDEX identity_links_b ON identity_links(b_kind, b_value);
CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    message_id  TEXT NOT NULL UNIQUE,
    profile_id  TEXT NOT NULL,
    call_type   TEXT NOT NULL,
    event_name  TEXT,
    ts          BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX events_profile ON events(profile_id, ts);
CREATE TABLE profile_traits (
    profile_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (profile_id, name)
);
CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    scope       TEXT NOT NULL,
    label       TEXT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
"#,
    },
    Migration {
        version: 2,
        name: "consent ledger, audit chain",
        sqlite: r#"
CREATE TABLE consent_ledger (
    seq             INTEGER PRIMARY KEY,
    profile_id      TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    decision        TEXT NOT NULL,
    source          TEXT NOT NULL,
    purpose_version INTEGER NOT NULL,
    decided_at      INTEGER NOT NULL,
    evidence_hash   TEXT NOT NULL,
    recorded_at     INTEGER NOT NULL
);
CREATE INDEX consent_ledger_profile ON consent_ledger(profile_id, seq);
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE consent_ledger (
    seq             BIGSERIAL PRIMARY KEY,
    profile_id      TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    decision        TEXT NOT NULL,
    source          TEXT NOT NULL,
    purpose_version BIGINT NOT NULL,
    decided_at      BIGINT NOT NULL,
    evidence_hash   TEXT NOT NULL,
    recorded_at     BIGINT NOT NULL
);
CREATE INDEX consent_ledger_profile ON consent_ledger(profile_id, seq);
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        name: "vault: wrapped data keys, erasure tombstones and receipts",
        sqlite: r#"
CREATE TABLE customer_keys (
    key_id     TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    wrapped    TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX customer_keys_profile ON customer_keys(profile_id);
CREATE TABLE erasure_tombstones (
    blind      TEXT PRIMARY KEY,
    erased_at  INTEGER NOT NULL,
    receipt_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE erasure_receipts (
    receipt_id TEXT PRIMARY KEY,
    pseudonym  TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE customer_keys (
    key_id     TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    wrapped    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX customer_keys_profile ON customer_keys(profile_id);
CREATE TABLE erasure_tombstones (
    blind      TEXT PRIMARY KEY,
    erased_at  BIGINT NOT NULL,
    receipt_id TEXT NOT NULL
);
CREATE TABLE erasure_receipts (
    receipt_id TEXT PRIMARY KEY,
    pseudonym  TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
"#,
    },
    Migration {
        version: 4,
        name: "identities sealed, looked up by blind index",
        sqlite: "ALTER TABLE identities ADD COLUMN sealed TEXT;",
        postgres: "ALTER TABLE identities ADD COLUMN sealed TEXT;",
    },
    Migration {
        version: 5,
        name: "audit records by subject (access requests)",
        sqlite: "CREATE INDEX audit_log_subject ON audit_log(subject, seq);",
        postgres: "CREATE INDEX audit_log_subject ON audit_log(subject, seq);",
    },
    Migration {
        version: 6,
        name: "data-subject requests",
        sqlite: r#"
CREATE TABLE dsr_requests (
    request_id     TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    regime         TEXT NOT NULL,
    identity_kind  TEXT NOT NULL,
    identity_blind TEXT NOT NULL,
    identity_sealed TEXT NOT NULL,
    contact_sealed TEXT NOT NULL,
    status         TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    extended       INTEGER NOT NULL DEFAULT 0,
    code_hash      TEXT NOT NULL,
    code_expires_at INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL,
    outcome        TEXT
);
CREATE INDEX dsr_requests_due ON dsr_requests(status, due_at);
"#,
        postgres: r#"
CREATE TABLE dsr_requests (
    request_id     TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    regime         TEXT NOT NULL,
    identity_kind  TEXT NOT NULL,
    identity_blind TEXT NOT NULL,
    identity_sealed TEXT NOT NULL,
    contact_sealed TEXT NOT NULL,
    status         TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    due_at         BIGINT NOT NULL,
    extended       BIGINT NOT NULL DEFAULT 0,
    code_hash      TEXT NOT NULL,
    code_expires_at BIGINT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL,
    outcome        TEXT
);
CREATE INDEX dsr_requests_due ON dsr_requests(status, due_at);
"#,
    },
    Migration {
        version: 7,
        name: "lifecycle: purchases by day, counted events, stage transitions, models",
        sqlite: r#"
CREATE TABLE lifecycle_purchases (
    profile_id TEXT NOT NULL,
    day        INTEGER NOT NULL,
    amount     REAL NOT NULL,
    PRIMARY KEY (profile_id, day)
) WITHOUT ROWID;
CREATE TABLE lifecycle_counts (
    profile_id TEXT NOT NULL,
    event      TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (profile_id, event)
) WITHOUT ROWID;
CREATE TABLE lifecycle_transitions (
    profile_id TEXT NOT NULL,
    n          INTEGER NOT NULL,
    from_stage TEXT,
    to_stage   TEXT NOT NULL,
    at         INTEGER NOT NULL,
    rule       TEXT NOT NULL,
    PRIMARY KEY (profile_id, n)
) WITHOUT ROWID;
CREATE TABLE lifecycle_models (
    name      TEXT PRIMARY KEY,
    params    TEXT NOT NULL,
    fitted_at INTEGER NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE lifecycle_purchases (
    profile_id TEXT NOT NULL,
    day        BIGINT NOT NULL,
    amount     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (profile_id, day)
);
CREATE TABLE lifecycle_counts (
    profile_id TEXT NOT NULL,
    event      TEXT NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (profile_id, event)
);
CREATE TABLE lifecycle_transitions (
    profile_id TEXT NOT NULL,
    n          BIGINT NOT NULL,
    from_stage TEXT,
    to_stage   TEXT NOT NULL,
    at         BIGINT NOT NULL,
    rule       TEXT NOT NULL,
    PRIMARY KEY (profile_id, n)
);
CREATE TABLE lifecycle_models (
    name      TEXT PRIMARY KEY,
    params    TEXT NOT NULL,
    fitted_at BIGINT NOT NULL
);
"#,
    },
    Migration {
        version: 8,
        name: "personalisation: item interactions, actions taken, recommender models, segments",
        sqlite: r#"
CREATE TABLE interactions (
    profile_id TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    weight     REAL NOT NULL,
    last_at    INTEGER NOT NULL,
    PRIMARY KEY (profile_id, item_id)
) WITHOUT ROWID;
CREATE TABLE decision_actions (
    profile_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (profile_id, action, at, seq)
) WITHOUT ROWID;
CREATE TABLE recommender_models (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    trained_at INTEGER NOT NULL
);
CREATE TABLE segments (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE interactions (
    profile_id TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    weight     DOUBLE PRECISION NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (profile_id, item_id)
);
CREATE TABLE decision_actions (
    profile_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    at         BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (profile_id, action, at, seq)
);
CREATE TABLE recommender_models (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    trained_at BIGINT NOT NULL
);
CREATE TABLE segments (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
"#,
    },
    Migration {
        version: 9,
        name: "personalisation: segment membership",
        sqlite: r#"
CREATE TABLE segment_members (
    segment    TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    since      INTEGER NOT NULL,
    PRIMARY KEY (segment, profile_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_profile ON segment_members(profile_id);
"#,
        postgres: r#"
CREATE TABLE segment_members (
    segment    TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    since      BIGINT NOT NULL,
    PRIMARY KEY (segment, profile_id)
);
CREATE INDEX segment_members_profile ON segment_members(profile_id);
"#,
    },
    Migration {
        version: 10,
        name: "differential privacy: budgets per analyst and data set, and every charge",
        sqlite: r#"
CREATE TABLE dp_budgets (
    analyst TEXT NOT NULL,
    dataset TEXT NOT NULL,
    granted INTEGER NOT NULL,
    spent   INTEGER NOT NULL,
    PRIMARY KEY (analyst, dataset)
) WITHOUT ROWID;
CREATE TABLE dp_charges (
    analyst TEXT NOT NULL,
    dataset TEXT NOT NULL,
    n       INTEGER NOT NULL,
    cost    INTEGER NOT NULL,
    query   TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (analyst, dataset, n)
) WITHOUT ROWID;
"#,
        postgres: r#"
CREATE TABLE dp_budgets (
    analyst TEXT NOT NULL,
    dataset TEXT NOT NULL,
    granted BIGINT NOT NULL,
    spent   BIGINT NOT NULL,
    PRIMARY KEY (analyst, dataset)
);
CREATE TABLE dp_charges (
    analyst TEXT NOT NULL,
    dataset TEXT NOT NULL,
    n       BIGINT NOT NULL,
    cost    BIGINT NOT NULL,
    query   TEXT NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (analyst, dataset, n)
);
"#,
    },
    Migration {
        version: 11,
        name: "population epoch: bumped by every commit that changes who exists or what they consented to",
        sqlite: r#"
CREATE TABLE population_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO population_epoch (id, n) VALUES (1, 0);
"#,
        postgres: r#"
CREATE TABLE population_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO population_epoch (id, n) VALUES (1, 0);
"#,
    },
    Migration {
        version: 12,
        name: "clean room sessions with partners",
        sqlite: r#"
CREATE TABLE cleanroom_sessions (
    session_id  TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    host_url    TEXT,
    token       TEXT,
    output      TEXT NOT NULL,
    with_sum    INTEGER NOT NULL,
    partner     TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    result      TEXT
);
"#,
        postgres: r#"
CREATE TABLE cleanroom_sessions (
    session_id  TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    host_url    TEXT,
    token       TEXT,
    output      TEXT NOT NULL,
    with_sum    BIGINT NOT NULL,
    partner     TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    result      TEXT
);
"#,
    },
    Migration {
        version: 13,
        name: "key kinds and use, consent assurance, withdrawals awaiting their grace",
        sqlite: r#"
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'browser';
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
ALTER TABLE api_keys ADD COLUMN server_library TEXT;
ALTER TABLE consent_ledger ADD COLUMN assurance TEXT NOT NULL DEFAULT 'browser';
CREATE TABLE pending_withdrawals (
    profile_id  TEXT PRIMARY KEY,
    due_at      INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX pending_withdrawals_due ON pending_withdrawals(due_at);
ALTER TABLE audit_log ADD COLUMN mac TEXT;
"#,
        postgres: r#"
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'browser';
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_keys ADD COLUMN server_library TEXT;
ALTER TABLE consent_ledger ADD COLUMN assurance TEXT NOT NULL DEFAULT 'browser';
CREATE TABLE pending_withdrawals (
    profile_id  TEXT PRIMARY KEY,
    due_at      BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX pending_withdrawals_due ON pending_withdrawals(due_at);
ALTER TABLE audit_log ADD COLUMN mac TEXT;
"#,
    },
    Migration {
        version: 14,
        name: "several nodes: leadership, timers' last runs, customers touched, the master keys' check",
        sqlite: r#"
CREATE TABLE cluster_leader (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token INTEGER NOT NULL,
    node  TEXT NOT NULL,
    since INTEGER NOT NULL
);
INSERT INTO cluster_leader (id, token, node, since) VALUES (1, 0, '', 0);
CREATE TABLE timer_runs (
    job      TEXT PRIMARY KEY,
    last_run INTEGER NOT NULL,
    token    INTEGER NOT NULL,
    node     TEXT NOT NULL
);
CREATE TABLE touched_profiles (
    profile_id TEXT PRIMARY KEY
);
CREATE TABLE master_key_check (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    check_hash TEXT NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE cluster_leader (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token BIGINT NOT NULL,
    node  TEXT NOT NULL,
    since BIGINT NOT NULL
);
INSERT INTO cluster_leader (id, token, node, since) VALUES (1, 0, '', 0);
CREATE TABLE timer_runs (
    job      TEXT PRIMARY KEY,
    last_run BIGINT NOT NULL,
    token    BIGINT NOT NULL,
    node     TEXT NOT NULL
);
CREATE TABLE touched_profiles (
    profile_id TEXT PRIMARY KEY
);
CREATE TABLE master_key_check (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    check_hash TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 15,
        name: "the decision log: each recorded decision's explanation, sealed",
        sqlite: r#"
CREATE TABLE decision_log (
    profile_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    decided_at INTEGER NOT NULL,
    placement  TEXT NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (profile_id, seq)
) WITHOUT ROWID;
CREATE INDEX decision_log_at ON decision_log(decided_at);
"#,
        postgres: r#"
CREATE TABLE decision_log (
    profile_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    decided_at BIGINT NOT NULL,
    placement  TEXT NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (profile_id, seq)
);
CREATE INDEX decision_log_at ON decision_log(decided_at);
"#,
    },
    Migration {
        version: 16,
        name: "the privacy centre: e-mail addresses as blind indexes, one-time codes, sessions",
        sqlite: r#"
CREATE TABLE email_index (
    blind      TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX email_index_profile ON email_index(profile_id);
CREATE TABLE privacy_codes (
    challenge_id TEXT PRIMARY KEY,
    blind        TEXT NOT NULL,
    profile_id   TEXT,
    code_hash    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX privacy_codes_blind ON privacy_codes(blind, created_at);
CREATE INDEX privacy_codes_profile ON privacy_codes(profile_id);
CREATE TABLE privacy_sessions (
    token_hash TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX privacy_sessions_profile ON privacy_sessions(profile_id);
"#,
        postgres: r#"
CREATE TABLE email_index (
    blind      TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX email_index_profile ON email_index(profile_id);
CREATE TABLE privacy_codes (
    challenge_id TEXT PRIMARY KEY,
    blind        TEXT NOT NULL,
    profile_id   TEXT,
    code_hash    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX privacy_codes_blind ON privacy_codes(blind, created_at);
CREATE INDEX privacy_codes_profile ON privacy_codes(profile_id);
CREATE TABLE privacy_sessions (
    token_hash TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX privacy_sessions_profile ON privacy_sessions(profile_id);
"#,
    },
    Migration {
        version: 17,
        name: "the console's operators and their sessions",
        sqlite: r#"
CREATE TABLE operators (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    totp_sealed    TEXT,
    last_totp_step INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE operator_sessions (
    token_hash TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX operator_sessions_name ON operator_sessions(name);
"#,
        postgres: r#"
CREATE TABLE operators (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    totp_sealed    TEXT,
    last_totp_step BIGINT NOT NULL DEFAULT 0,
    disabled       BIGINT NOT NULL DEFAULT 0,
    failed_logins  BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE TABLE operator_sessions (
    token_hash TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX operator_sessions_name ON operator_sessions(name);
"#,
    },
];

/// The newest schema version this build knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Brings the schema to [`latest`]. Runs inside the caller's transaction; on PostgreSQL an
/// advisory lock keeps two starting servers from migrating at once.
pub(crate) fn apply(conn: &mut dyn Conn, kind: BackendKind) -> Result<(), StoreError> {
    match kind {
        BackendKind::Sqlite => conn.exec_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )?,
        BackendKind::Postgres => {
            conn.exec_batch("SELECT pg_advisory_xact_lock(727274)")?;
            conn.exec_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )?
        }
    }
    let rows = conn.query("SELECT MAX(version) FROM schema_migrations", &[])?;
    let current = rows
        .first()
        .and_then(|r| r.first())
        .map(|c| c.opt_int())
        .transpose()?
        .flatten()
        .unwrap_or(0);
    if current > latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: latest(),
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(version = m.version, name = m.name, "applying migration");
        conn.exec_batch(match kind {
            BackendKind::Sqlite => m.sqlite,
            BackendKind::Postgres => m.postgres,
        })?;
        conn.exec(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            &[
                Param::Int(m.version),
                Param::Text(m.name),
                Param::Int(now_millis()),
            ],
        )?;
    }
    Ok(())
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
