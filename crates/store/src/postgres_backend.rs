//! PostgreSQL for scale: a small pool of connections, each with its own prepared-statement
//! cache, speaking the same `?N` statements as SQLite (translated to `$N` once per connection).

use std::collections::HashMap;
use std::error::Error;
use std::str::FromStr;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{Client, GenericClient, NoTls, Statement};

use crate::backend::{refuse_nul, Backend, BackendKind, Cell, ChangeFeed, Conn, LeaderLock, Param};
use crate::changes::{self, Change};
use crate::error::StoreError;
use crate::migrations;

/// How long a request waits for a free connection when all `pool_size` are busy.
const CHECKOUT_WAIT: Duration = Duration::from_secs(30);

struct Pooled {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// The connections: idle ones, and how many are open in all (idle or lent).
struct Pool {
    idle: Vec<Pooled>,
    open: usize,
}

/// PostgreSQL behind [`Backend`].
pub struct PostgresBackend {
    config: postgres::Config,
    pool: Mutex<Pool>,
    /// Signalled when a connection comes back or closes.
    returned: Condvar,
    /// Most connections open at once.
    max: usize,
}

impl PostgresBackend {
    /// Connects to `url` (`postgres://user@host:port/db` or a key=value string), with at most
    /// `pool_size` connections, and keeps the first for the pool.
    ///
    /// # Errors
    /// A malformed URL or a server that refuses the connection.
    pub fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let config =
            postgres::Config::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let backend = PostgresBackend {
            config,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            max: pool_size.max(1),
        };
        let first = backend.checkout()?;
        backend.checkin(first);
        Ok(backend)
    }

    fn checkout(&self) -> Result<Pooled, StoreError> {
        let deadline = std::time::Instant::now() + CHECKOUT_WAIT;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match pool.idle.pop() {
                Some(p) if !p.client.is_closed() => return Ok(p),
                Some(_) => pool.open -= 1,
                None if pool.open < self.max => {
                    pool.open += 1;
                    drop(pool);
                    return match self.config.connect(NoTls) {
                        Ok(client) => Ok(Pooled {
                            client,
                            statements: HashMap::new(),
                        }),
                        Err(e) => {
                            self.closed();
                            Err(e.into())
                        }
                    };
                }
                None => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(StoreError::Disconnected(format!(
                            "all {} connections of the pool stayed busy for {} s (storage.pool_size)",
                            self.max,
                            CHECKOUT_WAIT.as_secs()
                        )));
                    }
                    pool = self
                        .returned
                        .wait_timeout(pool, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }

    /// Counts a lent connection as closed.
    fn closed(&self) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.open -= 1;
        self.returned.notify_one();
    }

    fn checkin(&self, conn: Pooled) {
        if conn.client.is_closed() {
            self.closed();
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.idle.push(conn);
        self.returned.notify_one();
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        // A blocking client closes itself by blocking on its own runtime, which panics if the
        // last owner drops us on an async worker thread (as a server does at shutdown). Close
        // the connections on a plain thread instead.
        let idle = std::mem::take(&mut self.pool.lock().unwrap_or_else(|p| p.into_inner()).idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl Backend for PostgresBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut pooled = self.checkout()?;
        let result = (|| {
            let mut tx = pooled.client.transaction()?;
            work(&mut PgConn {
                client: &mut tx,
                statements: &mut pooled.statements,
            })?;
            tx.commit()?;
            Ok(())
        })();
        self.checkin(pooled);
        result
    }

    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut pooled = self.checkout()?;
        let result = work(&mut PgConn {
            client: &mut pooled.client,
            statements: &mut pooled.statements,
        });
        self.checkin(pooled);
        result
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.transaction(&mut |c| migrations::apply(c, BackendKind::Postgres))
    }

    fn try_lead(&self) -> Result<Option<Box<dyn LeaderLock>>, StoreError> {
        let mut client = self.config.connect(NoTls)?;
        let won = client
            .query_one("SELECT pg_try_advisory_lock(727277)", &[])?
            .try_get::<_, bool>(0)?;
        Ok(won.then(|| {
            Box::new(PgLeaderLock {
                client: Some(client),
            }) as Box<dyn LeaderLock>
        }))
    }

    fn listen(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&format!("LISTEN {}", changes::CHANNEL))?;
        Ok(Some(Box::new(PgFeed { client })))
    }
}

/// The leader lock: a session-level advisory lock on a connection of its own, released when
/// the connection closes (the process exits or is killed).
struct PgLeaderLock {
    client: Option<Client>,
}

impl LeaderLock for PgLeaderLock {
    fn held(&mut self) -> bool {
        self.client
            .as_mut()
            .is_some_and(|c| !c.is_closed() && c.batch_execute("SELECT 1").is_ok())
    }
}

impl Drop for PgLeaderLock {
    fn drop(&mut self) {
        // As for the pool: a blocking client may not be closed on an async worker thread.
        if let Some(client) = self.client.take() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

/// A connection that only listens.
struct PgFeed {
    client: Client,
}

impl ChangeFeed for PgFeed {
    fn next(&mut self, wait: Duration) -> Result<Option<Change>, StoreError> {
        let next = {
            let mut notes = self.client.notifications();
            let mut iter = notes.timeout_iter(wait);
            iter.next()?
        };
        match next {
            Some(note) => Ok(Change::decode(note.payload())),
            None if self.client.is_closed() => Err(StoreError::Disconnected(
                "the connection listening for changes closed".into(),
            )),
            None => Ok(None),
        }
    }
}

struct PgConn<'a, C: GenericClient> {
    client: &'a mut C,
    statements: &'a mut HashMap<&'static str, Statement>,
}

impl<C: GenericClient> PgConn<'_, C> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(&sql.replace('?', "$"))?;
        self.statements.insert(sql, stmt.clone());
        Ok(stmt)
    }
}

fn as_dyn<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl<C: GenericClient> Conn for PgConn<'_, C> {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn exec(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        refuse_nul(params)?;
        let stmt = self.statement(sql)?;
        Ok(self.client.execute(&stmt, &as_dyn(params))?)
    }

    fn exec_batch(&mut self, sql: &'static str) -> Result<(), StoreError> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        refuse_nul(params)?;
        let stmt = self.statement(sql)?;
        let rows = self.client.query(&stmt, &as_dyn(params))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut cells = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let ty = col.type_();
                let cell = if *ty == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
                } else if *ty == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)?
                        .map(|v| Cell::Int(v.into()))
                } else if *ty == Type::FLOAT8 {
                    row.try_get::<_, Option<f64>>(i)?.map(Cell::Real)
                } else if *ty == Type::BOOL {
                    row.try_get::<_, Option<bool>>(i)?
                        .map(|b| Cell::Int(b.into()))
                } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
                    row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
                } else {
                    return Err(StoreError::Corrupt(format!(
                        "column {} has unsupported type {ty}",
                        col.name()
                    )));
                };
                cells.push(cell.unwrap_or(Cell::Null));
            }
            out.push(cells);
        }
        Ok(out)
    }
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        fn checked<T: ToSql>(
            v: &T,
            accepts: bool,
            ty: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
            if !accepts {
                return Err(format!("parameter of the wrong type for column type {ty}").into());
            }
            v.to_sql(ty, out)
        }
        match self {
            Param::Text(s) => checked(s, <&str as ToSql>::accepts(ty), ty, out),
            Param::OptText(s) => checked(s, <&str as ToSql>::accepts(ty), ty, out),
            Param::Int(i) => checked(i, <i64 as ToSql>::accepts(ty), ty, out),
            Param::OptInt(i) => checked(i, <i64 as ToSql>::accepts(ty), ty, out),
            Param::Real(f) => checked(f, <f64 as ToSql>::accepts(ty), ty, out),
            Param::Texts(v) => checked(v, <&[&str] as ToSql>::accepts(ty), ty, out),
            Param::OptTexts(v) => checked(v, <&[Option<&str>] as ToSql>::accepts(ty), ty, out),
            Param::Ints(v) => checked(v, <&[i64] as ToSql>::accepts(ty), ty, out),
            Param::Reals(v) => checked(v, <&[f64] as ToSql>::accepts(ty), ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Checked per value in `to_sql`, since the variant decides.
        true
    }

    postgres::types::to_sql_checked!();
}
