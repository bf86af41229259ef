//! Model checks of group commit and the durable watermark: the production units
//! (`src/group.rs`, `src/durable.rs`) compiled against loom's primitives
//! (`ferrodyn_sim::sync`), run under every interleaving within a preemption bound.
//!
//! The journal is modelled as a list of records (the append `GroupCommit::commit` runs) and a
//! sync as "the journal's length when the sync ran is now durable", which is what the engine's
//! sync does to the real journal (it covers every byte handed over before it). A crash loses
//! exactly the records past the durable length, so "an acknowledged write survives any crash"
//! is "its record is inside the durable length when its wait returns".
//!
//! The regular test run uses a small preemption bound (seconds); a longer run by hand:
//! `LOOM_MAX_PREEMPTIONS=4 cargo test --release -p ferrodyn-storage --test loom_group -- --nocapture`
//! (see docs/reliability.md for the figures).

mod sync {
    pub(crate) use ferrodyn_sim::sync::*;
}

#[allow(dead_code)]
#[path = "../src/durable.rs"]
mod durable;
#[allow(dead_code)]
#[path = "../src/group.rs"]
mod group;

pub(crate) use ferrodyn_storage::{Result, StorageError, WriteFault};

use std::time::Duration;

use ferrodyn_sim::loom;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use group::GroupCommit;

/// Preemption bound of the regular test run.
const PREEMPTIONS: usize = 2;

/// The modelled journal: appended records (writer ids) and the length a sync made durable.
#[derive(Default)]
struct Journal {
    records: Mutex<Vec<usize>>,
    /// Records below this index survive a crash.
    durable: AtomicUsize,
    /// Syncs run so far.
    syncs: AtomicUsize,
}

impl Journal {
    /// Appends a record for `writer`; returns its index.
    fn append(&self, writer: usize) -> usize {
        let mut r = self.records.lock().unwrap();
        r.push(writer);
        r.len() - 1
    }

    /// The engine's sync: everything appended so far becomes durable, unless this is sync
    /// number `fail_at` (counting from 1), which fails and makes nothing durable.
    fn sync(&self, fail_at: Option<usize>) -> Result<()> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == fail_at {
            return Err(StorageError::Engine("injected fsync failure".into()));
        }
        let len = self.records.lock().unwrap().len();
        self.durable.fetch_max(len, Ordering::SeqCst);
        Ok(())
    }
}

/// Starts the sync thread on `group` over `journal`.
fn sync_thread(
    group: &Arc<GroupCommit>,
    journal: &Arc<Journal>,
    fail_at: Option<usize>,
) -> thread::JoinHandle<()> {
    let (g, j) = (Arc::clone(group), Arc::clone(journal));
    thread::spawn(move || g.run(Duration::MAX, |_| j.sync(fail_at), || true))
}

/// Every acknowledged write is inside the durable journal when its wait returns, and no
/// writer or the sync thread is left waiting (loom reports a deadlock if every thread blocks).
#[test]
fn acknowledged_writes_are_durable_and_no_waiter_is_stranded() {
    ferrodyn_sim::model("group commit, 2 writers", PREEMPTIONS, || {
        let group = Arc::new(GroupCommit::new());
        let journal = Arc::new(Journal::default());
        let syncer = sync_thread(&group, &journal, None);
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (g, j) = (Arc::clone(&group), Arc::clone(&journal));
                thread::spawn(move || {
                    let mut pos = usize::MAX;
                    let ticket = g
                        .commit(|| {
                            pos = j.append(w);
                            Ok(())
                        })
                        .unwrap();
                    g.wait(ticket).unwrap();
                    assert!(
                        j.durable.load(Ordering::SeqCst) > pos,
                        "writer {w} acknowledged before its record was synced"
                    );
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        group.stop();
        syncer.join().unwrap();
        assert_eq!(group.watermark().durable(), 2, "every ticket was published");
    });
}

/// Deferred durability (core `write.rs`): a writer commits under the item's lock, releases it
/// and only then awaits its ticket (as a future, the way the server does). A second writer
/// that read the first one's change under the same lock commits after it; once the second is
/// acknowledged, the first one's record is durable too, whichever of them is acknowledged
/// first.
#[test]
fn a_write_that_read_another_is_acknowledged_only_after_both_are_durable() {
    // Two item lock steps per writer make this the largest model: one preemption in the
    // regular run, more by hand.
    ferrodyn_sim::model("deferred durability, reader after writer", 1, || {
        let group = Arc::new(GroupCommit::new());
        let journal = Arc::new(Journal::default());
        // The item: the journal index of the record that wrote its current value.
        let item: Arc<Mutex<Option<usize>>> = Arc::new(Mutex::new(None));
        let syncer = sync_thread(&group, &journal, None);
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (g, j, item) = (Arc::clone(&group), Arc::clone(&journal), Arc::clone(&item));
                thread::spawn(move || {
                    let (ticket, read) = {
                        let mut value = item.lock().unwrap();
                        let read = *value;
                        let mut pos = usize::MAX;
                        let ticket = g
                            .commit(|| {
                                pos = j.append(w);
                                Ok(())
                            })
                            .unwrap();
                        *value = Some(pos);
                        (ticket, read)
                    }; // the item lock is released before durability
                    let future = durable::DurableFuture::new(Arc::clone(g.watermark()), ticket);
                    loom::future::block_on(future).unwrap();
                    let durable = j.durable.load(Ordering::SeqCst);
                    if let Some(earlier) = read {
                        assert!(
                            durable > earlier,
                            "writer {w} acknowledged a change built on an undurable one"
                        );
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        group.stop();
        syncer.join().unwrap();
    });
}

/// A failed sync fails every waiter it should have covered (none is left waiting), no write
/// that no successful sync covered is acknowledged, and later commits are refused before they
/// reach the journal. Checked for a failure of the first sync and of the second.
#[test]
fn a_failed_sync_fails_its_waiters_and_every_later_write() {
    for fail_at in [1, 2] {
        ferrodyn_sim::model("group commit, failing sync", PREEMPTIONS, move || {
            let group = Arc::new(GroupCommit::new());
            let journal = Arc::new(Journal::default());
            let syncer = sync_thread(&group, &journal, Some(fail_at));
            let writers: Vec<_> = (0..2)
                .map(|w| {
                    let (g, j) = (Arc::clone(&group), Arc::clone(&journal));
                    thread::spawn(move || {
                        let mut pos = None;
                        let res = g
                            .commit(|| {
                                pos = Some(j.append(w));
                                Ok(())
                            })
                            .and_then(|t| g.wait(t));
                        let durable = j.durable.load(Ordering::SeqCst);
                        match (res, pos) {
                            (Ok(()), Some(p)) => assert!(durable > p, "acknowledged undurable"),
                            (Ok(()), None) => unreachable!("acknowledged without a record"),
                            // An error leaves the outcome open, as DynamoDB's
                            // InternalServerError does: the record may have been covered by
                            // the sync before the failing one without the writer's ticket
                            // being published yet.
                            (Err(_), _) => {}
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            // After the syncer has stopped (failed, or stopped with nothing to do), any write
            // that is not durable yet gets the error, and new ones never reach the journal.
            group.stop();
            syncer.join().unwrap();
            let before = journal.records.lock().unwrap().len();
            if group.watermark().failure().is_some() {
                let res = group.commit(|| {
                    journal.append(9);
                    Ok(())
                });
                assert!(res.is_err(), "a commit after a failed sync was accepted");
                assert_eq!(journal.records.lock().unwrap().len(), before);
            }
        });
    }
}
