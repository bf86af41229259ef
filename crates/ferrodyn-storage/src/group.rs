//! Group commit: the synchronization protocol between committing writers and the one thread
//! that syncs the journal, without the I/O (the fjall engine passes its journal append and its
//! sync in as closures). The loom model test `tests/loom_group.rs` drives this same code.
//!
//! Invariants:
//! * A writer's batch is appended to the journal first ([`GroupCommit::commit`] runs the
//!   append), then the writer takes a ticket: tickets count appended batches. The sync thread
//!   reads `target = committed tickets` *before* it syncs, so the sync covers every batch with
//!   a ticket <= target, and only then publishes `durable = target` on the [`Watermark`].
//!   Batches appended during a sync share the next one. Writers never sync themselves.
//! * No lost wake-up of the sync thread: a writer increments `committed` and then reads
//!   `idle`; the sync thread sets `idle` under `control` and then re-reads `committed` before it
//!   waits (all `SeqCst`). Either it sees the new ticket or the writer sees it idle and notifies
//!   under `control`, which it holds until it waits. The timed wait is only for `Buffered`
//!   background syncs; correctness never relies on it timing out.
//! * A failed sync is recorded on the watermark (every waiter whose ticket is not durable, now
//!   or later, gets the error) and `run` returns; later commits are refused before they reach
//!   the journal. Only [`GroupCommit::recover`], called by the engine after it reopened its
//!   store with no commit in flight, ends the failure: the tickets it left undurable stay lost
//!   (see `durable.rs`) and the engine calls `run` again.

use std::time::{Duration, Instant};

use crate::durable::{CommitTicket, Watermark};
use crate::sync::{Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use crate::{Result, StorageError, WriteFault};

/// What the sync thread and the engine's other background threads are told through
/// [`GroupCommit::control`].
#[derive(Default)]
pub(crate) struct Control {
    pub(crate) stop: bool,
}

/// Tickets, the durable watermark, and the wake-up protocol of the sync thread.
pub(crate) struct GroupCommit {
    /// Tickets handed out to committed durable batches.
    committed: AtomicU64,
    watermark: Arc<Watermark>,
    /// Wakes the sync thread; guards `Control`.
    control: Mutex<Control>,
    work: Condvar,
    /// The sync thread is (about to be) waiting on `work`; committers notify it only then.
    idle: AtomicBool,
}

impl GroupCommit {
    pub(crate) fn new() -> GroupCommit {
        GroupCommit {
            committed: AtomicU64::new(0),
            watermark: Arc::new(Watermark::default()),
            control: Mutex::new(Control::default()),
            work: Condvar::new(),
            idle: AtomicBool::new(false),
        }
    }

    pub(crate) fn watermark(&self) -> &Arc<Watermark> {
        &self.watermark
    }

    /// The lock the sync thread waits under; other background threads of the engine wait
    /// under it too (with their own condition variables) for `stop`.
    pub(crate) fn control(&self) -> &Mutex<Control> {
        &self.control
    }

    /// Appends a batch with `append` (refused once a sync failed) and returns its ticket.
    pub(crate) fn commit(&self, append: impl FnOnce() -> Result<()>) -> Result<CommitTicket> {
        if let Some(e) = self.watermark.failure() {
            return Err(StorageError::Refused(e));
        }
        append()?;
        let ticket = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        // Pairs with the sync thread setting `idle` before re-checking `committed`: either it
        // sees this ticket or this sees it idle and wakes it.
        if self.idle.load(Ordering::SeqCst) {
            let _c = self.control.lock();
            self.work.notify_one();
        }
        Ok(CommitTicket(ticket))
    }

    /// Blocks until `ticket` is durable, or fails if the sync that should cover it failed.
    pub(crate) fn wait(&self, ticket: CommitTicket) -> Result<()> {
        self.watermark.wait(ticket)
    }

    /// Ends a recorded failure: the tickets handed out so far that are not durable are lost for
    /// good. The caller guarantees that no commit is in flight (between its append and its
    /// ticket) and that the appends of those tickets are not in the journal the next sync
    /// covers, or do not matter (see the engine's reopen).
    pub(crate) fn recover(&self) {
        self.watermark
            .recover(self.committed.load(Ordering::SeqCst));
    }

    /// Waits up to `d` under [`GroupCommit::control`]; false once [`GroupCommit::stop`] was
    /// called.
    pub(crate) fn pause(&self, d: Duration) -> bool {
        let mut c = self.control.lock();
        if !c.stop {
            self.work.wait_for(&mut c, d);
        }
        !c.stop
    }

    /// Tells the sync thread (and whoever else waits under [`GroupCommit::control`] for it) to
    /// return; the caller wakes its own condition variables.
    pub(crate) fn stop(&self) {
        self.control.lock().stop = true;
        self.work.notify_all();
    }

    /// The sync thread: runs `sync` (which must make every batch appended before it was
    /// called durable; it is told how many batches it covers) whenever committed tickets are
    /// not yet durable, and `background` every `interval`; returns after [`GroupCommit::stop`],
    /// a failed `sync`, or a `background` that returned false.
    pub(crate) fn run(
        &self,
        interval: Duration,
        mut sync: impl FnMut(u64) -> Result<()>,
        mut background: impl FnMut() -> bool,
    ) {
        let mut last_background = Instant::now();
        loop {
            let target = self.committed.load(Ordering::SeqCst);
            let durable = self.watermark.durable();
            if target > durable {
                match sync(target - durable) {
                    Ok(()) => self.watermark.publish(target),
                    Err(e) => {
                        tracing::error!(error = %e, "journal sync failed; refusing durable writes");
                        self.watermark.fail(match e {
                            StorageError::Refused(fault) => fault,
                            other => WriteFault::Failed(other.to_string()),
                        });
                        return;
                    }
                }
                continue;
            }
            if last_background.elapsed() >= interval {
                last_background = Instant::now();
                if !background() {
                    return;
                }
            }
            let mut c = self.control.lock();
            if c.stop {
                return;
            }
            self.idle.store(true, Ordering::SeqCst);
            // A read-modify-write, not a load: it is ordered after the `idle` store by
            // acquire/release alone (see the module invariants).
            if self.committed.fetch_add(0, Ordering::SeqCst) == self.watermark.durable() {
                let wait = interval.saturating_sub(last_background.elapsed());
                self.work
                    .wait_for(&mut c, wait.max(Duration::from_millis(1)));
            }
            self.idle.store(false, Ordering::SeqCst);
            if c.stop {
                return;
            }
        }
    }
}
