//! Bulk import from files: NDJSON of Segment events, and the CDNOW transaction format as
//! `Order Completed` events. Streamed: the file is read line by line and stored in batches,
//! so memory does not grow with the file.

use std::io::{BufRead, Read};

use consentric_model::import_lines::{cdnow_line, movielens_line};
use consentric_model::{parse_typed_event, Envelope, Event};

use crate::engine::Engine;
use crate::error::EngineError;

pub use crate::ingest::IMPORT_BATCH;
/// Rejected lines kept in the summary (the rest are only counted).
const KEEP_REJECTIONS: usize = 20;

/// The file formats `consentric import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// One Segment event (with `type`) per line.
    Ndjson,
    /// CDNOW: `customer_id date(YYYYMMDD) number_of_cds dollar_value`, whitespace separated,
    /// optional header; the 5-column sample variant (`master_id sample_id date cds dollars`)
    /// is read too.
    Cdnow,
    /// MovieLens as RecBole ships it (`user_id item_id rating timestamp`, tab separated,
    /// `:token` header): each rating becomes a `Product Reviewed` track by user `ml-<id>`.
    MovieLens,
}

impl ImportFormat {
    /// Parses `ndjson` or `cdnow`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(raw: &str) -> Result<Self, EngineError> {
        match raw {
            "ndjson" | "segment" => Ok(ImportFormat::Ndjson),
            "cdnow" => Ok(ImportFormat::Cdnow),
            "movielens" => Ok(ImportFormat::MovieLens),
            other => Err(EngineError::Invalid {
                field: "format".into(),
                message: format!("`{other}` is not a format; use `ndjson`, `cdnow` or `movielens`"),
            }),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// Non-empty lines read (headers included).
    pub lines: u64,
    /// Events stored.
    pub accepted: u64,
    /// Events skipped as already stored.
    pub duplicates: u64,
    /// Lines refused.
    pub rejected: u64,
    /// The first refusals: line number and why.
    pub rejections: Vec<(u64, String)>,
}

/// Imports everything `reader` holds. `progress` is called with the bytes read so far after
/// each batch is handed to the writer. A line that does not parse is counted and skipped; the rest goes on.
///
/// # Errors
/// A read failure or a database fault; batches stored before it stay stored.
pub fn import(
    engine: &Engine,
    reader: impl Read,
    format: ImportFormat,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary, EngineError> {
    import_with_consent(engine, reader, format, &[], progress)
}

/// [`import`], recording for each CDNOW customer, with their first purchase, that they granted
/// `consent` (purpose ids): for a business importing history whose customers' choices were
/// collected elsewhere. The grant goes through the ordinary consent path (a Segment consent
/// object on the event), so it is validated, stored in the ledger and audited like any other.
///
/// # Errors
/// As [`import`]; an unknown purpose refuses the import before anything is stored, and NDJSON
/// refuses `consent` (its events carry their own).
pub fn import_with_consent(
    engine: &Engine,
    reader: impl Read,
    format: ImportFormat,
    consent: &[String],
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary, EngineError> {
    let options = ImportOptions {
        consent,
        shift_days: 0,
    };
    import_with_options(engine, reader, format, &options, progress)
}

/// How a CDNOW or MovieLens file is read besides its rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions<'a> {
    /// Purposes each customer granted with their first event (see [`import_with_consent`]).
    pub consent: &'a [String],
    /// Days added to every date: a data set from the past moved so that it ends today, so
    /// that retention, stages and models see it as recent history. Message ids keep the
    /// original dates, so importing the same file again stores nothing new.
    pub shift_days: i64,
}

/// [`import_with_consent`] with every option.
///
/// # Errors
/// As [`import_with_consent`]; NDJSON refuses a shift (its events carry their own times), and a
/// shift that moves a date out of range refuses that line.
pub fn import_with_options(
    engine: &Engine,
    reader: impl Read,
    format: ImportFormat,
    options: &ImportOptions<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary, EngineError> {
    let consent = options.consent;
    if options.shift_days != 0 && format == ImportFormat::Ndjson {
        return Err(EngineError::Invalid {
            field: "shift_days".into(),
            message: "NDJSON events carry their own times; a shift applies to CDNOW and MovieLens"
                .into(),
        });
    }
    let shift =
        chrono::TimeDelta::try_days(options.shift_days).ok_or_else(|| EngineError::Invalid {
            field: "shift_days".into(),
            message: "too many days".into(),
        })?;
    if !consent.is_empty() && format == ImportFormat::Ndjson {
        return Err(EngineError::Invalid {
            field: "consent".into(),
            message: "NDJSON events carry their own consent; --consent applies to CDNOW".into(),
        });
    }
    for purpose in consent {
        if !engine.declares_purpose(purpose) {
            return Err(EngineError::Invalid {
                field: "consent".into(),
                message: format!("`{purpose}` is not a declared purpose"),
            });
        }
    }
    let mut reader = std::io::BufReader::with_capacity(
        1 << 16,
        CountingReader {
            inner: reader,
            count: 0,
        },
    );
    let mut summary = ImportSummary::default();
    let env = engine.envelope(format!("import-{}", uuid::Uuid::new_v4().simple()));
    // Reading and parsing (here) overlap with storing (on a second thread): while one batch
    // commits, the next is parsed. At most two batches wait in between.
    let stored = std::thread::scope(|scope| -> Result<(u64, u64), EngineError> {
        let (to_store, batches) = std::sync::mpsc::sync_channel::<Vec<Event>>(2);
        let writer = scope.spawn(move || -> Result<(u64, u64), EngineError> {
            let (mut accepted, mut duplicates) = (0, 0);
            for batch in batches {
                let report = engine.ingest(batch)?;
                accepted += report.accepted;
                duplicates += report.duplicates;
            }
            Ok((accepted, duplicates))
        });
        let read = read_batches(
            &mut reader,
            format,
            consent,
            shift,
            &env,
            &mut summary,
            &mut |batch, bytes| {
                // A closed channel means the writer failed; its error is reported below.
                let sent = to_store.send(batch).is_ok();
                progress(bytes);
                sent
            },
        );
        drop(to_store);
        let stored = writer
            .join()
            .map_err(|_| EngineError::Config("the import's writer panicked".into()))?;
        read?;
        stored
    })?;
    summary.accepted = stored.0;
    summary.duplicates = stored.1;
    Ok(summary)
}

/// Reads lines into batches of [`IMPORT_BATCH`] events and hands each to `hand` (with the
/// bytes read so far) until the input ends or `hand` returns `false`.
fn read_batches<R: Read>(
    reader: &mut std::io::BufReader<CountingReader<R>>,
    format: ImportFormat,
    consent: &[String],
    shift: chrono::TimeDelta,
    env: &Envelope,
    summary: &mut ImportSummary,
    hand: &mut dyn FnMut(Vec<Event>, u64) -> bool,
) -> Result<(), EngineError> {
    let mut batch: Vec<Event> = Vec::with_capacity(IMPORT_BATCH);
    let mut line = String::new();
    let mut line_no = 0u64;
    let mut consented: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|source| EngineError::Io {
                what: "import input".into(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        summary.lines += 1;
        let parsed = match format {
            ImportFormat::Ndjson => {
                let env = Envelope {
                    request_id: format!("{}-{line_no}", env.request_id),
                    ..env.clone()
                };
                parse_typed_event(text.as_bytes(), &env)
                    .map(|b| b.events.into_iter().next())
                    .map_err(|e| e.to_string())
            }
            ImportFormat::Cdnow => cdnow_line(text, line_no, shift, env, consent, &mut consented),
            ImportFormat::MovieLens => {
                movielens_line(text, line_no, shift, env, consent, &mut consented)
            }
        };
        match parsed {
            Ok(Some(event)) => batch.push(event),
            Ok(None) => {}
            Err(e) => {
                summary.rejected += 1;
                if summary.rejections.len() < KEEP_REJECTIONS {
                    summary.rejections.push((line_no, e));
                }
            }
        }
        if batch.len() >= IMPORT_BATCH
            && !hand(
                std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH)),
                reader.get_ref().count,
            )
        {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        hand(batch, reader.get_ref().count);
    }
    Ok(())
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
