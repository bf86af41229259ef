//! Stream triggers: the consumer side of DynamoDB Streams that Lambda's event source mappings
//! provide on AWS, run by the server itself. A trigger = a table's stream + a target (an
//! HTTP(S) endpoint receiving Lambda's DynamoDB event, or a NATS JetStream subject) + Lambda's
//! delivery settings (batch size and window, starting position, parallelization, retries,
//! record age, bisection, partial batch responses, filters, an on-failure destination).
//!
//! Triggers read the stream through the engine's public Streams methods (`describe_stream`,
//! `get_shard_iterator`, `get_records`), like any consumer. Definitions, checkpoints and the
//! last error are engine records (`Engine::put_record`), so they survive restarts and every node
//! of a cluster sees them.
//!
//! Invariants:
//! - a shard's checkpoint (the last sequence number acknowledged by the target, filtered out,
//!   or handed to the on-failure destination) is written durably only after that happened:
//!   after a crash delivery resumes after it, so nothing acknowledged is lost and nothing is
//!   skipped; what was delivered but not yet checkpointed is delivered again (at least once);
//! - records of one item are delivered in sequence order: a shard's records are split into
//!   `ParallelizationFactor` lanes by item key, a lane's batches go one after the other, and a
//!   child shard is read only once its parent is finished;
//! - workers run only where background work runs (`Engine::leads_background`: the process of
//!   an embedded engine, the lease holder of a shared one);
//! - a target error, timeout or partial batch response never stops the other triggers: each
//!   trigger has its own worker thread.

#![forbid(unsafe_code)]

pub mod event;
pub mod settings;
pub mod target;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferrodyn_core::Engine;
use ferrodyn_model::Error;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

pub use settings::{FailureDestination, Settings, TargetSpec};

/// Record spaces (`Engine::put_record`).
const TRIGGERS: &str = "triggers";
const CHECKPOINTS: &str = "trigger-checkpoints";
const STATUS: &str = "trigger-status";

/// How often the supervisor looks for triggers created, changed or deleted elsewhere.
const REFRESH: Duration = Duration::from_millis(250);

pub(crate) use ferrodyn_core::now_epoch as now;

/// Settings of the trigger service.
#[derive(Debug, Clone)]
pub struct TriggersConfig {
    /// Pause between two polls of a stream with nothing new.
    pub poll_interval: Duration,
    /// First pause before a retry (doubled per attempt, with jitter).
    pub backoff_base: Duration,
    /// Longest pause before a retry.
    pub backoff_cap: Duration,
}

impl Default for TriggersConfig {
    fn default() -> Self {
        TriggersConfig {
            poll_interval: Duration::from_millis(10),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

/// A trigger as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggerRecord {
    pub trigger_id: String,
    pub table_name: String,
    /// The stream the trigger reads (the table's stream when it was created).
    pub event_source_arn: String,
    pub target: TargetSpec,
    pub settings: Settings,
    /// Epoch seconds.
    pub created: f64,
    pub last_modified: f64,
    /// Records written before this instant (epoch seconds) are skipped: the creation time for
    /// LATEST, the timestamp for AT_TIMESTAMP, 0 for TRIM_HORIZON.
    pub start_time: f64,
}

/// The last outcome of a trigger's deliveries (persisted when it changes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    /// "OK" or "PROBLEM: <error>".
    pub last_processing_result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_time: Option<f64>,
}

/// Counters of one trigger in this process.
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub filtered: AtomicU64,
    /// Age (ms) of the last record delivered, when it was delivered.
    pub iterator_age_ms: AtomicU64,
}

/// A trigger's figures for the metrics.
#[derive(Debug, Clone)]
pub struct TriggerFigures {
    pub trigger_id: String,
    pub table_name: String,
    pub delivered: u64,
    pub failed: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub iterator_age_seconds: f64,
}

/// DescribeTrigger's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggerDescription {
    #[serde(flatten)]
    pub record: TriggerRecord,
    /// Enabled or Disabled.
    pub state: &'static str,
    #[serde(flatten)]
    pub status: Status,
    /// Records of the stream not yet past the checkpoints (counted up to 100000).
    pub lag_records: u64,
    /// Age in seconds of the oldest of them (0 without lag).
    pub lag_seconds: f64,
    pub delivered: u64,
    pub failed: u64,
    pub retried: u64,
    pub dead_lettered: u64,
}

/// A shard's checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Checkpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<String>,
    #[serde(default)]
    pub done: bool,
    /// With `ParallelizationFactor` above 1: per lane, the last sequence number after `seq`
    /// that the lane has already had acknowledged (or handed to the on-failure destination)
    /// while another lane of the same read was still delivering. After a restart those
    /// records are not delivered again; cleared when `seq` moves past the read.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lanes: std::collections::BTreeMap<usize, String>,
    /// The ParallelizationFactor `lanes` was recorded with (lanes mean nothing under another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lanes_of: Option<u32>,
}

/// True if stream sequence number `a` comes after `b` (decimal strings).
pub(crate) fn seq_after(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// The trigger service of one engine (attached to it with `Engine::attach`).
pub struct Triggers {
    engine: Weak<Engine>,
    pub(crate) config: TriggersConfig,
    /// Every trigger, as last read.
    specs: RwLock<HashMap<String, Arc<TriggerRecord>>>,
    /// Triggers whose worker runs in this process.
    running: Mutex<HashSet<String>>,
    counters: Mutex<HashMap<String, Arc<Counters>>>,
    status: Mutex<HashMap<String, Status>>,
    stopped: AtomicBool,
}

fn not_found(id: &str) -> Error {
    Error::ResourceNotFound(format!(
        "Requested resource not found: Trigger: {id} not found"
    ))
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(e.to_string())
}

impl Triggers {
    /// Starts the service for `engine`: attaches it and starts the supervisor thread, which
    /// runs a worker for every enabled trigger while this node leads background work.
    pub fn start(engine: &Arc<Engine>, config: TriggersConfig) -> Arc<Triggers> {
        let svc = Arc::new(Triggers {
            engine: Arc::downgrade(engine),
            config,
            specs: RwLock::new(HashMap::new()),
            running: Mutex::new(HashSet::new()),
            counters: Mutex::new(HashMap::new()),
            status: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        });
        engine.attach(svc.clone());
        svc.spawn_supervisor();
        svc
    }

    /// Stops every worker (at its next check) and the supervisor.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Starts again after [`Triggers::stop`] (a server started again on the same engine).
    pub fn resume(self: &Arc<Self>) {
        if self.stopped.swap(false, Ordering::Relaxed) {
            self.spawn_supervisor();
        }
    }

    fn spawn_supervisor(self: &Arc<Self>) {
        let sup = self.clone();
        let spawned = std::thread::Builder::new()
            .name("ferrodyn-triggers".into())
            .spawn(move || loop {
                if sup.stopped.load(Ordering::Relaxed) || sup.engine.upgrade().is_none() {
                    break;
                }
                if let Err(e) = sup.refresh() {
                    tracing::warn!(error = %e, "cannot read the triggers");
                }
                std::thread::sleep(REFRESH);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the trigger supervisor");
        }
    }

    pub(crate) fn engine(&self) -> Result<Arc<Engine>, Error> {
        self.engine
            .upgrade()
            .ok_or_else(|| Error::internal("the engine is shutting down"))
    }

    /// Rereads the definitions and starts the workers that should run here.
    fn refresh(self: &Arc<Self>) -> Result<(), Error> {
        let engine = self.engine()?;
        let mut fresh = HashMap::new();
        for (id, raw) in engine.list_records(TRIGGERS)? {
            match serde_json::from_slice::<TriggerRecord>(&raw) {
                Ok(r) => {
                    fresh.insert(id, Arc::new(r));
                }
                Err(e) => tracing::error!(trigger = %id, error = %e, "unreadable trigger record"),
            }
        }
        *self.specs.write() = fresh.clone();
        if !engine.leads_background() {
            return Ok(());
        }
        for (id, spec) in fresh {
            if spec.settings.enabled && self.running.lock().insert(id.clone()) {
                let svc = self.clone();
                let worker_id = id.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("trigger-{}", &id[..8.min(id.len())]))
                    .spawn(move || {
                        worker::run(&svc, &worker_id);
                        svc.running.lock().remove(&worker_id);
                    });
                if let Err(e) = spawned {
                    self.running.lock().remove(&id);
                    tracing::error!(error = %e, "cannot start a trigger worker");
                }
            }
        }
        Ok(())
    }

    /// The trigger's definition while its worker should go on.
    pub(crate) fn active(&self, id: &str) -> Option<Arc<TriggerRecord>> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let spec = self.specs.read().get(id).cloned()?;
        let engine = self.engine.upgrade()?;
        (spec.settings.enabled && engine.leads_background()).then_some(spec)
    }

    pub(crate) fn counters(&self, id: &str) -> Arc<Counters> {
        self.counters
            .lock()
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Records the outcome of a delivery (persisted when it changes).
    pub(crate) fn note(&self, id: &str, error: Option<&str>) {
        let mut all = self.status.lock();
        let cur = all.entry(id.to_owned()).or_default();
        let next = match error {
            None => Status {
                last_processing_result: "OK".into(),
                ..cur.clone()
            },
            Some(e) => Status {
                last_processing_result: format!("PROBLEM: {e}"),
                last_error: Some(e.to_owned()),
                last_error_time: Some(now()),
            },
        };
        let changed = next.last_processing_result != cur.last_processing_result
            || next.last_error != cur.last_error;
        *cur = next.clone();
        drop(all);
        if changed {
            if let (Ok(engine), Ok(bytes)) = (self.engine(), serde_json::to_vec(&next)) {
                if let Err(e) = engine.put_record(STATUS, id, &bytes) {
                    tracing::warn!(error = %e, "cannot save a trigger's status");
                }
            }
        }
    }

    pub(crate) fn load_checkpoints(&self, id: &str) -> Result<HashMap<String, Checkpoint>, Error> {
        let engine = self.engine()?;
        let prefix = format!("{id}/");
        let mut out = HashMap::new();
        for (k, v) in engine.list_records(CHECKPOINTS)? {
            if let Some(shard) = k.strip_prefix(&prefix) {
                let cp = serde_json::from_slice(&v).map_err(internal)?;
                out.insert(shard.to_owned(), cp);
            }
        }
        Ok(out)
    }

    pub(crate) fn save_checkpoint(
        &self,
        id: &str,
        shard: &str,
        cp: &Checkpoint,
    ) -> Result<(), Error> {
        if !self.specs.read().contains_key(id) {
            // Deleted while its last batch was out: leave no checkpoint behind.
            return Ok(());
        }
        let bytes = serde_json::to_vec(cp).map_err(internal)?;
        self.engine()?
            .put_record(CHECKPOINTS, &format!("{id}/{shard}"), &bytes)
    }

    fn save(&self, engine: &Engine, r: &TriggerRecord) -> Result<(), Error> {
        let bytes = serde_json::to_vec(r).map_err(internal)?;
        engine.put_record(TRIGGERS, &r.trigger_id, &bytes)?;
        self.specs
            .write()
            .insert(r.trigger_id.clone(), Arc::new(r.clone()));
        Ok(())
    }

    fn load(&self, engine: &Engine, id: &str) -> Result<TriggerRecord, Error> {
        let raw = engine
            .get_record(TRIGGERS, id)?
            .ok_or_else(|| not_found(id))?;
        serde_json::from_slice(&raw).map_err(internal)
    }

    /// CreateTrigger: the table must exist and have a stream.
    pub fn create(
        self: &Arc<Self>,
        table: &str,
        target: TargetSpec,
        settings: Settings,
    ) -> Result<TriggerDescription, Error> {
        target.validate()?;
        settings.validate()?;
        let engine = self.engine()?;
        let desc = engine.describe_table(table)?;
        let Some(arn) = desc.stream_arn else {
            return Err(Error::validation(format!(
                "Table {table} has no stream: enable one (StreamSpecification) before attaching a trigger"
            )));
        };
        let created = now();
        let start_time = match settings.starting_position.as_str() {
            "TRIM_HORIZON" => 0.0,
            "AT_TIMESTAMP" => settings.starting_position_timestamp.unwrap_or(0.0),
            _ => created,
        };
        let r = TriggerRecord {
            trigger_id: uuid::Uuid::new_v4().to_string(),
            table_name: table.to_owned(),
            event_source_arn: arn,
            target,
            settings,
            created,
            last_modified: created,
            start_time,
        };
        self.save(&engine, &r)?;
        self.refresh()?;
        self.describe_record(&engine, r)
    }

    pub fn describe(&self, id: &str) -> Result<TriggerDescription, Error> {
        let engine = self.engine()?;
        let r = self.load(&engine, id)?;
        self.describe_record(&engine, r)
    }

    /// Every trigger (of `table` only, if given), by table then id.
    pub fn list(&self, table: Option<&str>) -> Result<Vec<TriggerDescription>, Error> {
        let engine = self.engine()?;
        let mut out = Vec::new();
        for (_, raw) in engine.list_records(TRIGGERS)? {
            let r: TriggerRecord = serde_json::from_slice(&raw).map_err(internal)?;
            if table.is_none_or(|t| t == r.table_name) {
                out.push(self.describe_record(&engine, r)?);
            }
        }
        out.sort_by(|a, b| {
            (&a.record.table_name, &a.record.trigger_id)
                .cmp(&(&b.record.table_name, &b.record.trigger_id))
        });
        Ok(out)
    }

    /// UpdateTrigger: `changes` holds settings members (Lambda's names) to replace, and
    /// optionally a new `Target`.
    pub fn update(
        self: &Arc<Self>,
        id: &str,
        target: Option<TargetSpec>,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<TriggerDescription, Error> {
        let engine = self.engine()?;
        let mut r = self.load(&engine, id)?;
        r.settings = r.settings.updated(changes)?;
        if let Some(t) = target {
            t.validate()?;
            r.target = t;
        }
        r.last_modified = now();
        self.save(&engine, &r)?;
        self.refresh()?;
        self.describe_record(&engine, r)
    }

    /// DeleteTrigger: the definition, its checkpoints and status go; its worker stops.
    pub fn delete(self: &Arc<Self>, id: &str) -> Result<TriggerDescription, Error> {
        let engine = self.engine()?;
        let r = self.load(&engine, id)?;
        let mut d = self.describe_record(&engine, r)?;
        d.state = "Deleting";
        engine.delete_record(TRIGGERS, id)?;
        self.specs.write().remove(id);
        for shard in self.load_checkpoints(id)?.keys() {
            engine.delete_record(CHECKPOINTS, &format!("{id}/{shard}"))?;
        }
        engine.delete_record(STATUS, id)?;
        self.status.lock().remove(id);
        Ok(d)
    }

    /// The figures of every trigger this process knows, for the metrics.
    pub fn figures(&self) -> Vec<TriggerFigures> {
        let specs = self.specs.read();
        let counters = self.counters.lock();
        let mut out: Vec<TriggerFigures> = specs
            .values()
            .map(|s| {
                let c = counters.get(&s.trigger_id);
                let get =
                    |f: fn(&Counters) -> &AtomicU64| c.map_or(0, |c| f(c).load(Ordering::Relaxed));
                TriggerFigures {
                    trigger_id: s.trigger_id.clone(),
                    table_name: s.table_name.clone(),
                    delivered: get(|c| &c.delivered),
                    failed: get(|c| &c.failed),
                    retried: get(|c| &c.retried),
                    dead_lettered: get(|c| &c.dead_lettered),
                    iterator_age_seconds: get(|c| &c.iterator_age_ms) as f64 / 1000.0,
                }
            })
            .collect();
        out.sort_by(|a, b| a.trigger_id.cmp(&b.trigger_id));
        out
    }

    fn describe_record(
        &self,
        engine: &Engine,
        record: TriggerRecord,
    ) -> Result<TriggerDescription, Error> {
        let id = record.trigger_id.clone();
        let status = match self.status.lock().get(&id) {
            Some(s) => s.clone(),
            None => engine
                .get_record(STATUS, &id)?
                .and_then(|raw| serde_json::from_slice(&raw).ok())
                .unwrap_or_default(),
        };
        let (lag_records, oldest) = self.lag(engine, &record).unwrap_or((0, None));
        let c = self.counters(&id);
        Ok(TriggerDescription {
            state: if record.settings.enabled {
                "Enabled"
            } else {
                "Disabled"
            },
            status,
            lag_records,
            lag_seconds: oldest.map_or(0.0, |t| (now() - t).max(0.0)),
            delivered: c.delivered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            record,
        })
    }

    /// Records after the checkpoints (at most 100000 counted) and the oldest one's time.
    fn lag(&self, engine: &Engine, r: &TriggerRecord) -> Result<(u64, Option<f64>), Error> {
        const CAP: u64 = 100_000;
        let cps = self.load_checkpoints(&r.trigger_id)?;
        let mut count = 0u64;
        let mut oldest: Option<f64> = None;
        for shard in worker::all_shards(engine, &r.event_source_arn)? {
            let cp = cps.get(&shard.shard_id).cloned().unwrap_or_default();
            if cp.done {
                continue;
            }
            let mut it = Some(match &cp.seq {
                Some(s) => engine.get_shard_iterator(
                    &r.event_source_arn,
                    &shard.shard_id,
                    "AFTER_SEQUENCE_NUMBER",
                    Some(s),
                )?,
                None => engine.get_shard_iterator(
                    &r.event_source_arn,
                    &shard.shard_id,
                    "TRIM_HORIZON",
                    None,
                )?,
            });
            while let Some(i) = it.take() {
                if count >= CAP {
                    break;
                }
                let page = engine.get_records(&i, Some(1000))?;
                if page.records.is_empty() {
                    break;
                }
                for rec in &page.records {
                    if rec.created >= r.start_time {
                        count += 1;
                        oldest = Some(oldest.map_or(rec.created, |o| o.min(rec.created)));
                    }
                }
                it = page.next_iterator;
            }
        }
        Ok((count, oldest))
    }
}
