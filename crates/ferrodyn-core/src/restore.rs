//! Tables made from other data: RestoreTableFromBackup, RestoreTableToPointInTime, and the
//! loading of tables that the import layer creates (ImportTable).
//!
//! A restored table is published at once in the catalog, in `CREATING` status with its
//! RestoreSummary (`TableDef::restore`, `in_progress`), and a background job loads its items
//! through the ordinary write path (`write::stage_item_change`, so its indexes are built as
//! the items arrive); the job then marks it `ACTIVE`.
//!
//! Invariants:
//! - a loading table is invisible to data operations (`Engine::table` answers "not found", as
//!   DynamoDB does for a `CREATING` table) and cannot be updated or deleted; so the job is the
//!   only writer of its items;
//! - the job's description is in the catalog record (`LoadJob`), so a restart runs it again
//!   from the beginning: loading is idempotent (each item is written with its value at the
//!   restore point, over whatever an interrupted run left), and the set of items is fixed by the
//!   source (a backup never changes; a point-in-time read at `T` is the same whenever it runs,
//!   while `T` stays within the source's window);
//! - a load that cannot finish (its source is gone) drops the table: no half-made table stays
//!   visible;
//! - items become durable together at the end of the load (one wait for the highest commit
//!   ticket) before the table turns `ACTIVE`.

use std::ops::Bound;
use std::sync::Arc;

use ferrodyn_model::Error;
use ferrodyn_storage::CommitTicket;

use crate::control::{CreateTableInput, IndexInput, KeySchemaElement, KeyType};
use crate::table::{
    BillingMode, IndexDef, LoadJob, ProjectionType, RestoreSummary, TableDef, TableDescription,
    TableStatus,
};
use crate::write::Old;
use crate::{itemcodec, storage_err, Engine, Table, CATALOG};

/// Items per load step (one lock set, one batch).
const LOAD_CHUNK: usize = 256;

/// The overrides of a restore request.
#[derive(Debug, Clone, Default)]
pub struct RestoreOverrides {
    pub billing_mode: Option<BillingMode>,
    pub provisioned: Option<(i64, i64)>,
    pub on_demand: Option<(Option<i64>, Option<i64>)>,
    /// GlobalSecondaryIndexOverride: the global indexes to keep (a subset of the source's).
    pub global_indexes: Option<Vec<IndexInput>>,
    /// LocalSecondaryIndexOverride.
    pub local_indexes: Option<Vec<IndexInput>>,
}

/// An index definition back as its creation request.
fn index_input(ix: &IndexDef) -> IndexInput {
    let mut key_schema: Vec<KeySchemaElement> = ix
        .hash_keys()
        .map(|k| KeySchemaElement {
            name: k.name.clone(),
            key_type: KeyType::Hash,
        })
        .collect();
    key_schema.extend(ix.range_keys().map(|k| KeySchemaElement {
        name: k.name.clone(),
        key_type: KeyType::Range,
    }));
    IndexInput {
        name: ix.name.clone(),
        key_schema,
        projection_type: Some(ix.projection),
        non_key_attributes: (ix.projection == ProjectionType::Include)
            .then(|| ix.non_key_attributes.clone()),
        provisioned: ix.throughput.as_ref().map(|t| (t.read, t.write)),
        on_demand: ix.on_demand.map(|o| (o.read, o.write)),
    }
}

impl Engine {
    /// The definition of a table restored from `source` as `target`, with `overrides`
    /// applied, validated as CreateTable validates, loading (RestoreSummary in progress).
    fn restored_def(
        &self,
        source: &TableDef,
        target: &str,
        overrides: RestoreOverrides,
        summary: RestoreSummary,
    ) -> Result<TableDef, Error> {
        for (kind, given, existing) in [
            (
                "GlobalSecondaryIndexOverride",
                &overrides.global_indexes,
                &source.global_indexes,
            ),
            (
                "LocalSecondaryIndexOverride",
                &overrides.local_indexes,
                &source.local_indexes,
            ),
        ] {
            for ix in given.iter().flatten() {
                if !existing.iter().any(|e| e.name == ix.name) {
                    return Err(Error::validation(format!(
                        "One or more parameter values were invalid: {kind} contains an index that does not exist on the source table: {}",
                        ix.name
                    )));
                }
            }
        }
        let billing_mode = overrides.billing_mode.unwrap_or(source.billing_mode);
        let global: Vec<IndexInput> = match overrides.global_indexes {
            Some(list) => list,
            None => source
                .global_indexes
                .iter()
                .map(|ix| {
                    let mut input = index_input(ix);
                    if billing_mode == BillingMode::PayPerRequest {
                        input.provisioned = None;
                    } else if input.provisioned.is_none() {
                        input.provisioned = Some((
                            overrides
                                .provisioned
                                .map_or(source.throughput.read.max(1), |p| p.0),
                            overrides
                                .provisioned
                                .map_or(source.throughput.write.max(1), |p| p.1),
                        ));
                    }
                    input
                })
                .collect(),
        };
        let local: Vec<IndexInput> = match overrides.local_indexes {
            Some(list) => list,
            None => source.local_indexes.iter().map(index_input).collect(),
        };
        let mut key_schema = vec![KeySchemaElement {
            name: source.hash_key.name.clone(),
            key_type: KeyType::Hash,
        }];
        if let Some(r) = &source.range_key {
            key_schema.push(KeySchemaElement {
                name: r.name.clone(),
                key_type: KeyType::Range,
            });
        }
        // Only the attributes that the kept keys use are defined (CreateTable's rule).
        let used: std::collections::HashSet<&str> = key_schema
            .iter()
            .chain(global.iter().chain(&local).flat_map(|ix| &ix.key_schema))
            .map(|k| k.name.as_str())
            .collect();
        let attribute_definitions = source
            .attribute_definitions
            .iter()
            .filter(|a| used.contains(a.name.as_str()))
            .cloned()
            .collect();
        let provisioned = match billing_mode {
            BillingMode::PayPerRequest => None,
            BillingMode::Provisioned => Some(overrides.provisioned.unwrap_or((
                source.throughput.read.max(1),
                source.throughput.write.max(1),
            ))),
        };
        let on_demand = match billing_mode {
            BillingMode::PayPerRequest => overrides
                .on_demand
                .or(source.on_demand.map(|o| (o.read, o.write))),
            BillingMode::Provisioned => None,
        };
        let mut def = self.prepare_table(CreateTableInput {
            name: target.to_string(),
            attribute_definitions,
            key_schema,
            billing_mode: Some(billing_mode),
            provisioned,
            deletion_protection: None,
            table_class: Some(source.table_class.clone()),
            stream: None,
            local_indexes: (!local.is_empty()).then_some(local),
            global_indexes: (!global.is_empty()).then_some(global),
            tags: Vec::new(),
            on_demand,
        })?;
        def.restore = Some(summary);
        Ok(def)
    }

    /// Publishes a loading table and starts its load; returns its description (`CREATING`).
    pub(crate) fn start_restore(
        &self,
        source: &TableDef,
        target: &str,
        overrides: RestoreOverrides,
        summary: RestoreSummary,
    ) -> Result<TableDescription, Error> {
        let def = self.restored_def(source, target, overrides, summary)?;
        let table = self.install_table(def, |name| {
            Error::TableAlreadyExists(format!("Table already exists: {name}"))
        })?;
        self.spawn_load(&table.def);
        Ok(self.describe(&table, TableStatus::Creating))
    }

    /// Creates an empty table that the caller loads ([`Engine::load_items`]) and then finishes
    /// ([`Engine::finish_load`]) or fails ([`Engine::fail_load`]): ImportTable. It is
    /// `CREATING` and invisible to data operations meanwhile.
    pub fn create_loading_table(
        &self,
        input: CreateTableInput,
        import_id: &str,
    ) -> Result<TableDescription, Error> {
        let mut def = self.prepare_table(input)?;
        def.restore = Some(RestoreSummary {
            source_backup_arn: None,
            source_table_arn: None,
            restore_time: crate::now_epoch(),
            in_progress: true,
            job: Some(LoadJob::Import {
                id: import_id.to_string(),
            }),
        });
        let table = self.install_table(def, |name| {
            Error::ResourceInUse(format!("Table already exists: {name}"))
        })?;
        Ok(self.describe(&table, TableStatus::Creating))
    }

    /// A loading table by name (and id, when given).
    fn loading_table(&self, name: &str, id: Option<&str>) -> Result<Arc<Table>, Error> {
        self.tables
            .read()
            .get(name)
            .filter(|t| t.def.loading() && id.is_none_or(|id| t.def.id == id))
            .cloned()
            .ok_or_else(|| Error::ResourceNotFound(format!("Table {name} is not being loaded")))
    }

    /// Writes `items` into the loading table `name` (each replaces any item with its key).
    /// Returns the commit ticket to wait for before the load is finished.
    pub fn load_items(
        &self,
        name: &str,
        items: &[ferrodyn_model::Item],
    ) -> Result<CommitTicket, Error> {
        let table = self.loading_table(name, None)?;
        let mut chunk = Vec::with_capacity(items.len());
        for item in items {
            let key = crate::keys::key_of_item(&table.def, item)?;
            crate::index::validate_index_keys(&table.def, item)?;
            chunk.push((key, itemcodec::encode_item(item)));
        }
        self.load_chunk_deferred(&table, &chunk)
    }

    /// Checks that `item` can be loaded into the loading table `name`: its key attributes
    /// (present, typed, not empty), its index keys, and its size, as PutItem checks them.
    pub fn check_load_item(&self, name: &str, item: &ferrodyn_model::Item) -> Result<(), Error> {
        let table = self.loading_table(name, None)?;
        crate::keys::key_of_item(&table.def, item)?;
        crate::index::validate_index_keys(&table.def, item)?;
        if ferrodyn_model::size::item_size(item) > 400 * 1024 {
            return Err(Error::validation(
                "Item size has exceeded the maximum allowed size",
            ));
        }
        Ok(())
    }

    /// Blocks until `ticket` (from [`Engine::load_items`]) is durable.
    pub fn wait_durable(&self, ticket: CommitTicket) -> Result<(), Error> {
        self.storage.wait_durable(ticket).map_err(storage_err)
    }

    /// Makes a loading table `ACTIVE` once `ticket` (the last load's) is durable.
    pub fn finish_load(&self, name: &str, ticket: CommitTicket) -> Result<(), Error> {
        self.storage.wait_durable(ticket).map_err(storage_err)?;
        let _ddl = self.ddl.lock()?;
        let table = self.loading_table(name, None)?;
        let mut def = table.def.clone();
        if let Some(r) = def.restore.as_mut() {
            r.in_progress = false;
            r.job = None;
        }
        self.replace_def(&table, def, "RestoreTable")?;
        Ok(())
    }

    /// Drops a loading table whose load failed.
    pub fn fail_load(&self, name: &str) -> Result<(), Error> {
        let table = {
            let _ddl = self.ddl.lock()?;
            let table = self.loading_table(name, None)?;
            let mut batch = ferrodyn_storage::WriteBatch::default();
            batch.delete(CATALOG, name.as_bytes());
            self.write_control(batch, "RestoreTable", name)?;
            self.tables.write().remove(name);
            table
        };
        self.drop_table_keyspaces(&table.def)
    }

    /// Drops the keyspaces of a table that is no longer in the catalog.
    pub(crate) fn drop_table_keyspaces(&self, def: &TableDef) -> Result<(), Error> {
        let history = def.pitr.as_ref().map(|p| p.keyspace.as_str());
        // An empty name: the item keyspace was handed over (a system backup keeps it).
        for ks in std::iter::once(def.keyspace.as_str())
            .filter(|ks| !ks.is_empty())
            .chain(
                def.local_indexes
                    .iter()
                    .chain(&def.global_indexes)
                    .map(|ix| ix.keyspace.as_str()),
            )
            .chain(history)
        {
            self.storage.drop_keyspace(ks).map_err(storage_err)?;
        }
        Ok(())
    }

    /// Writes one chunk of (storage key, stored item) into a loading table, inside a deferral
    /// scope: returns the ticket to wait for.
    fn load_chunk_deferred(
        &self,
        table: &Table,
        chunk: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<CommitTicket, Error> {
        let (r, ticket) = self.deferring_durability(|| {
            self.retrying(chunk, |engine, chunk| engine.load_chunk(table, chunk))
        });
        r.map(|()| ticket)
    }

    fn load_chunk(&self, table: &Table, chunk: &[(Vec<u8>, Vec<u8>)]) -> Result<(), Error> {
        let targets: Vec<(&Table, &[u8])> = chunk.iter().map(|(k, _)| (table, &k[..])).collect();
        let locks = self.lock_items(&targets)?;
        let mut batch = self.load_batch();
        let mut deltas = Vec::with_capacity(chunk.len());
        for (key, raw) in chunk {
            let item = itemcodec::decode_item(raw)?;
            let old = locks.item(&table.def, key)?;
            let d = crate::write::stage_item_change(
                table,
                key,
                Old::from(old.as_ref()),
                Some(&item),
                &mut batch,
            );
            deltas.push((table, d));
        }
        self.commit_locked(locks, batch, deltas).map(drop)
    }

    /// Starts the load job of a loading table (restores; imports are run by their layer).
    /// On a shared engine the holder of the background lease runs it.
    pub(crate) fn spawn_load(&self, def: &TableDef) {
        let Some(job) = def.restore.as_ref().and_then(|r| r.job.clone()) else {
            return;
        };
        if matches!(job, LoadJob::Import { .. }) || !self.leads_background() {
            return;
        }
        let job_key = format!("load/{}", def.id);
        if !self.index_jobs.lock().insert(job_key.clone()) {
            return;
        }
        let (name, id) = (def.name.clone(), def.id.clone());
        let Some(engine) = self.myself() else {
            // An engine outside an `Arc` (no background worker): load in this thread.
            let r = self.run_load(&name, &id, &job);
            self.index_jobs.lock().remove(&job_key);
            if let Err(e) = r {
                tracing::error!(table = %name, error = %e, "restore failed; the table is dropped");
                let _ = self.fail_load(&name);
            }
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("restore".into())
            .spawn(move || {
                let r = engine.run_load(&name, &id, &job);
                engine.index_jobs.lock().remove(&job_key);
                if let Err(e) = r {
                    tracing::error!(table = %name, error = %e, "restore failed; the table is dropped");
                    if let Err(e) = engine.fail_load(&name) {
                        tracing::error!(table = %name, error = %e, "dropping a failed restore failed");
                    }
                }
            });
        if let Err(e) = spawned {
            self.index_jobs.lock().remove(&format!("load/{}", def.id));
            tracing::error!(error = %e, "cannot start a restore");
        }
    }

    /// Loads a restored table from its source, then makes it `ACTIVE`.
    fn run_load(&self, name: &str, id: &str, job: &LoadJob) -> Result<(), Error> {
        let table = match self.loading_table(name, Some(id)) {
            Ok(t) => t,
            Err(_) => return Ok(()), // finished or dropped meanwhile
        };
        let mut ticket = CommitTicket::DURABLE;
        let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(LOAD_CHUNK);
        let mut flush = |chunk: &mut Vec<(Vec<u8>, Vec<u8>)>| -> Result<(), Error> {
            if !chunk.is_empty() {
                ticket = ticket.max(self.load_chunk_deferred(&table, chunk)?);
                chunk.clear();
            }
            Ok(())
        };
        match job {
            LoadJob::Backup { keyspace } => {
                let mut after: Option<Vec<u8>> = None;
                loop {
                    self.storage
                        .scan(
                            keyspace,
                            after.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                            Bound::Unbounded,
                            false,
                            &mut |k, v| {
                                chunk.push((k.to_vec(), v.to_vec()));
                                chunk.len() < LOAD_CHUNK
                            },
                        )
                        .map_err(storage_err)?;
                    let full = chunk.len() == LOAD_CHUNK;
                    after = chunk.last().map(|(k, _)| k.clone());
                    flush(&mut chunk)?;
                    if !full {
                        break;
                    }
                }
            }
            LoadJob::PointInTime {
                table: source,
                id: source_id,
                at_us,
            } => {
                let src = self
                    .lookup(source)?
                    .filter(|t| t.def.id == *source_id)
                    .ok_or_else(|| Error::TableNotFound(format!("Table not found: {source}")))?;
                self.restorable(&src, *at_us as f64 / 1e6)?;
                let snap = self.storage.snapshot();
                self.walk_at(&src.def, &*snap, *at_us, &mut |k, raw| {
                    chunk.push((k.to_vec(), raw.to_vec()));
                    if chunk.len() == LOAD_CHUNK {
                        flush(&mut chunk)?;
                    }
                    Ok(true)
                })?;
                flush(&mut chunk)?;
            }
            LoadJob::Import { .. } => return Ok(()),
        }
        self.finish_load(name, ticket)
    }

    /// Restarts the loads that a previous run left unfinished (at open, and on a shared
    /// engine when this node takes the background lease); loading tables without a job
    /// description are dropped.
    pub(crate) fn resume_loads(&self) -> Result<(), Error> {
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        for t in tables.iter().filter(|t| t.def.loading()) {
            match t.def.restore.as_ref().and_then(|r| r.job.as_ref()) {
                Some(LoadJob::Import { .. }) => {} // the import layer resumes or fails it
                Some(_) => self.spawn_load(&t.def),
                None => self.fail_load(&t.def.name)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrodyn_model::Error;
    use ferrodyn_storage::MemoryStorage;

    use crate::table::{LoadJob, RestoreSummary};
    use crate::{Engine, EngineConfig};

    #[test]
    fn the_source_of_a_loading_point_in_time_restore_cannot_be_deleted() {
        let engine = Engine::open(Arc::new(MemoryStorage::new()), EngineConfig::default()).unwrap();
        crate::create_hash_table(&engine, "src");
        engine.update_continuous_backups("src", true, None).unwrap();
        let source = engine.table("src").unwrap();
        // A restore published but not loaded yet (its job is not started here).
        let mut def = engine
            .restored_def(
                &source.def,
                "dst",
                Default::default(),
                RestoreSummary {
                    source_backup_arn: None,
                    source_table_arn: None,
                    restore_time: crate::now_epoch(),
                    in_progress: true,
                    job: Some(LoadJob::PointInTime {
                        table: "src".into(),
                        id: source.def.id.clone(),
                        at_us: 1,
                    }),
                },
            )
            .unwrap();
        def.name = "dst".into();
        engine
            .install_table(def, |n| Error::ResourceInUse(n.into()))
            .unwrap();
        match engine.delete_table("src") {
            Err(Error::ResourceInUse(m)) => assert!(m.contains("being restored from"), "{m}"),
            other => panic!("{other:?}"),
        }
        // The loading table itself is not found by data operations and cannot be deleted.
        assert!(matches!(
            engine.table("dst"),
            Err(Error::ResourceNotFound(_))
        ));
        assert!(matches!(
            engine.delete_table("dst"),
            Err(Error::ResourceInUse(_))
        ));
        engine.fail_load("dst").unwrap();
        engine.delete_table("src").unwrap();
    }
}
