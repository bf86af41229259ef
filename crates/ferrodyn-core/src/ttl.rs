//! Time to Live: the per-table TTL setting (UpdateTimeToLive / DescribeTimeToLive) and the
//! background worker that deletes expired items; the worker also does the streams' upkeep and
//! the audit log's retention.
//!
//! Owns the `ttl` keyspace (key: table id, value: JSON [`TtlSpec`]).
//!
//! Invariants:
//! - an item expires only if its TTL attribute is a Number of epoch seconds in the past, and not
//!   more than five years in the past (DynamoDB ignores such values); any other item is kept;
//! - each expiry is an ordinary item change: it re-reads and re-checks the item under its lock,
//!   then goes through `write::stage_item_change` (so indexes and streams see it), with its
//!   stream record attributed to the service and its audit record to principal `ttl`;
//! - the worker takes one item lock at a time and never holds it across a scan; it stops when
//!   the engine is dropped.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use ferrodyn_model::{AttributeValue, Error, Item, Number};
use ferrodyn_storage::WriteBatch;
use parking_lot::{Condvar, Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::{itemcodec, now_epoch, storage_err, Engine, Table};

pub(crate) const TTL: &str = "ttl";
/// Items per scan chunk of the sweep.
const CHUNK: usize = 512;
const FIVE_YEARS_SECS: i64 = 5 * 365 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TtlSpec {
    attribute: String,
    enabled: bool,
}

/// TTL settings by table id.
#[derive(Debug, Default)]
pub(crate) struct TtlSpecs {
    specs: RwLock<HashMap<String, TtlSpec>>,
    /// Items deleted by sweeps since the engine opened (a figure for metrics).
    deleted: std::sync::atomic::AtomicU64,
}

/// DescribeTimeToLive's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlDescription {
    /// ENABLED or DISABLED.
    pub status: &'static str,
    pub attribute: Option<String>,
}

/// Stop signal of the background worker; raised when the engine is dropped.
#[derive(Debug, Default)]
pub(crate) struct Stopper {
    state: Arc<(Mutex<bool>, Condvar)>,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        *self.state.0.lock() = true;
        self.state.1.notify_all();
    }
}

fn not_found(name: &str) -> Error {
    Error::ResourceNotFound(format!(
        "Requested resource not found: Table: {name} not found"
    ))
}

/// True when `item` has expired at `now` under attribute `attr`.
pub fn is_expired(item: &Item, attr: &str, now: i64) -> bool {
    match item.get(attr) {
        Some(AttributeValue::N(n)) => {
            *n <= Number::from_i64(now) && *n >= Number::from_i64(now - FIVE_YEARS_SECS)
        }
        _ => false,
    }
}

/// What became of one item a sweep found expired.
enum Swept {
    Deleted,
    /// Gone or no longer expired.
    Skipped,
    /// The table was deleted or replaced: the sweep of it ends.
    TableChanged,
}

impl Engine {
    pub(crate) fn open_ttl(&self) -> Result<(), Error> {
        self.storage.create_keyspace(TTL).map_err(storage_err)?;
        let mut specs = HashMap::new();
        self.storage
            .scan(
                TTL,
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    if let (Ok(id), Ok(spec)) =
                        (std::str::from_utf8(k), serde_json::from_slice::<TtlSpec>(v))
                    {
                        specs.insert(id.to_string(), spec);
                    }
                    true
                },
            )
            .map_err(storage_err)?;
        *self.ttl.specs.write() = specs;
        Ok(())
    }

    pub fn update_time_to_live(
        &self,
        table: &str,
        attribute: &str,
        enabled: bool,
    ) -> Result<(), Error> {
        let _ddl = self.ddl.lock()?;
        let t = self
            .tables
            .read()
            .get(table)
            .cloned()
            .ok_or_else(|| not_found(table))?;
        if attribute.is_empty() || attribute.len() > 255 {
            return Err(Error::validation(
                "TimeToLiveSpecification.AttributeName must be between 1 and 255 characters long",
            ));
        }
        let current = self.ttl.specs.read().get(&t.def.id).cloned();
        match (&current, enabled) {
            (Some(c), true) if c.enabled && c.attribute == attribute => {
                return Err(Error::validation("TimeToLive is already enabled"));
            }
            (Some(c), true) if c.enabled => {
                return Err(Error::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {}",
                    c.attribute
                )));
            }
            (Some(c), false) if c.enabled && c.attribute != attribute => {
                return Err(Error::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {}",
                    c.attribute
                )));
            }
            (c, false) if !c.as_ref().is_some_and(|c| c.enabled) => {
                return Err(Error::validation("TimeToLive is already disabled"));
            }
            _ => {}
        }
        let spec = TtlSpec {
            attribute: attribute.to_string(),
            enabled,
        };
        let mut batch = WriteBatch::default();
        batch.put(
            TTL,
            t.def.id.as_bytes(),
            serde_json::to_vec(&spec).map_err(Error::internal)?,
        );
        // The audit record is in the same batch as the setting.
        self.write_control(batch, "UpdateTimeToLive", &t.def.name)?;
        self.ttl.specs.write().insert(t.def.id.clone(), spec);
        Ok(())
    }

    pub fn describe_time_to_live(&self, table: &str) -> Result<TtlDescription, Error> {
        let t = self
            .tables
            .read()
            .get(table)
            .cloned()
            .ok_or_else(|| not_found(table))?;
        Ok(match self.ttl.specs.read().get(&t.def.id) {
            Some(s) if s.enabled => TtlDescription {
                status: "ENABLED",
                attribute: Some(s.attribute.clone()),
            },
            _ => TtlDescription {
                status: "DISABLED",
                attribute: None,
            },
        })
    }

    /// One pass over every table with TTL enabled; returns the number of items deleted.
    pub fn sweep_expired(&self) -> Result<usize, Error> {
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        let mut deleted = 0;
        let audit_ctx = crate::audit::ttl_context();
        for t in tables {
            let Some(spec) = self.ttl.specs.read().get(&t.def.id).cloned() else {
                continue;
            };
            if spec.enabled {
                let n = self.sweep_table(&t, &spec.attribute, &audit_ctx)?;
                self.ttl
                    .deleted
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                deleted += n;
            }
        }
        Ok(deleted)
    }

    /// Items deleted by TTL sweeps since the engine opened.
    /// The TTL attribute of a table, when TTL is enabled on it.
    pub(crate) fn ttl_attribute(&self, def: &crate::TableDef) -> Option<String> {
        self.ttl
            .specs
            .read()
            .get(&def.id)
            .filter(|s| s.enabled)
            .map(|s| s.attribute.clone())
    }

    pub fn ttl_deleted(&self) -> u64 {
        self.ttl.deleted.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn sweep_table(
        &self,
        t: &Table,
        attr: &str,
        audit_ctx: &crate::audit::AuditContext,
    ) -> Result<usize, Error> {
        let mut deleted = 0;
        let mut from: Option<Vec<u8>> = None;
        loop {
            let now = now_epoch() as i64;
            let mut expired = Vec::new();
            let mut seen = 0usize;
            let mut last = None;
            let lower = from.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let r = self.storage.scan(
                &t.def.keyspace,
                lower,
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    seen += 1;
                    last = Some(k.to_vec());
                    if let Ok(item) = itemcodec::decode_item(v) {
                        if is_expired(&item, attr, now) {
                            expired.push(k.to_vec());
                        }
                    }
                    seen < CHUNK
                },
            );
            if r.is_err() {
                // The table was dropped while we swept it.
                return Ok(deleted);
            }
            for key in expired {
                let swept = self.retrying(&key[..], |engine, key| {
                    engine.expire_item(t, key, attr, audit_ctx)
                })?;
                match swept {
                    Swept::Deleted => {}
                    Swept::Skipped => continue,
                    Swept::TableChanged => return Ok(deleted),
                }
                deleted += 1;
            }
            if seen < CHUNK {
                return Ok(deleted);
            }
            from = last;
        }
    }

    /// Deletes one item the sweep found expired, if it still is, under its lock.
    fn expire_item(
        &self,
        t: &Table,
        key: &[u8],
        attr: &str,
        audit_ctx: &crate::audit::AuditContext,
    ) -> Result<Swept, Error> {
        // The definition may have changed (stream enabled, index added) since the scan.
        let Some(current) = self.tables.read().get(&t.def.name).cloned() else {
            return Ok(Swept::TableChanged);
        };
        if current.def.id != t.def.id {
            return Ok(Swept::TableChanged);
        }
        let locks = self.lock_item(&current, key)?;
        let Some(item) = locks.item(&current.def, key)? else {
            return Ok(Swept::Skipped);
        };
        if !is_expired(&item, attr, now_epoch() as i64) {
            return Ok(Swept::Skipped);
        }
        // Recorded as the TTL service, in the audit log as in the stream.
        let mut batch = self.item_batch("TTL");
        self.with_audit_context(audit_ctx, || {
            let delta = crate::streams::as_service(|| {
                crate::write::stage_item_change(
                    &current,
                    key,
                    crate::write::Old::Item(&item),
                    None,
                    &mut batch,
                )
            });
            self.commit_locked(locks, batch, [(&*current, delta)])
        })?;
        Ok(Swept::Deleted)
    }

    /// Starts the background worker: TTL sweeps every `config.ttl_interval`, stream upkeep.
    /// It holds only a weak reference, so it ends when the engine is dropped.
    pub fn start_background(self: &Arc<Self>) {
        let _ = self.me.set(Arc::downgrade(self));
        // Restores and backups interrupted by a restart continue (or are cleaned up) now that
        // they can run in the background.
        if let Err(e) = self.resume_loads() {
            tracing::error!(error = %e, "cannot resume restores");
        }
        if let Err(e) = self.clean_backups(true) {
            tracing::error!(error = %e, "cannot clean up interrupted backups");
        }
        if self.shared {
            self.start_cluster_sync();
        }
        let weak = Arc::downgrade(self);
        let stop = self.stopper.state.clone();
        let interval = self.config.ttl_interval.max(Duration::from_millis(50));
        let spawned = std::thread::Builder::new()
            .name("ttl-streams".into())
            .spawn(move || loop {
                {
                    let mut stopped = stop.0.lock();
                    if !*stopped {
                        stop.1.wait_for(&mut stopped, interval);
                    }
                    if *stopped {
                        return;
                    }
                }
                let Some(engine) = weak.upgrade() else {
                    return;
                };
                if !engine.leads_background() {
                    continue; // another node of the cluster does this work
                }
                // Every task below writes: while the storage refuses writes it would only
                // fail and log each round. The storage logs its refusal itself; the tasks
                // resume when it ends (a full disk) and never run again after a failure.
                if engine.write_fault().is_some() {
                    continue;
                }
                if let Err(e) = engine.sweep_expired() {
                    tracing::warn!(error = %e, "TTL sweep failed");
                }
                engine.prune_in_flight();
                if let Err(e) = engine.trim_streams() {
                    tracing::warn!(error = %e, "stream trim failed");
                }
                if let Err(e) = engine.trim_audit() {
                    tracing::warn!(error = %e, "audit log trim failed");
                }
                if let Err(e) = engine.trim_history() {
                    tracing::warn!(error = %e, "point-in-time history trim failed");
                }
                if let Err(e) = engine.clean_backups(false) {
                    tracing::warn!(error = %e, "backup upkeep failed");
                }
                if engine.shared {
                    if let Err(e) = engine.trim_tokens() {
                        tracing::warn!(error = %e, "token trim failed");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the TTL worker");
        }
    }
}

impl Engine {
    /// Starts the thread that keeps a shared engine's node in step with the others
    /// ([`Engine::sync_cluster`] every [`crate::CLUSTER_SYNC`]); it ends with the engine.
    fn start_cluster_sync(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let stop = self.stopper.state.clone();
        let spawned = std::thread::Builder::new()
            .name("cluster-sync".into())
            .spawn(move || loop {
                {
                    let mut stopped = stop.0.lock();
                    if !*stopped {
                        stop.1.wait_for(&mut stopped, crate::CLUSTER_SYNC);
                    }
                    if *stopped {
                        return;
                    }
                }
                let Some(engine) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = engine.sync_cluster() {
                    tracing::warn!(error = %e, "cluster sync failed");
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the cluster sync thread");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: AttributeValue) -> Item {
        let mut i = Item::new();
        i.insert("e".into(), v);
        i
    }

    #[test]
    fn expiry_rules() {
        let now = 2_000_000_000;
        let n = |s: &str| AttributeValue::N(Number::parse(s).expect("number"));
        assert!(is_expired(&item(n("1999999999")), "e", now));
        assert!(is_expired(&item(n("199999999.9e1")), "e", now));
        assert!(!is_expired(&item(n("2000000001")), "e", now));
        assert!(!is_expired(&item(n("162777600")), "e", now));
        assert!(!is_expired(&item(AttributeValue::S("1".into())), "e", now));
        assert!(!is_expired(&item(n("1")), "other", now));
    }
}
