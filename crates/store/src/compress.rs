//! Event payloads are compressed before they are sealed: sealed bytes look random and cannot be
//! compressed afterwards. Each payload is compressed alone with zstd at level 1, with no
//! dictionary: a dictionary trained on payloads would hold customers' plaintext outside their
//! keys. A Segment event's JSON shrinks by about a third.
//!
//! A compressed plaintext starts with [`MARK`], a byte no JSON text starts with, so values
//! sealed before compression existed still open as they are.

use std::cell::RefCell;
use std::io::Read;

use crate::error::StoreError;

/// First byte of a compressed plaintext (JSON starts with `{`, `[`, `"`, a digit, a letter or
/// white space, never with a control character).
const MARK: u8 = 0x1f;

/// zstd's fastest level: at about 600 bytes a payload, a higher one saves a few bytes for
/// much more time.
const LEVEL: i32 = 1;

/// Most a payload may inflate to: far above any event ingest accepts, far below what would
/// hurt a server.
const MAX_INFLATED: u64 = 16 * 1024 * 1024;

thread_local! {
    /// One compression context per thread: making one costs more than compressing a payload.
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// `text`, compressed behind [`MARK`].
pub(crate) fn compress(text: &str) -> Result<Vec<u8>, StoreError> {
    let failed = |e: std::io::Error| StoreError::Corrupt(format!("compressing a payload: {e}"));
    ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        let compressor = match z.as_mut() {
            Some(c) => c,
            None => z.insert(zstd::bulk::Compressor::new(LEVEL).map_err(failed)?),
        };
        let packed = compressor.compress(text.as_bytes()).map_err(failed)?;
        let mut out = Vec::with_capacity(packed.len() + 1);
        out.push(MARK);
        out.extend_from_slice(&packed);
        Ok(out)
    })
}

/// The text of a plaintext as sealed: decompressed if it was compressed, as it is otherwise.
pub(crate) fn decompress(plain: Vec<u8>) -> Result<String, StoreError> {
    let bytes = match plain.first() {
        Some(&MARK) => {
            let corrupt =
                |e: std::io::Error| StoreError::Corrupt(format!("a compressed payload: {e}"));
            let mut text = Vec::with_capacity(plain.len() * 3);
            zstd::stream::read::Decoder::new(&plain[1..])
                .map_err(corrupt)?
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut text)
                .map_err(corrupt)?;
            if text.len() as u64 > MAX_INFLATED {
                return Err(StoreError::Corrupt(
                    "a compressed payload inflates past 16 MiB".into(),
                ));
            }
            text
        }
        _ => plain,
    };
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(format!("sealed text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_leaves_uncompressed_text_alone() {
        let json = r#"{"type":"track","event":"Product Viewed","properties":{"product_id":"p-1","category":"Games","price":19.0},"context":{"ip":"203.0.113.7","library":{"name":"bench","version":"1"}}}"#;
        let packed = compress(json).expect("compress");
        assert!(
            packed.len() < json.len(),
            "{} ≥ {}",
            packed.len(),
            json.len()
        );
        assert_eq!(decompress(packed).expect("inflate"), json);
        assert_eq!(decompress(json.as_bytes().to_vec()).expect("as is"), json);
        // The thread's context starts afresh for each payload.
        let other = r#"{"type":"page","name":"Home"}"#;
        assert_eq!(
            decompress(compress(other).expect("compress")).expect("inflate"),
            other
        );
        let incompressible: String = (0..2000u32)
            .map(|i| char::from(b'!' + (i.wrapping_mul(2_654_435_761) >> 25) as u8 % 90))
            .collect();
        assert_eq!(
            decompress(compress(&incompressible).expect("compress")).expect("inflate"),
            incompressible
        );
    }

    #[test]
    fn a_bomb_is_refused() {
        let huge = " ".repeat(17 * 1024 * 1024);
        let bomb = compress(&huge).expect("compress");
        assert!(bomb.len() < 100_000);
        assert!(decompress(bomb).is_err());
    }
}
