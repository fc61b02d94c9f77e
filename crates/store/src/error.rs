/// Everything that can go wrong below the engine. All but one are internal faults: by the time
/// data reaches the store it has been parsed. The exception is [`StoreError::NulInText`], a
/// value the edges let through that neither database may hold.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL said no.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory or file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The database holds a schema newer than this build knows.
    #[error(
        "database schema version {found} is newer than this build's {known}; upgrade Consentric"
    )]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this build has.
        known: i64,
    },
    /// A row did not have the shape the schema promises.
    #[error("unexpected row shape: {0}")]
    Corrupt(String),
    /// A grant whose subject is not a profile id was offered for a profile read.
    #[error("grant subject `{0}` is not a profile id")]
    NotAProfile(String),
    /// The vault refused: a key or sealed value that does not authenticate, or is gone.
    #[error("vault: {0}")]
    Vault(String),
    /// The database URL is not one we can use.
    #[error("database url: {0}")]
    BadUrl(String),
    /// A text value holds U+0000: PostgreSQL cannot store it, so neither store takes it.
    #[error("a text value holds U+0000, which neither store takes")]
    NulInText,
    /// The request asks for a change the caller may not make (a merge of two customers from a
    /// public browser key); nothing of it was written.
    #[error("refused: {0}")]
    Refused(String),
    /// A connection the store keeps open for a purpose of its own (listening for other
    /// processes' changes) was lost.
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// A leader-only write by a process that is no longer the leader (see `Fence`).
    #[error("fenced: {0}")]
    Fenced(String),
}

impl StoreError {
    /// Whether the caller's data, not the database, is at fault: a text value holding U+0000.
    pub fn is_nul_in_text(&self) -> bool {
        matches!(self, StoreError::NulInText)
    }

    /// Used internally to roll back a transaction whose closure failed with the caller's error.
    pub(crate) fn aborted() -> Self {
        StoreError::Corrupt("transaction aborted by its caller".into())
    }
}
