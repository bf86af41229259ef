//! On-demand backups: CreateBackup, DescribeBackup, ListBackups, DeleteBackup,
//! RestoreTableFromBackup, and the system backup DynamoDB keeps of a table deleted with
//! point-in-time recovery enabled.
//!
//! A backup is a record in the `backups` keyspace (key: backup id, value: JSON [`Record`]) and
//! a keyspace of its own holding the table's items in their stored form, as they were at one
//! storage snapshot. Indexes are not copied: a restore rebuilds them from the items.
//!
//! Invariants:
//! - a backup's definition and its snapshot are taken together under the ddl lock, so the
//!   items match the definition (no schema change falls between them);
//! - a backup is `CREATING` until all its items are copied and durable, then `AVAILABLE` and
//!   immutable; only `AVAILABLE` backups can be restored;
//! - a copy interrupted by a crash cannot continue (its snapshot is gone): the backup is
//!   removed at the next start (embedded engines) or, on a shared engine, once its copier
//!   stopped reporting progress for `EngineConfig::backup_stale_after` (a copier reports
//!   every twelfth of that);
//! - a removed backup is never written back: a copier writes its progress and its final
//!   status, and the cleanup removes an interrupted backup, only after reading the record again
//!   under the ddl lock (a copier that finds its backup gone stops and drops what it copied);
//! - backups are independent of their table: deleting the table keeps them (DeleteTable waits
//!   until its backups in progress are copied, as DynamoDB does). Deleting a table
//!   with point-in-time recovery enabled turns its item keyspace into a `SYSTEM` backup
//!   (nothing is copied) that expires after 35 days, like DynamoDB's.

use std::ops::Bound;
use std::time::{Duration, Instant};

use ferrodyn_model::Error;
use ferrodyn_storage::{Durability, Snapshot, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::restore::RestoreOverrides;
use crate::table::{LoadJob, RestoreSummary, TableDef, TableDescription};
use crate::{itemcodec, now_epoch, storage_err, Engine, Table};

pub(crate) const BACKUPS: &str = "backups";
/// Items per copy step.
const COPY_CHUNK: usize = 512;
/// How long CreateBackup waits for the copy before it answers `CREATING`.
const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// How often a copier reports progress, as a fraction of the stale period
/// (`EngineConfig::backup_stale_after`): a live copier reports many times before it could be
/// taken for a dead one.
const HEARTBEATS_PER_STALE_PERIOD: u32 = 12;
/// How long a system backup is kept (DynamoDB: 35 days).
const SYSTEM_RETENTION_SECS: f64 = 35.0 * 86_400.0;

/// BackupStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupStatus {
    Creating,
    Available,
    Deleted,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Creating => "CREATING",
            BackupStatus::Available => "AVAILABLE",
            BackupStatus::Deleted => "DELETED",
        }
    }
}

/// BackupType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupType {
    User,
    System,
}

impl BackupType {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::User => "USER",
            BackupType::System => "SYSTEM",
        }
    }
}

/// A backup as stored (and as the API describes it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub status: BackupStatus,
    pub backup_type: BackupType,
    /// Epoch seconds.
    pub created: f64,
    /// System backups: when they are removed (epoch seconds).
    pub expires: Option<f64>,
    /// Known once `AVAILABLE`.
    pub size_bytes: Option<u64>,
    pub item_count: u64,
    pub table_arn: String,
    /// The table's definition when the backup was taken.
    pub def: TableDef,
    /// The table's TTL setting then (attribute name), if enabled.
    pub ttl_attribute: Option<String>,
    /// The keyspace holding the items.
    keyspace: String,
    /// When the copier last reported (epoch seconds).
    heartbeat: f64,
}

/// ListBackups' filters.
#[derive(Debug, Clone, Default)]
pub struct ListBackupsInput {
    pub table: Option<String>,
    /// Inclusive, epoch seconds.
    pub lower: Option<f64>,
    /// Exclusive, epoch seconds.
    pub upper: Option<f64>,
    /// USER, SYSTEM, AWS_BACKUP or ALL (`None`: USER).
    pub backup_type: Option<String>,
    pub limit: Option<usize>,
    pub exclusive_start: Option<String>,
}

fn not_found(arn: &str) -> Error {
    Error::BackupNotFound(format!("Backup not found: {arn}"))
}

/// A new backup id, as DynamoDB forms them: the creation time in milliseconds (14 digits), a
/// dash, 8 hex digits.
fn backup_id(created: f64) -> String {
    format!(
        "{:014}-{}",
        (created * 1000.0) as u64,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// The backup id at the end of a backup ARN (`.../table/T/backup/ID`).
fn id_of(arn: &str) -> Option<&str> {
    let (_, id) = arn.rsplit_once("/backup/")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

impl Engine {
    fn put_backup(&self, b: &Backup, durability: Durability) -> Result<(), Error> {
        let raw = serde_json::to_vec(b).map_err(Error::internal)?;
        let mut batch = WriteBatch::default();
        batch.put(BACKUPS, b.id.as_bytes(), raw);
        self.storage.write(batch, durability).map_err(storage_err)
    }

    fn backup_by_id(&self, id: &str) -> Result<Option<Backup>, Error> {
        match self
            .storage
            .get(BACKUPS, id.as_bytes())
            .map_err(storage_err)?
        {
            Some(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| Error::internal(format!("backup record: {e}"))),
            None => Ok(None),
        }
    }

    /// The backup with this ARN (BackupNotFoundException otherwise).
    fn backup(&self, arn: &str) -> Result<Backup, Error> {
        let id = id_of(arn).ok_or_else(|| not_found(arn))?;
        self.backup_by_id(id)?
            .filter(|b| b.arn == arn)
            .ok_or_else(|| not_found(arn))
    }

    /// The keyspaces holding backups' items; `None` if a record is unreadable (its keyspace
    /// is then unknown).
    pub(crate) fn backup_keyspaces(&self) -> Result<Option<Vec<String>>, Error> {
        if !self.storage.keyspace_exists(BACKUPS) {
            return Ok(Some(Vec::new()));
        }
        let mut out = Some(Vec::new());
        self.storage
            .scan(
                BACKUPS,
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |_, v| {
                    match serde_json::from_slice::<Backup>(v) {
                        Ok(b) => out.iter_mut().for_each(|o| o.push(b.keyspace.clone())),
                        Err(_) => out = None,
                    }
                    true
                },
            )
            .map_err(storage_err)?;
        Ok(out)
    }

    fn all_backups(&self) -> Result<Vec<Backup>, Error> {
        let mut out = Vec::new();
        let mut bad = 0;
        self.storage
            .scan(
                BACKUPS,
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |_, v| {
                    match serde_json::from_slice::<Backup>(v) {
                        Ok(b) => out.push(b),
                        Err(_) => bad += 1,
                    }
                    true
                },
            )
            .map_err(storage_err)?;
        if bad > 0 {
            tracing::warn!(records = bad, "unreadable backup records skipped");
        }
        Ok(out)
    }

    /// CreateBackup: a consistent snapshot of the table, copied in the background. Answers
    /// once the copy is done or after a short wait (then `CREATING`).
    pub fn create_backup(&self, table: &str, name: &str) -> Result<Backup, Error> {
        self.storage.create_keyspace(BACKUPS).map_err(storage_err)?;
        let (backup, snap) = {
            let _ddl = self.ddl.lock()?;
            let t = self.backup_table(table)?;
            if t.def.loading() {
                return Err(Error::TableInUse(format!(
                    "Table is being restored: {table}"
                )));
            }
            let created = now_epoch();
            let id = backup_id(created);
            let table_arn = t.def.arn(&self.config.region, &self.config.account);
            let b = Backup {
                arn: format!("{table_arn}/backup/{id}"),
                keyspace: format!("b-{id}"),
                id,
                name: name.to_string(),
                status: BackupStatus::Creating,
                backup_type: BackupType::User,
                created,
                expires: None,
                size_bytes: None,
                item_count: 0,
                table_arn,
                ttl_attribute: self.ttl_attribute(&t.def),
                def: t.def.clone(),
                heartbeat: created,
            };
            self.storage
                .create_keyspace(&b.keyspace)
                .map_err(storage_err)?;
            self.put_backup(&b, Durability::Sync)?;
            (b, self.storage.snapshot())
        };
        let (tx, rx) = std::sync::mpsc::channel();
        match self.myself() {
            Some(engine) => {
                let b = backup.clone();
                let spawned = std::thread::Builder::new()
                    .name("backup".into())
                    .spawn(move || {
                        let r = engine.copy_backup(b, &*snap);
                        let _ = tx.send(r);
                    });
                if let Err(e) = spawned {
                    return Err(Error::internal(format!("cannot start a backup: {e}")));
                }
            }
            None => {
                let _ = tx.send(self.copy_backup(backup.clone(), &*snap));
            }
        }
        match rx.recv_timeout(ANSWER_WAIT) {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(backup),
        }
    }

    /// Copies a backup's items from `snap` and makes it `AVAILABLE`; on failure removes it.
    fn copy_backup(&self, mut b: Backup, snap: &dyn Snapshot) -> Result<Backup, Error> {
        let r = self.copy_items(&mut b, snap);
        if let Err(e) = r {
            tracing::error!(backup = %b.arn, error = %e, "backup failed; it is removed");
            self.remove_backup(&b)?;
            return Err(e);
        }
        b.status = BackupStatus::Available;
        b.heartbeat = now_epoch();
        if let Err(e) = self.update_copying(&b, Durability::Sync) {
            // Removed meanwhile (taken for an abandoned copy): what it copied goes too.
            self.remove_backup(&b)?;
            return Err(e);
        }
        Ok(b)
    }

    /// Writes the record of a backup being copied (progress, or its final status) unless the
    /// backup was removed meanwhile: checked and written under the ddl lock, which removals
    /// also hold, so a removed backup is never written back (its record would then describe
    /// items whose keyspace is gone).
    fn update_copying(&self, b: &Backup, durability: Durability) -> Result<(), Error> {
        let _ddl = self.ddl.lock()?;
        match self.backup_by_id(&b.id)? {
            Some(current) if current.status == BackupStatus::Creating => {
                self.put_backup(b, durability)
            }
            _ => Err(Error::internal("backup removed while it was copied")),
        }
    }

    fn copy_items(&self, b: &mut Backup, snap: &dyn Snapshot) -> Result<(), Error> {
        let mut after: Option<Vec<u8>> = None;
        let (mut items, mut bytes) = (0u64, 0u64);
        let mut reported = Instant::now();
        let heartbeat = self.config.backup_stale_after / HEARTBEATS_PER_STALE_PERIOD;
        loop {
            let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(COPY_CHUNK);
            snap.scan(
                &b.def.keyspace,
                after.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    chunk.push((k.to_vec(), v.to_vec()));
                    chunk.len() < COPY_CHUNK
                },
            )
            .map_err(storage_err)?;
            let full = chunk.len() == COPY_CHUNK;
            after = chunk.last().map(|(k, _)| k.clone());
            let mut batch = WriteBatch::default();
            for (k, v) in chunk {
                items += 1;
                bytes += itemcodec::stored_size(&v)? as u64;
                batch.put(&b.keyspace, k, v);
            }
            if !batch.is_empty() {
                self.storage
                    .write(batch, Durability::Buffered)
                    .map_err(storage_err)?;
            }
            if reported.elapsed() >= heartbeat {
                reported = Instant::now();
                b.heartbeat = now_epoch();
                b.item_count = items;
                self.update_copying(b, Durability::Buffered)?;
            }
            if !full {
                break;
            }
        }
        self.storage.flush().map_err(storage_err)?;
        b.item_count = items;
        b.size_bytes = Some(bytes);
        Ok(())
    }

    fn remove_backup(&self, b: &Backup) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        batch.delete(BACKUPS, b.id.as_bytes());
        self.storage
            .write(batch, Durability::Sync)
            .map_err(storage_err)?;
        self.storage.drop_keyspace(&b.keyspace).map_err(storage_err)
    }

    /// True while a backup of the table `def` is being copied by a live copier (a `CREATING`
    /// backup not yet taken for abandoned). DeleteTable refuses then, as DynamoDB refuses to
    /// delete the source table of a backup in progress (the copy reads the table's keyspace).
    /// Callers hold the ddl lock, under which backups are registered.
    pub(crate) fn backup_in_progress(&self, def: &TableDef) -> Result<bool, Error> {
        if !self.storage.keyspace_exists(BACKUPS) {
            return Ok(false);
        }
        let stale = self.config.backup_stale_after.as_secs_f64();
        let now = now_epoch();
        Ok(self.all_backups()?.iter().any(|b| {
            b.status == BackupStatus::Creating && b.def.id == def.id && now - b.heartbeat <= stale
        }))
    }

    /// DescribeBackup.
    pub fn describe_backup(&self, arn: &str) -> Result<Backup, Error> {
        if !self.storage.keyspace_exists(BACKUPS) {
            return Err(not_found(arn));
        }
        self.backup(arn)
    }

    /// DeleteBackup: returns the backup as deleted.
    pub fn delete_backup(&self, arn: &str) -> Result<Backup, Error> {
        if !self.storage.keyspace_exists(BACKUPS) {
            return Err(not_found(arn));
        }
        let _ddl = self.ddl.lock()?;
        let mut b = self.backup(arn)?;
        let restoring = self.tables.read().values().any(|t| {
            t.def.loading()
                && t.def
                    .restore
                    .as_ref()
                    .is_some_and(|r| r.source_backup_arn.as_deref() == Some(arn))
        });
        if b.status == BackupStatus::Creating || restoring {
            return Err(Error::BackupInUse(format!(
                "Backup is being used to restore a table or is still being created: {arn}"
            )));
        }
        self.remove_backup(&b)?;
        b.status = BackupStatus::Deleted;
        Ok(b)
    }

    /// ListBackups: backups by creation time, filtered and paged.
    pub fn list_backups(
        &self,
        input: ListBackupsInput,
    ) -> Result<(Vec<Backup>, Option<String>), Error> {
        if !self.storage.keyspace_exists(BACKUPS) {
            return Ok((Vec::new(), None));
        }
        let wanted = input.backup_type.as_deref().unwrap_or("USER");
        let mut all: Vec<Backup> = self
            .all_backups()?
            .into_iter()
            .filter(|b| input.table.as_deref().is_none_or(|t| b.def.name == t))
            .filter(|b| input.lower.is_none_or(|l| b.created >= l))
            .filter(|b| input.upper.is_none_or(|u| b.created < u))
            .filter(|b| wanted == "ALL" || b.backup_type.as_str() == wanted)
            .collect();
        all.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.id.cmp(&b.id)));
        let start = match &input.exclusive_start {
            Some(arn) => all.iter().position(|b| &b.arn == arn).map_or(0, |i| i + 1),
            None => 0,
        };
        let limit = input.limit.unwrap_or(usize::MAX);
        let page: Vec<Backup> = all[start.min(all.len())..]
            .iter()
            .take(limit)
            .cloned()
            .collect();
        let last = (start + page.len() < all.len())
            .then(|| page.last().map(|b| b.arn.clone()))
            .flatten();
        Ok((page, last))
    }

    /// RestoreTableFromBackup: a new table `target` from an `AVAILABLE` backup.
    pub fn restore_table_from_backup(
        &self,
        target: &str,
        arn: &str,
        overrides: RestoreOverrides,
    ) -> Result<TableDescription, Error> {
        if !self.storage.keyspace_exists(BACKUPS) {
            return Err(not_found(arn));
        }
        let b = self.backup(arn)?;
        if self.lookup(target)?.is_some() {
            return Err(Error::TableAlreadyExists(format!(
                "Table already exists: {target}"
            )));
        }
        if b.status != BackupStatus::Available {
            return Err(Error::BackupInUse(format!(
                "Backup is still being created: {arn}"
            )));
        }
        self.start_restore(
            &b.def,
            target,
            overrides,
            RestoreSummary {
                source_backup_arn: Some(b.arn.clone()),
                source_table_arn: Some(b.table_arn.clone()),
                restore_time: b.created,
                in_progress: true,
                job: Some(LoadJob::Backup {
                    keyspace: b.keyspace.clone(),
                }),
            },
        )
    }

    /// RestoreTableToPointInTime: a new table `target` from `source` as it was at `at`
    /// (epoch seconds; `None`: the latest restorable time).
    pub fn restore_table_to_point_in_time(
        &self,
        source: &str,
        target: &str,
        at: Option<f64>,
        overrides: RestoreOverrides,
    ) -> Result<TableDescription, Error> {
        let src = self.backup_table(source)?;
        if self.lookup(target)?.is_some() {
            return Err(Error::TableAlreadyExists(format!(
                "Table already exists: {target}"
            )));
        }
        let at = at.unwrap_or_else(now_epoch);
        self.restorable(&src, at)?;
        self.start_restore(
            &src.def,
            target,
            overrides,
            RestoreSummary {
                source_backup_arn: None,
                source_table_arn: Some(src.def.arn(&self.config.region, &self.config.account)),
                restore_time: at,
                in_progress: true,
                job: Some(LoadJob::PointInTime {
                    table: src.def.name.clone(),
                    id: src.def.id.clone(),
                    at_us: crate::pitr::micros(at),
                }),
            },
        )
    }

    /// The system backup that replaces a table deleted with point-in-time recovery enabled:
    /// its record, staged into `batch` (the deletion's), with the table's item keyspace as the
    /// backup's (caller keeps that keyspace).
    pub(crate) fn stage_system_backup(
        &self,
        t: &Table,
        batch: &mut WriteBatch,
    ) -> Result<(), Error> {
        self.storage.create_keyspace(BACKUPS).map_err(storage_err)?;
        let created = now_epoch();
        let id = backup_id(created);
        let table_arn = t.def.arn(&self.config.region, &self.config.account);
        let (items, bytes) = self.item_statistics(t);
        let b = Backup {
            arn: format!("{table_arn}/backup/{id}"),
            keyspace: t.def.keyspace.clone(),
            id,
            name: format!("{}$DeletedTableBackup", t.def.name),
            status: BackupStatus::Available,
            backup_type: BackupType::System,
            created,
            expires: Some(created + SYSTEM_RETENTION_SECS),
            size_bytes: Some(bytes),
            item_count: items,
            table_arn,
            ttl_attribute: self.ttl_attribute(&t.def),
            def: t.def.clone(),
            heartbeat: created,
        };
        let raw = serde_json::to_vec(&b).map_err(Error::internal)?;
        batch.put(BACKUPS, b.id.as_bytes(), raw);
        Ok(())
    }

    /// Removes backups whose copy was interrupted (all `CREATING` ones at start on an embedded
    /// engine; stale ones on a shared engine) and expired system backups.
    pub(crate) fn clean_backups(&self, at_start: bool) -> Result<(), Error> {
        if !self.storage.keyspace_exists(BACKUPS) || !self.leads_background() {
            return Ok(());
        }
        let stale = self.config.backup_stale_after.as_secs_f64();
        let due = |b: &Backup, now: f64| {
            let interrupted = b.status == BackupStatus::Creating
                && ((at_start && !self.shared) || now - b.heartbeat > stale);
            (
                interrupted,
                interrupted || b.expires.is_some_and(|e| e <= now),
            )
        };
        for b in self.all_backups()? {
            if !due(&b, now_epoch()).1 {
                continue;
            }
            // Checked again under the ddl lock, which a copier holds to report progress: a
            // copier that reported meanwhile is alive, and one that reports later finds its
            // backup gone and stops.
            let _ddl = self.ddl.lock()?;
            let Some(b) = self.backup_by_id(&b.id)? else {
                continue;
            };
            let (interrupted, remove) = due(&b, now_epoch());
            if remove {
                if interrupted {
                    tracing::error!(backup = %b.arn, "an interrupted backup is removed");
                }
                self.remove_backup(&b)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copier taken for dead (here: every copier, the stale period being a nanosecond) and
    /// removed while it copies must not write its backup back: what is listed is complete.
    #[test]
    fn a_backup_removed_while_it_is_copied_never_comes_back() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let config = crate::EngineConfig {
            backup_stale_after: Duration::from_nanos(1),
            ..crate::EngineConfig::default()
        };
        let storage = Arc::new(ferrodyn_storage::MemoryStorage::new());
        let engine = Arc::new(Engine::open(storage, config).unwrap());
        crate::create_hash_table(&engine, "tbl");
        for i in 0..2000 {
            let item = ferrodyn_model::Item::from([(
                "pk".to_string(),
                ferrodyn_model::AttributeValue::S(format!("k{i}")),
            )]);
            engine
                .put_item(crate::items::PutItemInput {
                    table: "tbl".into(),
                    item,
                    ..Default::default()
                })
                .unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let cleaner = {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    engine.clean_backups(false).unwrap();
                }
            })
        };
        let mut completed = 0;
        for n in 0..100 {
            // No background worker: the copy runs in this thread.
            if let Ok(b) = engine.create_backup("tbl", &format!("b{n}")) {
                assert_eq!(b.status, BackupStatus::Available);
                completed += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        cleaner.join().unwrap();
        for b in engine.all_backups().unwrap() {
            assert_eq!(b.status, BackupStatus::Available, "{}", b.name);
            let mut items = 0;
            engine
                .storage
                .scan(
                    &b.keyspace,
                    Bound::Unbounded,
                    Bound::Unbounded,
                    false,
                    &mut |_, _| {
                        items += 1;
                        true
                    },
                )
                .unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert_eq!((items, b.item_count), (2000, 2000), "{}", b.name);
        }
        eprintln!(
            "{completed} of 100 copies completed, {} listed",
            engine.all_backups().unwrap().len()
        );
    }

    #[test]
    fn backup_ids_come_from_arns() {
        assert_eq!(
            id_of("arn:aws:dynamodb:us-east-1:1:table/t/backup/01234-abcd"),
            Some("01234-abcd")
        );
        assert_eq!(id_of("arn:aws:dynamodb:us-east-1:1:table/t"), None);
        assert_eq!(id_of("x/backup/"), None);
        assert_eq!(id_of("x/backup/a/b"), None);
    }
}
