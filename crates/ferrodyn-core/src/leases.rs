//! Leases: work that must run once per cluster on a shared engine.
//!
//! On an embedded engine one process owns the data and runs the background work (TTL sweeps,
//! stream trimming, resuming index builds) itself. On a shared engine every node could; one
//! node at a time does, the holder of the lease `background`, a row of the `leases` keyspace:
//! `holder node id (16 bytes) ‖ expiry (ms since the epoch, u64 BE)`. Each node's
//! cluster-sync thread takes or renews it every [`crate::CLUSTER_SYNC`] inside a storage
//! transaction that locks the row; a lease not renewed for [`LEASE_TTL`] (its holder died or
//! lost the database) is taken over by the next node that asks.
//!
//! Invariant: leases are for efficiency, not for correctness. Every piece of leased work is
//! safe to run twice or concurrently (TTL deletions re-check expiry under the item's lock,
//! trims delete what is past retention, backfills write the entries the items imply), so two
//! nodes that both believe they hold the lease (clock skew between nodes larger than the
//! margin below) waste work and break nothing.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrodyn_model::Error;
use ferrodyn_storage::WriteBatch;

use crate::locks::txn_err;
use crate::{storage_err, Engine};

/// Keyspace of leases (shared engines).
pub(crate) const LEASES: &str = "leases";
/// The lease of the background worker.
pub(crate) const BACKGROUND: &str = "background";
/// How long a lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// A holder stops using its lease this long before it expires, to absorb clock skew.
const MARGIN: Duration = Duration::from_secs(2);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn decode(raw: &[u8]) -> Option<([u8; 16], u64)> {
    let holder: [u8; 16] = raw.get(..16)?.try_into().ok()?;
    let expiry = u64::from_be_bytes(raw.get(16..24)?.try_into().ok()?);
    Some((holder, expiry))
}

impl Engine {
    pub(crate) fn open_leases(&self) -> Result<(), Error> {
        if self.shared {
            self.storage.create_keyspace(LEASES).map_err(storage_err)?;
            self.storage
                .create_keyspace(crate::transact::TOKENS)
                .map_err(storage_err)?;
        }
        Ok(())
    }

    /// Takes or renews the lease `name` for this node. True if this node holds it now.
    pub(crate) fn renew_lease(&self, name: &str) -> Result<bool, Error> {
        let mut txn = self.storage.begin().map_err(txn_err)?;
        let row = txn
            .lock(&[(LEASES, name.as_bytes())])
            .map_err(txn_err)?
            .pop()
            .flatten();
        let now = now_ms();
        if let Some((holder, expiry)) = row.as_deref().and_then(decode) {
            if holder != self.node_id && expiry > now {
                return Ok(false); // held by another live node; dropping rolls back
            }
        }
        let until = now + LEASE_TTL.as_millis() as u64;
        let mut value = self.node_id.to_vec();
        value.extend_from_slice(&until.to_be_bytes());
        let mut batch = WriteBatch::default();
        batch.put(LEASES, name.as_bytes(), value);
        txn.commit(batch).map_err(txn_err)?;
        self.lease_until
            .store(until - MARGIN.as_millis() as u64, Ordering::Release);
        Ok(true)
    }

    /// True if this node should run the cluster's background work now: always on an embedded
    /// engine; on a shared one while it holds the `background` lease.
    pub fn leads_background(&self) -> bool {
        !self.shared || self.lease_until.load(Ordering::Acquire) > now_ms()
    }
}
