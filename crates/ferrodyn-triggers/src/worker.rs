//! One trigger's delivery loop: reads its stream shard by shard (a child after its parent),
//! filters, splits into lanes, delivers batches with retries, bisection and partial batch
//! responses, hands what keeps failing to the on-failure destination, and checkpoints.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrodyn_core::control::{CreateTableInput, KeySchemaElement, KeyType};
use ferrodyn_core::items::PutItemInput;
use ferrodyn_core::streams::ShardInfo;
use ferrodyn_core::table::{BillingMode, KeyAttr};
use ferrodyn_core::Engine;
use ferrodyn_model::{AttributeValue, Error, Item, Number, ScalarType};

use crate::event::{event, lane, Event};
use crate::settings::FailureDestination;
use crate::target::{HttpTarget, NatsTarget, Outcome, Target};
use crate::{now, Checkpoint, Counters, TriggerRecord, Triggers};

/// How often the shard list is read again while records flow.
const RELIST: Duration = Duration::from_secs(1);

/// Every shard of a stream, in shard-id order.
pub(crate) fn all_shards(engine: &Engine, arn: &str) -> Result<Vec<ShardInfo>, Error> {
    let mut out = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let d = engine.describe_stream(arn, start.as_deref(), Some(100), None)?;
        out.extend(d.shards);
        match d.last_evaluated_shard_id {
            Some(s) => start = Some(s),
            None => return Ok(out),
        }
    }
}

/// The trigger was disabled, deleted or moved to another node while it worked.
struct Aborted;

struct Worker<'a> {
    svc: &'a Arc<Triggers>,
    id: String,
    counters: Arc<Counters>,
    cursors: HashMap<String, Checkpoint>,
    shards: Vec<ShardInfo>,
    listed: Option<Instant>,
    pending_since: HashMap<String, Instant>,
    /// The target, rebuilt when the definition changes.
    target: Option<(f64, Arc<dyn Target>)>,
}

pub(crate) fn run(svc: &Arc<Triggers>, id: &str) {
    let cursors = match svc.load_checkpoints(id) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(trigger = id, error = %e, "cannot read a trigger's checkpoints");
            return;
        }
    };
    let mut w = Worker {
        svc,
        id: id.to_owned(),
        counters: svc.counters(id),
        cursors,
        shards: Vec::new(),
        listed: None,
        pending_since: HashMap::new(),
        target: None,
    };
    while let Some(spec) = svc.active(id) {
        // While the storage refuses writes no checkpoint could be saved: delivering would
        // only send the same batch again every round. Wait (the storage logs the cause).
        if svc.engine().is_ok_and(|e| e.write_fault().is_some()) {
            std::thread::sleep(svc.config.poll_interval.max(Duration::from_millis(500)));
            continue;
        }
        match w.poll(&spec) {
            Ok(true) => {}
            Ok(false) => std::thread::sleep(svc.config.poll_interval),
            Err(e) => {
                tracing::warn!(trigger = id, error = %e, "trigger delivery paused");
                svc.note(id, Some(&e.to_string()));
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn build_target(spec: &TriggerRecord) -> Result<Arc<dyn Target>, Error> {
    let timeout = Duration::from_secs(spec.settings.timeout_seconds.into());
    let t = &spec.target;
    if let Some(url) = &t.url {
        let h = HttpTarget::new(url, timeout, spec.settings.reports_item_failures())
            .map_err(Error::internal)?;
        return Ok(Arc::new(h));
    }
    match (&t.nats, &t.subject) {
        (Some(url), Some(subject)) => {
            let n = NatsTarget::connect(url, subject, &spec.table_name, timeout)
                .map_err(Error::internal)?;
            Ok(Arc::new(n))
        }
        _ => Err(Error::internal("trigger without a target")),
    }
}

impl Worker<'_> {
    /// One pass over the shards; true if anything moved.
    fn poll(&mut self, spec: &Arc<TriggerRecord>) -> Result<bool, Error> {
        if self
            .target
            .as_ref()
            .is_none_or(|(at, _)| *at != spec.last_modified)
        {
            self.target = Some((spec.last_modified, build_target(spec)?));
        }
        let engine = self.svc.engine()?;
        if self.listed.is_none_or(|t| t.elapsed() > RELIST) {
            self.shards = all_shards(&engine, &spec.event_source_arn)?;
            self.listed = Some(Instant::now());
        }
        drop(engine);
        let mut moved = false;
        for shard in self.shards.clone() {
            if self.cursors.get(&shard.shard_id).is_some_and(|c| c.done) {
                continue;
            }
            let parent_open = shard.parent_shard_id.as_ref().is_some_and(|p| {
                self.shards.iter().any(|s| &s.shard_id == p)
                    && !self.cursors.get(p).is_some_and(|c| c.done)
            });
            if parent_open {
                continue;
            }
            moved |= self.poll_shard(spec, &shard)?;
        }
        Ok(moved)
    }

    fn poll_shard(&mut self, spec: &TriggerRecord, shard: &ShardInfo) -> Result<bool, Error> {
        let engine = self.svc.engine()?;
        let arn = &spec.event_source_arn;
        let sid = &shard.shard_id;
        let cursor = self.cursors.get(sid).cloned().unwrap_or_default();
        let first = match &cursor.seq {
            Some(s) => engine.get_shard_iterator(arn, sid, "AFTER_SEQUENCE_NUMBER", Some(s)),
            None => engine.get_shard_iterator(arn, sid, "TRIM_HORIZON", None),
        };
        let first = match first {
            Ok(i) => i,
            Err(Error::TrimmedDataAccess(_)) => {
                tracing::error!(trigger = %self.id, shard = %sid, "records after the checkpoint were trimmed (older than 24 hours); continuing at the trim horizon");
                engine.get_shard_iterator(arn, sid, "TRIM_HORIZON", None)?
            }
            Err(Error::ResourceNotFound(_)) if !cursor.done => {
                // The shard was trimmed away.
                self.finish_shard(sid, cursor.seq)?;
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        let s = &spec.settings;
        let want = (s.batch_size * s.parallelization_factor) as usize;
        let mut recs = Vec::new();
        let mut ended = false;
        let mut iter = Some(first);
        while recs.len() < want {
            let Some(i) = iter.take() else {
                ended = true;
                break;
            };
            let page = engine.get_records(&i, Some((want - recs.len()).min(1000) as i64))?;
            let empty = page.records.is_empty();
            recs.extend(page.records);
            iter = page.next_iterator;
            if empty {
                ended = iter.is_none();
                break;
            }
        }
        drop(engine);
        if recs.is_empty() {
            if ended {
                self.finish_shard(sid, cursor.seq)?;
                return Ok(true);
            }
            return Ok(false);
        }
        let window = Duration::from_secs(s.maximum_batching_window_in_seconds.into());
        if !window.is_zero() && recs.len() < want && !ended {
            let since = *self
                .pending_since
                .entry(sid.clone())
                .or_insert_with(Instant::now);
            if since.elapsed() < window {
                return Ok(false);
            }
        }
        self.pending_since.remove(sid);

        let region = self.svc.engine()?.config().region.clone();
        let filters = s.filters()?;
        let lanes = s.parallelization_factor.max(1);
        let mut by_lane: Vec<Vec<Event>> = vec![Vec::new(); lanes as usize];
        for r in &recs {
            if r.created < spec.start_time {
                continue;
            }
            let e = event(r, arn, &region);
            if !filters.matches(&e.json) {
                self.counters.filtered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let l = lane(&e.key_text, lanes);
            // Already acknowledged in this lane before a restart (see `Checkpoint::lanes`).
            if cursor.lanes_of == Some(lanes)
                && cursor
                    .lanes
                    .get(&l)
                    .is_some_and(|acked| !crate::seq_after(&e.seq, acked))
            {
                continue;
            }
            by_lane[l].push(e);
        }
        let ok = if lanes == 1 {
            self.deliver_lane(spec, &by_lane[0], None).is_ok()
        } else {
            // Each lane records its own progress, so a restart does not deliver again what
            // one lane had acknowledged while another was still retrying.
            let mut start = cursor.clone();
            if start.lanes_of != Some(lanes) {
                start.lanes.clear();
                start.lanes_of = Some(lanes);
            }
            let progress = parking_lot::Mutex::new(start);
            let shared = (sid.as_str(), &progress);
            let this = &*self;
            let all = std::thread::scope(|scope| {
                let handles: Vec<_> = by_lane
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| !l.is_empty())
                    .map(|(i, l)| {
                        scope.spawn(move || this.deliver_lane(spec, l, Some((i, shared))).is_ok())
                    })
                    .collect();
                handles.into_iter().all(|h| h.join().unwrap_or(false))
            });
            if !all {
                // The next attempt in this process skips what the lanes got through, too.
                self.cursors.insert(sid.clone(), progress.into_inner());
            }
            all
        };
        if !ok {
            return Ok(false);
        }
        let last = recs.last().map(|r| r.sequence_number.clone());
        let cp = Checkpoint {
            seq: last,
            done: ended,
            lanes: Default::default(),
            lanes_of: None,
        };
        self.svc.save_checkpoint(&self.id, sid, &cp)?;
        self.cursors.insert(sid.clone(), cp);
        Ok(true)
    }

    fn finish_shard(&mut self, sid: &str, seq: Option<String>) -> Result<(), Error> {
        let cp = Checkpoint {
            seq,
            done: true,
            lanes: Default::default(),
            lanes_of: None,
        };
        self.svc.save_checkpoint(&self.id, sid, &cp)?;
        self.cursors.insert(sid.to_owned(), cp);
        self.listed = None;
        Ok(())
    }

    /// Delivers one lane's events batch after batch. With `progress` (lane number, shard and
    /// the shard's checkpoint being built), each finished batch is recorded in the
    /// checkpoint's `lanes` durably before the next one.
    fn deliver_lane(
        &self,
        spec: &TriggerRecord,
        events: &[Event],
        progress: Option<(usize, (&str, &parking_lot::Mutex<Checkpoint>))>,
    ) -> Result<(), Aborted> {
        for batch in events.chunks(spec.settings.batch_size.max(1) as usize) {
            self.deliver_batch(spec, batch, 0)?;
            if let (Some((lane, (sid, cp))), Some(last)) = (progress, batch.last()) {
                let mut cp = cp.lock();
                cp.lanes.insert(lane, last.seq.clone());
                if let Err(e) = self.svc.save_checkpoint(&self.id, sid, &cp) {
                    tracing::warn!(trigger = %self.id, error = %e, "cannot save a lane's progress");
                    return Err(Aborted);
                }
            }
        }
        Ok(())
    }

    /// Delivers one batch until it is acknowledged or handed to the on-failure destination.
    /// `attempts`: failed attempts already made with these records.
    fn deliver_batch(
        &self,
        spec: &TriggerRecord,
        batch: &[Event],
        mut attempts: u32,
    ) -> Result<(), Aborted> {
        let s = &spec.settings;
        let Some((_, target)) = self.target.as_ref() else {
            return Err(Aborted);
        };
        let mut pending: Vec<Event> = batch.to_vec();
        loop {
            if self.svc.active(&self.id).is_none() {
                return Err(Aborted);
            }
            if s.maximum_record_age_in_seconds >= 0 {
                let limit = s.maximum_record_age_in_seconds as f64;
                let t = now();
                let (old, fresh): (Vec<Event>, Vec<Event>) =
                    pending.into_iter().partition(|e| t - e.created > limit);
                if !old.is_empty() {
                    self.dead_letter(
                        spec,
                        &old,
                        "the record is older than MaximumRecordAgeInSeconds",
                        attempts,
                    )?;
                }
                pending = fresh;
            }
            if pending.is_empty() {
                return Ok(());
            }
            let error = match target.deliver(&pending) {
                Outcome::Delivered => {
                    self.acknowledged(&pending);
                    self.svc.note(&self.id, None);
                    return Ok(());
                }
                Outcome::Partial(ids) => {
                    let lowest = pending
                        .iter()
                        .position(|e| ids.contains(&e.seq))
                        .unwrap_or(0);
                    self.acknowledged(&pending[..lowest]);
                    pending.drain(..lowest);
                    format!(
                        "the target reported {} failed record(s) in the batch",
                        ids.len()
                    )
                }
                Outcome::Failed(e) => e,
            };
            attempts += 1;
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            self.svc.note(&self.id, Some(&error));
            if s.bisect_batch_on_function_error && pending.len() > 1 {
                // The halves are retried separately; the split itself uses no attempt, so a
                // single poison record still gets every retry and is isolated.
                let (a, b) = pending.split_at(pending.len() / 2);
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
                self.deliver_batch(spec, a, attempts - 1)?;
                return self.deliver_batch(spec, b, attempts - 1);
            }
            if s.maximum_retry_attempts >= 0 && i64::from(attempts) > s.maximum_retry_attempts {
                return self.dead_letter(spec, &pending, &error, attempts);
            }
            self.counters.retried.fetch_add(1, Ordering::Relaxed);
            self.backoff(attempts)?;
        }
    }

    fn acknowledged(&self, events: &[Event]) {
        if let Some(last) = events.last() {
            self.counters
                .delivered
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            let age = ((now() - last.created).max(0.0) * 1000.0) as u64;
            self.counters.iterator_age_ms.store(age, Ordering::Relaxed);
        }
    }

    /// Sleeps `base * 2^(attempts-1)` (capped) with ±50% jitter, watching for an abort.
    fn backoff(&self, attempts: u32) -> Result<(), Aborted> {
        let c = &self.svc.config;
        let exp = c
            .backoff_base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
            .min(c.backoff_cap);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0 + 0.5;
        let deadline = Instant::now() + exp.mul_f64(jitter);
        while Instant::now() < deadline {
            if self.svc.active(&self.id).is_none() {
                return Err(Aborted);
            }
            std::thread::sleep(Duration::from_millis(20).min(deadline - Instant::now()));
        }
        Ok(())
    }

    /// Hands records to the on-failure destination (retrying until it takes them), or drops
    /// them with a log line when there is none.
    fn dead_letter(
        &self,
        spec: &TriggerRecord,
        events: &[Event],
        error: &str,
        attempts: u32,
    ) -> Result<(), Aborted> {
        let dest = spec.settings.failure_destination().ok().flatten();
        let Some(dest) = dest else {
            tracing::error!(trigger = %self.id, records = events.len(), error, "records dropped after their retries (no on-failure destination)");
            self.counters
                .dead_lettered
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            return Ok(());
        };
        let mut tries = 0;
        loop {
            let sent = match &dest {
                FailureDestination::Table(t) => self.to_table(spec, t, events, error, attempts),
                FailureDestination::Http(url) => self.to_url(spec, url, events, error, attempts),
            };
            match sent {
                Ok(()) => {
                    self.counters
                        .dead_lettered
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) => {
                    tries += 1;
                    tracing::warn!(trigger = %self.id, error = %e, "on-failure destination refused records");
                    self.svc
                        .note(&self.id, Some(&format!("on-failure destination: {e}")));
                    self.backoff(tries)?;
                }
            }
        }
    }

    fn to_table(
        &self,
        spec: &TriggerRecord,
        table: &str,
        events: &[Event],
        error: &str,
        attempts: u32,
    ) -> Result<(), Error> {
        let engine = self.svc.engine()?;
        if engine.describe_table(table).is_err() {
            let created = engine.create_table(CreateTableInput {
                name: table.to_owned(),
                attribute_definitions: vec![KeyAttr {
                    name: "id".into(),
                    ty: ScalarType::S,
                }],
                key_schema: vec![KeySchemaElement {
                    name: "id".into(),
                    key_type: KeyType::Hash,
                }],
                billing_mode: Some(BillingMode::PayPerRequest),
                ..CreateTableInput::default()
            });
            match created {
                Ok(_) | Err(Error::ResourceInUse(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let n = |v: String| {
            Number::parse(&v)
                .map(AttributeValue::N)
                .map_err(Error::internal)
        };
        for e in events {
            let mut item = Item::new();
            item.insert("id".into(), s(&format!("{}/{}", spec.trigger_id, e.seq)));
            item.insert("triggerId".into(), s(&spec.trigger_id));
            item.insert("tableName".into(), s(&spec.table_name));
            item.insert("eventSourceARN".into(), s(&spec.event_source_arn));
            item.insert("sequenceNumber".into(), s(&e.seq));
            item.insert("eventName".into(), s(e.event_name));
            item.insert("record".into(), s(&e.json.to_string()));
            item.insert("error".into(), s(error));
            item.insert("attempts".into(), n(attempts.to_string())?);
            item.insert("failedAt".into(), n(format!("{:.3}", now()))?);
            engine.put_item(PutItemInput {
                table: table.to_owned(),
                item,
                ..PutItemInput::default()
            })?;
        }
        Ok(())
    }

    fn to_url(
        &self,
        spec: &TriggerRecord,
        url: &str,
        events: &[Event],
        error: &str,
        attempts: u32,
    ) -> Result<(), Error> {
        let timeout = Duration::from_secs(spec.settings.timeout_seconds.into());
        let h = HttpTarget::new(url, timeout, false).map_err(Error::internal)?;
        let records: Vec<&serde_json::Value> = events.iter().map(|e| &e.json).collect();
        let body = serde_json::json!({
            "triggerId": spec.trigger_id,
            "tableName": spec.table_name,
            "eventSourceARN": spec.event_source_arn,
            "error": error,
            "attempts": attempts,
            "Records": records,
        });
        h.post(body.to_string().into_bytes())
            .map(|_| ())
            .map_err(Error::internal)
    }
}
