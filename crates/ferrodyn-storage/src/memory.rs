//! The in-memory engine: one `BTreeMap` per keyspace behind a single `RwLock`.
//!
//! Invariants:
//! * Every batch is applied while holding the write lock, so readers (which take the read lock)
//!   see either none or all of it; `seq` is the number of the last applied batch.
//! * Snapshots are MVCC: a snapshot is a batch number `S` registered in `live` while the data
//!   read lock is held (so no writer can run between reading `seq` and registering). While any
//!   snapshot is live, writes keep older versions in [`Slot::Versions`]; a snapshot at `S` sees,
//!   per key, the newest version with `seq <= S`. A [`Slot::Value`] was written when no snapshot
//!   was live, hence before every live snapshot was taken, so it is visible to all of them.
//! * Versions no live snapshot can see are pruned on the next write to that key; keys that got
//!   versions are queued in `pending_gc` and collapsed back to `Value` (or removed if the newest
//!   version is a delete) by the first write that finds no live snapshot.
//! * `scan` holds the read lock while calling the callback: callbacks must not call back into
//!   the storage (a write would deadlock).
//! * `Durability` is ignored: nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::{
    check_keyspace_name, key_unstorable, range_is_empty, Durability, KeyspaceStats, Result,
    Snapshot, Storage, StorageError, WriteBatch,
};

/// Value history of one key.
enum Slot {
    /// Single current value, written while no snapshot was live.
    Value(Vec<u8>),
    /// Versions in ascending batch order; `None` is a delete. Never empty.
    Versions(Vec<(u64, Option<Vec<u8>>)>),
}

impl Slot {
    /// The value visible at batch `at` (`None` = latest).
    fn visible(&self, at: Option<u64>) -> Option<&[u8]> {
        match self {
            Slot::Value(v) => Some(v),
            Slot::Versions(vs) => {
                let found = match at {
                    None => vs.last(),
                    Some(at) => vs.iter().rev().find(|(s, _)| *s <= at),
                };
                found.and_then(|(_, v)| v.as_deref())
            }
        }
    }
}

#[derive(Default)]
struct MemKeyspace {
    map: BTreeMap<Vec<u8>, Slot>,
    /// Sum of key + latest value sizes of live keys.
    bytes: u64,
}

#[derive(Default)]
struct State {
    /// Number of the last applied batch.
    seq: u64,
    keyspaces: HashMap<String, MemKeyspace>,
    /// Keys holding `Slot::Versions` that may be collapsible once no snapshot is live.
    pending_gc: Vec<(String, Vec<u8>)>,
}

type ReopenListener = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Inner {
    state: RwLock<State>,
    /// Live snapshots: batch number -> count.
    live: Mutex<BTreeMap<u64, usize>>,
    /// Moved only by [`MemoryStorage::mark_reopened`].
    generation: std::sync::atomic::AtomicU64,
    reopen_listeners: Mutex<Vec<ReopenListener>>,
}

/// In-memory [`Storage`]: fast, nothing is persisted. Clones share the same data.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("keyspaces", &self.inner.state.read().keyspaces.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Behaves as an engine that has just reopened its store in place (see
    /// [`Storage::generation`]): the generation moves on and every reopen listener runs. The
    /// data stays as it is, so a test models what the reopen lost by writing to this storage
    /// directly first. The memory engine never does this on its own; it lets the layers above
    /// storage be tested against the reopen contract.
    pub fn mark_reopened(&self) {
        let listeners = self.inner.reopen_listeners.lock();
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for listener in listeners.iter() {
            listener();
        }
    }
}

fn scan_map(
    ks: &MemKeyspace,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    reverse: bool,
    at: Option<u64>,
    f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) {
    if range_is_empty(lower, upper) {
        return;
    }
    let range = ks.map.range::<[u8], _>((lower, upper));
    let mut visit = |(k, slot): (&Vec<u8>, &Slot)| match slot.visible(at) {
        Some(v) => f(k, v),
        None => true,
    };
    if reverse {
        for entry in range.rev() {
            if !visit(entry) {
                break;
            }
        }
    } else {
        for entry in range {
            if !visit(entry) {
                break;
            }
        }
    }
}

fn get_in(state: &State, keyspace: &str, key: &[u8], at: Option<u64>) -> Result<Option<Vec<u8>>> {
    let ks = state
        .keyspaces
        .get(keyspace)
        .ok_or_else(|| StorageError::KeyspaceNotFound(keyspace.to_owned()))?;
    if key_unstorable(key) {
        return Ok(None);
    }
    Ok(ks
        .map
        .get(key)
        .and_then(|s| s.visible(at))
        .map(<[u8]>::to_vec))
}

fn entry_size(key: &[u8], value: Option<&[u8]>) -> u64 {
    value.map_or(0, |v| (key.len() + v.len()) as u64)
}

/// Applies one operation at batch `seq`; `min_live` is the oldest live snapshot, if any.
/// Returns true if the key now holds versions (and should be queued for collapse).
fn apply_op(
    ks: &mut MemKeyspace,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    seq: u64,
    min_live: Option<u64>,
) -> bool {
    let old_size = entry_size(&key, ks.map.get(&key).and_then(|s| s.visible(None)));
    let new_size = entry_size(&key, value.as_deref());
    ks.bytes = ks.bytes.saturating_sub(old_size).saturating_add(new_size);

    let Some(min_live) = min_live else {
        match value {
            Some(v) => {
                ks.map.insert(key, Slot::Value(v));
            }
            None => {
                ks.map.remove(&key);
            }
        }
        return false;
    };

    match ks.map.get_mut(&key) {
        None => {
            // Absent in every snapshot; a delete has nothing to record.
            if value.is_some() {
                ks.map.insert(key, Slot::Versions(vec![(seq, value)]));
                return true;
            }
            false
        }
        Some(slot) => {
            if let Slot::Value(_) = slot {
                let Slot::Value(old) = std::mem::replace(slot, Slot::Versions(Vec::new())) else {
                    return false;
                };
                // Written before every live snapshot: visible to all of them.
                *slot = Slot::Versions(vec![(0, Some(old))]);
            }
            if let Slot::Versions(vs) = slot {
                vs.push((seq, value));
                // Keep the newest version every live snapshot can see, and everything newer.
                if let Some(keep_from) = vs.iter().rposition(|(s, _)| *s <= min_live) {
                    vs.drain(..keep_from);
                }
            }
            true
        }
    }
}

/// Collapses queued version chains; only valid while no snapshot is live.
fn collect_garbage(state: &mut State) {
    for (keyspace, key) in std::mem::take(&mut state.pending_gc) {
        let Some(ks) = state.keyspaces.get_mut(&keyspace) else {
            continue;
        };
        let Some(slot) = ks.map.get_mut(&key) else {
            continue;
        };
        if let Slot::Versions(vs) = slot {
            match vs.pop().and_then(|(_, v)| v) {
                Some(v) => *slot = Slot::Value(v),
                None => {
                    ks.map.remove(&key);
                }
            }
        }
    }
}

impl Storage for MemoryStorage {
    fn create_keyspace(&self, name: &str) -> Result<()> {
        check_keyspace_name(name)?;
        let mut state = self.inner.state.write();
        state.keyspaces.entry(name.to_owned()).or_default();
        Ok(())
    }

    fn drop_keyspace(&self, name: &str) -> Result<()> {
        let removed = self.inner.state.write().keyspaces.remove(name);
        // Free the data outside the lock.
        drop(removed);
        Ok(())
    }

    fn keyspace_exists(&self, name: &str) -> bool {
        self.inner.state.read().keyspaces.contains_key(name)
    }

    fn list_keyspaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.state.read().keyspaces.keys().cloned().collect();
        names.sort();
        names
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        get_in(&self.inner.state.read(), keyspace, key, None)
    }

    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let state = self.inner.state.read();
        let ks = state
            .keyspaces
            .get(keyspace)
            .ok_or_else(|| StorageError::KeyspaceNotFound(keyspace.to_owned()))?;
        scan_map(ks, lower, upper, reverse, None, f);
        Ok(())
    }

    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (names, ops) = batch.into_effective()?;
        let mut state = self.inner.state.write();
        if let Some(missing) = names.iter().find(|n| !state.keyspaces.contains_key(*n)) {
            return Err(StorageError::KeyspaceNotFound(missing.clone()));
        }
        // Writers hold the write lock, and snapshots register under the read lock, so `live`
        // cannot gain an older entry while this batch is applied.
        let min_live = self.inner.live.lock().keys().next().copied();
        if min_live.is_none() && !state.pending_gc.is_empty() {
            collect_garbage(&mut state);
        }
        state.seq += 1;
        let seq = state.seq;
        let State {
            keyspaces,
            pending_gc,
            ..
        } = &mut *state;
        for op in ops {
            let name = &names[op.ks];
            let Some(ks) = keyspaces.get_mut(name) else {
                continue; // checked above
            };
            let gc_key = min_live.is_some().then(|| op.key.clone());
            if apply_op(ks, op.key, op.value, seq, min_live) {
                if let Some(k) = gc_key {
                    pending_gc.push((name.clone(), k));
                }
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Box<dyn Snapshot> {
        let state = self.inner.state.read();
        let at = state.seq;
        *self.inner.live.lock().entry(at).or_insert(0) += 1;
        drop(state);
        Box::new(MemorySnapshot {
            inner: Arc::clone(&self.inner),
            at,
        })
    }

    fn stats(&self, keyspace: &str) -> Result<KeyspaceStats> {
        let state = self.inner.state.read();
        let ks = state
            .keyspaces
            .get(keyspace)
            .ok_or_else(|| StorageError::KeyspaceNotFound(keyspace.to_owned()))?;
        Ok(KeyspaceStats {
            approximate_keys: ks.map.len() as u64,
            approximate_bytes: ks.bytes,
        })
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn on_reopen(&self, listener: Box<dyn Fn() + Send + Sync>) {
        self.inner.reopen_listeners.lock().push(listener);
    }
}

struct MemorySnapshot {
    inner: Arc<Inner>,
    at: u64,
}

impl Drop for MemorySnapshot {
    fn drop(&mut self) {
        let mut live = self.inner.live.lock();
        if let Some(n) = live.get_mut(&self.at) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.at);
            }
        }
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        get_in(&self.inner.state.read(), keyspace, key, Some(self.at))
    }

    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let state = self.inner.state.read();
        let ks = state
            .keyspaces
            .get(keyspace)
            .ok_or_else(|| StorageError::KeyspaceNotFound(keyspace.to_owned()))?;
        scan_map(ks, lower, upper, reverse, Some(self.at), f);
        Ok(())
    }
}
