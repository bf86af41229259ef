//! Commit tickets and the durable watermark: how a writer learns that its batch reached stable
//! storage, either by blocking a thread or by awaiting a future on an async runtime.
//!
//! Invariants:
//! * Tickets are handed out in increasing order, after the batch's commit returned. A batch is
//!   durable once the watermark is at or above its ticket; the watermark only grows.
//! * The publisher stores the new watermark *before* it takes the waiter lock, and a waiter
//!   re-checks the watermark *after* registering under that lock, so no wake-up is lost.
//! * A failure holds until [`Watermark::recover`]: once published, every waiter whose ticket is
//!   not yet durable (now or later) gets the error. Recovery (the engine reopened its store)
//!   turns the tickets that were not durable at the failure, up to the last one handed out, into
//!   a *lost range* for good: they are never reported durable, whatever a later sync publishes.
//!   Tickets after the range are waited for as usual.
//! * The fast path checks `lost_hi` after `durable` (both acquire), and recovery raises
//!   `lost_hi` before it publishes past the range, so a waiter that sees the new watermark
//!   also sees the range.
//! * No async runtime is assumed: [`DurableFuture`] only uses the standard `Waker`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use crate::{Result, StorageError, WriteFault};

/// Position of a committed batch in the engine's durability order. The default ticket (0) is
/// durable from the start: engines without deferred durability hand it out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitTicket(pub(crate) u64);

impl CommitTicket {
    /// A ticket that needs no waiting.
    pub const DURABLE: CommitTicket = CommitTicket(0);

    /// The later of two tickets: waiting for it covers both.
    #[must_use]
    pub fn max(self, other: CommitTicket) -> CommitTicket {
        CommitTicket(self.0.max(other.0))
    }

    /// True if nothing needs to be waited for.
    pub fn is_durable_already(self) -> bool {
        self.0 == 0
    }
}

#[derive(Default)]
struct Waiters {
    failed: Option<WriteFault>,
    /// Ticket ranges `(after, upto]` lost to failures the engine recovered from.
    lost: Vec<(u64, u64, WriteFault)>,
    wakers: Vec<(u64, Waker)>,
    /// Threads blocked in [`Watermark::wait`].
    blocked: usize,
}

/// The highest durable ticket, and everyone waiting for it to grow.
#[derive(Default)]
pub(crate) struct Watermark {
    durable: AtomicU64,
    /// Set while a failure is recorded (fast check without the lock).
    failed: AtomicBool,
    /// The highest ticket of any lost range (0: none); tickets above it are never lost.
    lost_hi: AtomicU64,
    waiters: Mutex<Waiters>,
    cv: Condvar,
}

/// The error of a ticket the failed sync did not cover.
fn sync_failed(e: &WriteFault) -> StorageError {
    StorageError::Refused(e.clone())
}

impl Watermark {
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Raises the watermark to `upto` and wakes the waiters it satisfies.
    pub(crate) fn publish(&self, upto: u64) {
        self.durable.fetch_max(upto, Ordering::AcqRel);
        let now = self.durable();
        let mut w = self.waiters.lock();
        let mut i = 0;
        while i < w.wakers.len() {
            if w.wakers[i].0 <= now {
                w.wakers.swap_remove(i).1.wake();
            } else {
                i += 1;
            }
        }
        if w.blocked > 0 {
            self.cv.notify_all();
        }
    }

    /// Records a failure (the first one is kept) and wakes everyone.
    pub(crate) fn fail(&self, error: WriteFault) {
        let mut w = self.waiters.lock();
        w.failed.get_or_insert(error);
        self.failed.store(true, Ordering::Release);
        for (_, waker) in w.wakers.drain(..) {
            waker.wake();
        }
        self.cv.notify_all();
    }

    /// The recorded failure, if any.
    pub(crate) fn failure(&self) -> Option<WriteFault> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.waiters.lock().failed.clone()
    }

    /// Ends the recorded failure after the engine recovered: every ticket after the durable
    /// watermark up to `committed` (the last ticket handed out; the caller guarantees no commit
    /// is in flight) is lost for good, and the watermark moves to `committed` so that the next
    /// sync covers only tickets handed out from now on. Does nothing without a failure.
    pub(crate) fn recover(&self, committed: u64) {
        let mut w = self.waiters.lock();
        let Some(fault) = w.failed.take() else {
            return;
        };
        let durable = self.durable();
        if committed > durable {
            w.lost.push((durable, committed, fault));
            self.lost_hi.fetch_max(committed, Ordering::AcqRel);
        }
        self.failed.store(false, Ordering::Release);
        drop(w);
        self.publish(committed);
    }

    /// Whether `ticket` is durable (`Some(Ok)`), lost or failed (`Some(Err)`), or still to be
    /// waited for (`None`); called under the waiter lock.
    fn state(&self, w: &Waiters, ticket: u64) -> Option<Result<()>> {
        if ticket <= self.lost_hi.load(Ordering::Acquire) {
            if let Some((_, _, e)) = w
                .lost
                .iter()
                .find(|(after, upto, _)| *after < ticket && ticket <= *upto)
            {
                return Some(Err(sync_failed(e)));
            }
        }
        if self.durable() >= ticket {
            return Some(Ok(()));
        }
        w.failed.as_ref().map(|e| Err(sync_failed(e)))
    }

    /// The lock-free answer for a ticket that is durable and outside every lost range.
    #[inline]
    fn durable_fast(&self, ticket: u64) -> bool {
        self.durable() >= ticket && ticket > self.lost_hi.load(Ordering::Acquire)
    }

    /// Blocks the calling thread until `ticket` is durable.
    pub(crate) fn wait(&self, ticket: CommitTicket) -> Result<()> {
        if self.durable_fast(ticket.0) {
            return Ok(());
        }
        let mut w = self.waiters.lock();
        w.blocked += 1;
        let res = loop {
            if let Some(res) = self.state(&w, ticket.0) {
                break res;
            }
            self.cv.wait(&mut w);
        };
        w.blocked -= 1;
        res
    }

    fn poll_ticket(&self, ticket: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.durable_fast(ticket) {
            return Poll::Ready(Ok(()));
        }
        let mut w = self.waiters.lock();
        if let Some(res) = self.state(&w, ticket) {
            return Poll::Ready(res);
        }
        match w
            .wakers
            .iter_mut()
            .find(|(t, k)| *t == ticket && k.will_wake(cx.waker()))
        {
            Some(_) => {}
            None => w.wakers.push((ticket, cx.waker().clone())),
        }
        Poll::Pending
    }
}

/// Resolves once a [`CommitTicket`] is durable (or the engine failed to make it so).
#[must_use = "a future does nothing unless awaited"]
pub struct DurableFuture {
    state: Option<(Arc<Watermark>, u64)>,
}

impl DurableFuture {
    /// A future that is ready at once.
    pub fn ready() -> Self {
        Self { state: None }
    }

    pub(crate) fn new(watermark: Arc<Watermark>, ticket: CommitTicket) -> Self {
        if ticket.0 == 0 {
            return Self::ready();
        }
        Self {
            state: Some((watermark, ticket.0)),
        }
    }
}

impl Future for DurableFuture {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &self.state {
            None => Poll::Ready(Ok(())),
            Some((wm, ticket)) => wm.poll_ticket(*ticket, cx),
        }
    }
}
