//! Item lock stripes of an embedded engine: a fixed array of mutexes, an item's stripe chosen
//! by a hash of its table and key. The locking protocol lives here, apart from the engine, so
//! that the loom model test `tests/loom_stripes.rs` drives this same code.
//!
//! Invariants:
//! - a holder of several stripes took them in ascending index order, each at most once (two
//!   items may share a stripe), so holders cannot wait for each other in a cycle: no deadlock;
//! - one stripe is held without allocating (the single-item write path).

use crate::sync::{Mutex, MutexGuard};

/// `N` stripes (a constant, so that choosing one costs no division).
pub(crate) struct Stripes<const N: usize> {
    stripes: Vec<Mutex<()>>,
}

/// Held stripes, released on drop.
#[allow(dead_code)] // the guards are only held, for their `Drop`
pub(crate) enum StripeGuards<'a> {
    None,
    One(MutexGuard<'a, ()>),
    Many(Vec<MutexGuard<'a, ()>>),
}

impl<const N: usize> Stripes<N> {
    pub(crate) fn new() -> Stripes<N> {
        const { assert!(N > 0) };
        Stripes {
            stripes: (0..N).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The stripe of `key` in table `table_id` (FNV-1a).
    pub(crate) fn index(table_id: &str, key: &[u8]) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in table_id.as_bytes().iter().chain(key) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h % N as u64) as usize
    }

    /// Locks stripe `i` (an index from [`Stripes::index`]).
    pub(crate) fn lock_one(&self, i: usize) -> StripeGuards<'_> {
        StripeGuards::One(self.stripes[i].lock())
    }

    /// Locks the stripes `idx` (in any order, repeats allowed): ascending, each once.
    pub(crate) fn lock_many(&self, mut idx: Vec<usize>) -> StripeGuards<'_> {
        idx.sort_unstable();
        idx.dedup();
        StripeGuards::Many(idx.into_iter().map(|i| self.stripes[i].lock()).collect())
    }

    /// True if nobody holds stripe `i` now.
    pub(crate) fn idle(&self, i: usize) -> bool {
        self.stripes[i].try_lock().is_some()
    }

    /// Waits until nobody holds stripe `i`.
    pub(crate) fn wait(&self, i: usize) {
        drop(self.stripes[i].lock());
    }
}
