//! A request body that must arrive whole by a deadline: a client that drips its body a byte at
//! a time cannot hold a worker (and a connection) for longer than the body timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Why a body stopped: its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body timeout")]
pub(crate) struct BodyTimedOut;

/// `inner`, failing with [`BodyTimedOut`] once `deadline` passes; `expired` is set when it
/// does, so the edge can answer 408 whatever the handler made of the failed read.
pub(crate) struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    pub(crate) fn new(inner: Body, deadline: Instant, expired: Arc<AtomicBool>) -> Self {
        DeadlineBody {
            inner,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            expired,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
