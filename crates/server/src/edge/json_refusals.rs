//! The two refusals hyper's HTTP/1 parser makes by itself, before any of our code sees the
//! request — a request target over 64 KiB (414) and more header fields than it parses (431) —
//! go out with an empty body. This wrapper of the connection recognises exactly those (a 414 or
//! 431 head with `content-length: 0`, which the server's own refusals never have: they carry
//! JSON) and sends the same status with the API's JSON error instead, so that every refusal is
//! JSON.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose parser-made 414 and 431 answers carry a JSON body.
pub(crate) struct JsonRefusals<IO> {
    io: IO,
    /// A rewritten answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<IO> JsonRefusals<IO> {
    pub(crate) fn new(io: IO) -> Self {
        JsonRefusals { io, pending: None }
    }
}

/// The JSON answer for a head hyper wrote on its own, if `bytes` is one.
fn rewrite(bytes: &[u8]) -> Option<Vec<u8>> {
    let (code, message) = if bytes.starts_with(b"HTTP/1.1 414 ") {
        (
            "uri_too_long",
            "the request target is longer than the server reads",
        )
    } else if bytes.starts_with(b"HTTP/1.1 431 ") {
        (
            "headers_too_large",
            "the request has more header fields than the server reads",
        )
    } else {
        return None;
    };
    let head = std::str::from_utf8(bytes).ok()?;
    let empty = head.ends_with("\r\n\r\n")
        && head.matches("\r\n\r\n").count() == 1
        && head
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n");
    if !empty {
        return None;
    }
    let status = head.split("\r\n").next()?;
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{message}","field":null}}}}"#);
    Some(
        format!(
            "{status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<IO: AsyncWrite + Unpin> JsonRefusals<IO> {
    /// Writes what is pending; ready once nothing is.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            match Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonRefusals<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::task::ready!(self.drive(cx))?;
        if let Some(replacement) = rewrite(buf) {
            self.pending = Some((replacement, 0));
            // Taken whole: the rest goes out on the next write, flush or shutdown.
            let _ = self.drive(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        std::task::ready!(self.drive(cx))?;
        let first = bufs.iter().find(|b| !b.is_empty());
        let suspect = first
            .is_some_and(|b| b.starts_with(b"HTTP/1.1 414 ") || b.starts_with(b"HTTP/1.1 431 "));
        if suspect {
            let whole: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(replacement) = rewrite(&whole) {
                self.pending = Some((replacement, 0));
                let _ = self.drive(cx)?;
                return Poll::Ready(Ok(whole.len()));
            }
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.drive(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.drive(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_parsers_empty_refusals_are_rewritten() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 07:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper_431).expect("rewritten")).expect("utf-8");
        assert!(
            out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{out}"
        );
        let body = out.split("\r\n\r\n").nth(1).expect("body");
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(v["error"]["code"], "headers_too_large");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        // The server's own refusals carry JSON already, and other answers pass as they are.
        let ours = b"HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n";
        assert!(rewrite(ours).is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        let with_body = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\nx";
        assert!(rewrite(with_body).is_none());
    }
}
