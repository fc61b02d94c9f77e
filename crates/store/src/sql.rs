//! Every statement both backends run. `?N` placeholders; SQLite reads them as they are,
//! PostgreSQL gets `$N`. Portable SQL only: no `LEAST`/`MIN(a,b)`, sums cast to `BIGINT`.

pub(crate) const INSERT_EVENT: &str = "INSERT INTO events (message_id, profile_id, call_type, event_name, ts, received_at, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (message_id) DO NOTHING";
pub(crate) const EVENTS_OF: &str = "SELECT seq, message_id, profile_id, call_type, event_name, ts, received_at, payload FROM events WHERE profile_id = ?1 ORDER BY ts DESC, seq DESC LIMIT ?2";
pub(crate) const EVENT_COUNT: &str = "SELECT COUNT(*) FROM events";
pub(crate) const MOVE_EVENTS: &str = "UPDATE events SET profile_id = ?2 WHERE profile_id = ?1";

/// PostgreSQL: a transaction-scoped advisory lock per identity (`kind:blind value`, one per
/// line), taken in sorted order. The two-key form keeps these apart from the one-key locks of
/// migrations and the audit chain.
pub(crate) const LOCK_IDENTITIES: &str = "SELECT pg_advisory_xact_lock(727276, hashtext(k)) FROM (SELECT k FROM unnest(string_to_array(?1, E'\\n')) AS k ORDER BY k) AS sorted";
/// PostgreSQL: a notification on channel ?1, delivered when the transaction commits.
pub(crate) const ANNOUNCE: &str = "SELECT pg_notify(?1, ?2)";
pub(crate) const FIND_IDENTITY: &str =
    "SELECT profile_id FROM identities WHERE kind = ?1 AND value = ?2";
/// The identity's profile and whether its consent ledger has any row: ingest skips reading an
/// empty ledger, the common case, at the price of one index probe on a look-up it makes anyway.
pub(crate) const FIND_IDENTITY_AND_CONSENT: &str = "SELECT i.profile_id, EXISTS (SELECT 1 FROM consent_ledger c WHERE c.profile_id = i.profile_id) FROM identities i WHERE i.kind = ?1 AND i.value = ?2";
pub(crate) const ATTACH_IDENTITY: &str = "INSERT INTO identities (kind, value, profile_id, first_seen, sealed) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (kind, value) DO UPDATE SET profile_id = excluded.profile_id, sealed = excluded.sealed";
pub(crate) const IDENTITIES_OF: &str = "SELECT kind, value, first_seen, sealed FROM identities WHERE profile_id = ?1 ORDER BY first_seen, kind, value";
pub(crate) const MOVE_IDENTITIES: &str =
    "UPDATE identities SET profile_id = ?2 WHERE profile_id = ?1";
pub(crate) const INSERT_LINK: &str = "INSERT INTO identity_links (a_kind, a_value, b_kind, b_value, via, message_id, linked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (a_kind, a_value, b_kind, b_value) DO NOTHING";
pub(crate) const LINKS_OF: &str = "SELECT l.a_kind, l.a_value, l.b_kind, l.b_value, l.via, l.message_id, l.linked_at, i.sealed, ib.sealed FROM identity_links l JOIN identities i ON i.kind = l.a_kind AND i.value = l.a_value LEFT JOIN identities ib ON ib.kind = l.b_kind AND ib.value = l.b_value WHERE i.profile_id = ?1 ORDER BY l.linked_at, l.link_id";

pub(crate) const INSERT_PROFILE: &str =
    "INSERT INTO profiles (profile_id, created_at, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)";
pub(crate) const BUMP_PROFILE: &str = "UPDATE profiles SET first_seen = CASE WHEN ?2 < first_seen THEN ?2 ELSE first_seen END, last_seen = CASE WHEN ?3 > last_seen THEN ?3 ELSE last_seen END, event_count = event_count + ?4, order_count = order_count + ?5, revenue = revenue + ?6 WHERE profile_id = ?1";
pub(crate) const PROFILE: &str = "SELECT profile_id, created_at, first_seen, last_seen, event_count, order_count, revenue FROM profiles WHERE profile_id = ?1";
pub(crate) const DELETE_PROFILE: &str = "DELETE FROM profiles WHERE profile_id = ?1";
pub(crate) const PROFILE_COUNT: &str = "SELECT COUNT(*) FROM profiles";
pub(crate) const MERGED_INTO: &str =
    "SELECT into_profile FROM profile_merges WHERE from_profile = ?1";
pub(crate) const MERGED_FROM: &str = "SELECT from_profile FROM profile_merges WHERE into_profile = ?1 ORDER BY merged_at, from_profile";
pub(crate) const RECORD_MERGE: &str = "INSERT INTO profile_merges (from_profile, into_profile, merged_at, message_id) VALUES (?1, ?2, ?3, ?4)";
pub(crate) const REPOINT_MERGES: &str =
    "UPDATE profile_merges SET into_profile = ?2 WHERE into_profile = ?1";

pub(crate) const SET_TRAIT: &str = "INSERT INTO profile_traits (profile_id, name, value, updated_at, message_id) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, message_id = excluded.message_id WHERE excluded.updated_at >= profile_traits.updated_at";
pub(crate) const MOVE_TRAITS: &str = "INSERT INTO profile_traits (profile_id, name, value, updated_at, message_id) SELECT ?2, name, value, updated_at, message_id FROM profile_traits WHERE profile_id = ?1 ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, message_id = excluded.message_id WHERE excluded.updated_at > profile_traits.updated_at";
pub(crate) const DELETE_TRAITS: &str = "DELETE FROM profile_traits WHERE profile_id = ?1";
pub(crate) const TRAITS_OF: &str = "SELECT name, value, updated_at, message_id FROM profile_traits WHERE profile_id = ?1 ORDER BY name";

pub(crate) const INSERT_API_KEY: &str = "INSERT INTO api_keys (key_id, secret_hash, scope, label, created_at, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub(crate) const API_KEY_BY_HASH: &str = "SELECT key_id, secret_hash, scope, label, created_at, revoked_at, kind, last_used_at, server_library FROM api_keys WHERE secret_hash = ?1";
pub(crate) const API_KEYS: &str = "SELECT key_id, secret_hash, scope, label, created_at, revoked_at, kind, last_used_at, server_library FROM api_keys ORDER BY created_at, key_id";
pub(crate) const REVOKE_API_KEY: &str =
    "UPDATE api_keys SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at IS NULL";
pub(crate) const SET_KEY_KIND: &str =
    "UPDATE api_keys SET kind = ?2, server_library = NULL WHERE key_id = ?1";
pub(crate) const KEY_USED: &str = "UPDATE api_keys SET last_used_at = ?2 WHERE key_id = ?1";
pub(crate) const KEY_SERVER_LIBRARY: &str =
    "UPDATE api_keys SET server_library = ?2 WHERE key_id = ?1 AND server_library IS NULL";

pub(crate) const APPEND_CONSENT: &str = "INSERT INTO consent_ledger (profile_id, purpose, decision, source, purpose_version, decided_at, evidence_hash, recorded_at, assurance) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
// No ORDER BY: with it SQLite plans a sort even though the index delivers rows in order, which
// costs more than the rest of an event's ingest; rows are ordered by `seq` in Rust instead.
pub(crate) const CONSENT_OF: &str = "SELECT seq, purpose, decision, source, purpose_version, decided_at, evidence_hash, recorded_at, assurance FROM consent_ledger WHERE profile_id = ?1";
pub(crate) const MOVE_CONSENT: &str =
    "UPDATE consent_ledger SET profile_id = ?2 WHERE profile_id = ?1";

pub(crate) const AUDIT_LAST: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
pub(crate) const AUDIT_APPEND: &str = "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
pub(crate) const AUDIT_LATEST: &str = "SELECT seq, at, actor, action, subject, detail, prev_hash, hash, mac FROM audit_log WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2";
pub(crate) const AUDIT_PAGE: &str = "SELECT seq, at, actor, action, subject, detail, prev_hash, hash, mac FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2";

pub(crate) const EVENTS_PAGE: &str = "SELECT seq, message_id, profile_id, call_type, event_name, ts, received_at, payload FROM events WHERE profile_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
pub(crate) const SET_EVENT_PAYLOAD: &str = "UPDATE events SET payload = ?2 WHERE seq = ?1";
pub(crate) const DELETE_TRAIT: &str =
    "DELETE FROM profile_traits WHERE profile_id = ?1 AND name = ?2";
pub(crate) const EVENTS_BEFORE_PAGE: &str = "SELECT seq, message_id, profile_id, call_type, event_name, ts, received_at, payload FROM events WHERE seq > ?1 AND ts < ?2 ORDER BY seq LIMIT ?3";
pub(crate) const DELETE_EVENT: &str = "DELETE FROM events WHERE seq = ?1";
pub(crate) const TRAITS_BEFORE: &str = "SELECT profile_id, name, updated_at FROM profile_traits WHERE updated_at < ?1 AND (profile_id > ?2 OR (profile_id = ?2 AND name > ?3)) ORDER BY profile_id, name LIMIT ?4";

// --- vault: wrapped keys, tombstones, receipts, erasure ---------------------------------

pub(crate) const INSERT_KEY: &str =
    "INSERT INTO customer_keys (key_id, profile_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)";
pub(crate) const KEY_BY_ID: &str = "SELECT wrapped FROM customer_keys WHERE key_id = ?1";
pub(crate) const KEYS_OF: &str =
    "SELECT key_id FROM customer_keys WHERE profile_id = ?1 ORDER BY key_id";
pub(crate) const MOVE_KEYS: &str = "UPDATE customer_keys SET profile_id = ?2 WHERE profile_id = ?1";
pub(crate) const DELETE_KEYS: &str = "DELETE FROM customer_keys WHERE profile_id = ?1";
pub(crate) const INSERT_TOMBSTONE: &str = "INSERT INTO erasure_tombstones (blind, erased_at, receipt_id) VALUES (?1, ?2, ?3) ON CONFLICT (blind) DO NOTHING";
pub(crate) const TOMBSTONED: &str = "SELECT 1 FROM erasure_tombstones WHERE blind = ?1";
pub(crate) const INSERT_RECEIPT: &str = "INSERT INTO erasure_receipts (receipt_id, pseudonym, body, signature, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(crate) const RECEIPT_BY_PSEUDONYM: &str =
    "SELECT receipt_id, body, signature FROM erasure_receipts WHERE pseudonym = ?1";
pub(crate) const ERASE_EVENTS: &str = "DELETE FROM events WHERE profile_id = ?1";
pub(crate) const ERASE_TRAITS: &str = "DELETE FROM profile_traits WHERE profile_id = ?1";
pub(crate) const ERASE_IDENTITIES: &str = "DELETE FROM identities WHERE profile_id = ?1";
pub(crate) const ERASE_LINKS: &str =
    "DELETE FROM identity_links WHERE (a_kind = ?1 AND a_value = ?2) OR (b_kind = ?1 AND b_value = ?2)";
pub(crate) const ERASE_CONSENT: &str = "DELETE FROM consent_ledger WHERE profile_id = ?1";
pub(crate) const ERASE_MERGES: &str =
    "DELETE FROM profile_merges WHERE into_profile = ?1 OR from_profile = ?1";
pub(crate) const RECEIPT_BY_TOMBSTONE: &str = "SELECT r.receipt_id, r.body, r.signature FROM erasure_receipts r JOIN erasure_tombstones t ON t.receipt_id = r.receipt_id WHERE t.blind = ?1";
pub(crate) const AUDIT_OF_SUBJECT: &str = "SELECT seq, at, actor, action, subject, detail, prev_hash, hash, mac FROM audit_log WHERE subject = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
pub(crate) const KEYS_PAGE: &str =
    "SELECT key_id, wrapped FROM customer_keys WHERE key_id > ?1 ORDER BY key_id LIMIT ?2";
pub(crate) const SET_WRAPPED: &str = "UPDATE customer_keys SET wrapped = ?2 WHERE key_id = ?1";

// --- data-subject requests -----------------------------------------------------------------

pub(crate) const INSERT_DSR: &str = "INSERT INTO dsr_requests (request_id, kind, regime, identity_kind, identity_blind, identity_sealed, contact_sealed, status, received_at, due_at, code_hash, code_expires_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'received', ?8, ?9, ?10, ?11, ?8)";
pub(crate) const DSR_BY_ID: &str = "SELECT request_id, kind, regime, identity_kind, identity_blind, identity_sealed, contact_sealed, status, received_at, due_at, extended, code_hash, code_expires_at, attempts, updated_at, outcome FROM dsr_requests WHERE request_id = ?1";
/// PostgreSQL: [`DSR_BY_ID`] with the row locked until the transaction ends, so two nodes
/// checking codes for one request count every attempt.
pub(crate) const DSR_BY_ID_FOR_UPDATE: &str = "SELECT request_id, kind, regime, identity_kind, identity_blind, identity_sealed, contact_sealed, status, received_at, due_at, extended, code_hash, code_expires_at, attempts, updated_at, outcome FROM dsr_requests WHERE request_id = ?1 FOR UPDATE";
pub(crate) const DSR_ALL: &str = "SELECT request_id, kind, regime, identity_kind, identity_blind, identity_sealed, contact_sealed, status, received_at, due_at, extended, code_hash, code_expires_at, attempts, updated_at, outcome FROM dsr_requests ORDER BY due_at, request_id";
pub(crate) const DSR_OVERDUE: &str = "SELECT request_id, kind, regime, identity_kind, identity_blind, identity_sealed, contact_sealed, status, received_at, due_at, extended, code_hash, code_expires_at, attempts, updated_at, outcome FROM dsr_requests WHERE status IN ('received', 'verified', 'in_progress') AND due_at < ?1 ORDER BY due_at, request_id";
pub(crate) const DSRS_OF_IDENTITY: &str = "SELECT request_id, contact_sealed FROM dsr_requests WHERE identity_kind = ?1 AND identity_blind = ?2";
// An open request of an erased customer is closed: an erasure request is honoured by the
// erasure, any other can no longer be. The blind index and the code's hash go too.
pub(crate) const SCRUB_DSR: &str = "UPDATE dsr_requests SET identity_blind = '', code_hash = '', status = CASE WHEN status IN ('received', 'verified', 'in_progress') THEN CASE WHEN kind = 'erasure' THEN 'completed' ELSE 'rejected' END ELSE status END, outcome = CASE WHEN status IN ('received', 'verified', 'in_progress') THEN ?2 ELSE outcome END, updated_at = ?3 WHERE request_id = ?1";
pub(crate) const DEFER_WITHDRAWAL: &str = "INSERT INTO pending_withdrawals (profile_id, due_at, recorded_at) VALUES (?1, ?2, ?3) ON CONFLICT (profile_id) DO NOTHING";
pub(crate) const TAKE_WITHDRAWAL: &str = "DELETE FROM pending_withdrawals WHERE profile_id = ?1";
pub(crate) const DUE_WITHDRAWALS: &str = "SELECT profile_id FROM pending_withdrawals WHERE due_at <= ?1 ORDER BY due_at, profile_id LIMIT ?2";
pub(crate) const UPDATE_DSR: &str = "UPDATE dsr_requests SET status = ?2, due_at = ?3, extended = ?4, attempts = ?5, updated_at = ?6, outcome = ?7 WHERE request_id = ?1";

// What a merge moves from the merged-away profile to the survivor, and deletes after.
pub(crate) const MOVE_PURCHASES: &str = "INSERT INTO lifecycle_purchases (profile_id, day, amount) SELECT ?2, day, amount FROM lifecycle_purchases WHERE profile_id = ?1 ON CONFLICT (profile_id, day) DO UPDATE SET amount = lifecycle_purchases.amount + excluded.amount";
pub(crate) const MOVE_COUNTS: &str = "INSERT INTO lifecycle_counts (profile_id, event, n) SELECT ?2, event, n FROM lifecycle_counts WHERE profile_id = ?1 ON CONFLICT (profile_id, event) DO UPDATE SET n = lifecycle_counts.n + excluded.n";
/// The merged-away profile's history goes below the surviving one's (numbers end just under its
/// first), so the survivor's latest transition stays its current stage.
pub(crate) const MOVE_TRANSITIONS: &str = "INSERT INTO lifecycle_transitions (profile_id, n, from_stage, to_stage, at, rule) SELECT ?2, n - (SELECT MAX(f.n) FROM lifecycle_transitions f WHERE f.profile_id = ?1) - 1 + COALESCE((SELECT MIN(i.n) FROM lifecycle_transitions i WHERE i.profile_id = ?2), 1), from_stage, to_stage, at, rule FROM lifecycle_transitions WHERE profile_id = ?1";
pub(crate) const DELETE_PURCHASES: &str = "DELETE FROM lifecycle_purchases WHERE profile_id = ?1";
pub(crate) const DELETE_COUNTS: &str = "DELETE FROM lifecycle_counts WHERE profile_id = ?1";
pub(crate) const DELETE_TRANSITIONS: &str =
    "DELETE FROM lifecycle_transitions WHERE profile_id = ?1";
pub(crate) const MOVE_INTERACTIONS: &str = "INSERT INTO interactions (profile_id, item_id, weight, last_at) SELECT ?2, item_id, weight, last_at FROM interactions WHERE profile_id = ?1 ON CONFLICT (profile_id, item_id) DO UPDATE SET weight = interactions.weight + excluded.weight, last_at = CASE WHEN excluded.last_at > interactions.last_at THEN excluded.last_at ELSE interactions.last_at END";
pub(crate) const DELETE_INTERACTIONS: &str = "DELETE FROM interactions WHERE profile_id = ?1";
/// The merged-away customer's actions keep counting against the survivor's caps; their
/// numbers go above the survivor's so none collide.
pub(crate) const MOVE_ACTIONS: &str = "INSERT INTO decision_actions (profile_id, action, at, seq) SELECT ?2, action, at, seq + COALESCE((SELECT MAX(s.seq) FROM decision_actions s WHERE s.profile_id = ?2), 0) FROM decision_actions WHERE profile_id = ?1";
pub(crate) const DELETE_ACTIONS: &str = "DELETE FROM decision_actions WHERE profile_id = ?1";
/// A merge: `?1`'s logged decisions numbered after `?2`'s.
pub(crate) const MOVE_DECISIONS: &str = "INSERT INTO decision_log (profile_id, seq, decided_at, placement, record) SELECT ?2, seq + COALESCE((SELECT MAX(s.seq) FROM decision_log s WHERE s.profile_id = ?2), 0), decided_at, placement, record FROM decision_log WHERE profile_id = ?1";
pub(crate) const DELETE_DECISIONS: &str = "DELETE FROM decision_log WHERE profile_id = ?1";
/// Memberships are not moved by a merge: the survivor is evaluated afresh.
pub(crate) const DELETE_MEMBERSHIPS: &str = "DELETE FROM segment_members WHERE profile_id = ?1";

// Several nodes on one database (`cluster_tx.rs`).
pub(crate) const LEADER_TOKEN: &str = "SELECT token FROM cluster_leader WHERE id = 1";
/// PostgreSQL: the token, share-locked until the transaction ends, so a takeover (which
/// updates it) waits for a fenced write to finish.
pub(crate) const LEADER_TOKEN_SHARED: &str =
    "SELECT token FROM cluster_leader WHERE id = 1 FOR SHARE";
pub(crate) const TAKE_LEAD: &str = "UPDATE cluster_leader SET token = token + 1, node = ?1, since = ?2 WHERE id = 1 RETURNING token";
/// Inserts the job's first run, or moves its last run to ?2 if it was at or before ?5.
pub(crate) const CLAIM_TIMER: &str = "INSERT INTO timer_runs (job, last_run, token, node) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (job) DO UPDATE SET last_run = excluded.last_run, token = excluded.token, node = excluded.node WHERE timer_runs.last_run <= ?5";
pub(crate) const NOTE_TOUCHED_SQLITE: &str = "INSERT INTO touched_profiles (profile_id) SELECT value FROM json_each(?1) WHERE true ON CONFLICT (profile_id) DO NOTHING";
pub(crate) const NOTE_TOUCHED_POSTGRES: &str = "INSERT INTO touched_profiles (profile_id) SELECT unnest(string_to_array(?1, ' ')) ON CONFLICT (profile_id) DO NOTHING";
pub(crate) const TAKE_TOUCHED_SQLITE: &str = "DELETE FROM touched_profiles WHERE profile_id IN (SELECT profile_id FROM touched_profiles LIMIT ?1) RETURNING profile_id";
/// Rows another node is taking at the same moment are skipped, not waited for.
pub(crate) const TAKE_TOUCHED_POSTGRES: &str = "DELETE FROM touched_profiles WHERE profile_id IN (SELECT profile_id FROM touched_profiles LIMIT ?1 FOR UPDATE SKIP LOCKED) RETURNING profile_id";
pub(crate) const TOUCHED_COUNT: &str = "SELECT COUNT(*) FROM touched_profiles";
pub(crate) const MASTER_KEY_CHECK_FIRST: &str =
    "INSERT INTO master_key_check (id, check_hash) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING";
pub(crate) const MASTER_KEY_CHECK: &str = "SELECT check_hash FROM master_key_check WHERE id = 1";

// The privacy centre's rows about a customer: moved by a merge, deleted by erasure.
pub(crate) const MOVE_PRIVACY: [&str; 3] = [
    "UPDATE email_index SET profile_id = ?2 WHERE profile_id = ?1",
    "UPDATE privacy_codes SET profile_id = ?2 WHERE profile_id = ?1",
    "UPDATE privacy_sessions SET profile_id = ?2 WHERE profile_id = ?1",
];
pub(crate) const DELETE_PRIVACY: [&str; 3] = [
    "DELETE FROM email_index WHERE profile_id = ?1",
    "DELETE FROM privacy_codes WHERE profile_id = ?1",
    "DELETE FROM privacy_sessions WHERE profile_id = ?1",
];
