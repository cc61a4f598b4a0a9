//! The memory fetch streams may hold, bounded whatever clients ask.
//!
//! Every fetch response is read under permits of a broker-wide budget
//! (`--fetch-memory`, default 256 MiB): one per byte it may hold, taken
//! before the read (as many as the response may carry) and trimmed to what
//! it holds after. The permits travel with the response through the
//! stream's channel and are given back when the transport takes it. So the
//! responses read but not yet handed to the transport never hold more than
//! the budget: a reader that asks for huge responses or never reads waits
//! for permits instead of growing the broker.
//!
//! Per stream: one response in the channel and one being prepared, each at
//! most `--max-fetch-bytes`; the transport adds its HTTP/2 window. A stream
//! whose response cannot be handed over for `--fetch-send-timeout` (its
//! reader stopped reading) is closed, giving its permits back.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use goulette_proto::v1 as pb;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::Stream;
use tonic::Status;

/// The broker-wide budget of fetch bytes.
#[derive(Debug, Clone)]
pub struct FetchBudget {
    permits: Arc<Semaphore>,
    total: usize,
}

/// What a fetch stream's channel carries: a response and the budget it holds.
pub type Item = (Result<pb::FetchResponse, Status>, Option<OwnedSemaphorePermit>);

/// The response stream handed to the transport.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::FetchResponse, Status>> + Send>>;

impl FetchBudget {
    /// A budget of `total` bytes (at least 1 MiB, at most `u32::MAX`).
    pub fn new(total: usize) -> FetchBudget {
        let total = total.clamp(1 << 20, u32::MAX as usize);
        FetchBudget { permits: Arc::new(Semaphore::new(total)), total }
    }

    /// Waits for `bytes` (capped at the whole budget) of the budget.
    pub async fn acquire(&self, bytes: usize) -> OwnedSemaphorePermit {
        let n = bytes.clamp(1, self.total) as u32;
        // The semaphore is never closed.
        self.permits.clone().acquire_many_owned(n).await.unwrap_or_else(|_| unreachable!("fetch budget closed"))
    }

    /// Bytes of the budget not held right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// The sending half of a fetch stream.
#[derive(Debug)]
pub struct FetchOut {
    tx: mpsc::Sender<Item>,
    /// The receiving half too, to empty it when the reader stopped reading:
    /// the transport polls a stream only when its reader has window left, so
    /// a response waiting there would otherwise hold its memory and budget
    /// for as long as the connection lives. Weak: the transport drops the
    /// receiving half when the reader hangs up, which is how `closed` learns
    /// of it.
    rx: Weak<Mutex<mpsc::Receiver<Item>>>,
    send_timeout: Duration,
}

/// What the transport reads: responses as they leave the channel (their
/// permits are dropped then).
struct Responses(Arc<Mutex<mpsc::Receiver<Item>>>);

impl Stream for Responses {
    type Item = Result<pb::FetchResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut rx = self.0.lock().unwrap_or_else(|p| p.into_inner());
        rx.poll_recv(cx).map(|item| item.map(|(response, _permit)| response))
    }
}

/// A fetch stream's channel: its sending half, and the stream the transport reads.
pub fn channel(send_timeout: Duration) -> (FetchOut, ResponseStream) {
    // One response waits while the next is prepared.
    let (tx, rx) = mpsc::channel::<Item>(1);
    let rx = Arc::new(Mutex::new(rx));
    (FetchOut { tx, rx: Arc::downgrade(&rx), send_timeout }, Box::pin(Responses(rx)))
}

impl FetchOut {
    /// Hands `response` (holding `permit`) to the transport; false when the
    /// reader is gone, or has taken nothing for the send timeout (then what
    /// waits for it is dropped, and the stream ends).
    pub async fn send(&self, response: pb::FetchResponse, permit: Option<OwnedSemaphorePermit>) -> bool {
        match tokio::time::timeout(self.send_timeout, self.tx.send((Ok(response), permit))).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                tracing::debug!(timeout = ?self.send_timeout, "fetch reader stopped reading; closing its stream");
                if let Some(rx) = self.rx.upgrade() {
                    let mut rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                    rx.close();
                    while rx.try_recv().is_ok() {}
                }
                false
            }
        }
    }

    /// Resolves when the reader hung up.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn permits_come_back_when_the_transport_takes_the_response() {
        let budget = FetchBudget::new(4 << 20);
        let (out, mut stream) = channel(Duration::from_secs(5));
        let permit = budget.acquire(3 << 20).await;
        assert!(out.send(pb::FetchResponse::default(), Some(permit)).await);
        assert_eq!(budget.available(), 1 << 20);
        stream.next().await.unwrap().unwrap();
        assert_eq!(budget.available(), 4 << 20);
    }

    #[tokio::test]
    async fn a_reader_that_takes_nothing_is_dropped_after_the_timeout_and_its_budget_comes_back() {
        let budget = FetchBudget::new(4 << 20);
        let (out, mut stream) = channel(Duration::from_millis(50));
        let permit = budget.acquire(1 << 20).await;
        assert!(out.send(pb::FetchResponse::default(), Some(permit)).await, "the channel holds one");
        let permit = budget.acquire(1 << 20).await;
        assert!(!out.send(pb::FetchResponse::default(), Some(permit)).await, "the second times out");
        assert_eq!(budget.available(), 4 << 20, "what waited was dropped");
        drop(out);
        assert!(stream.next().await.is_none(), "the stream ended");
    }

    #[tokio::test]
    async fn the_sender_learns_that_the_transport_dropped_the_stream() {
        let (out, stream) = channel(Duration::from_secs(5));
        drop(stream);
        tokio::time::timeout(Duration::from_secs(1), out.closed()).await.expect("closed resolves");
    }
}
