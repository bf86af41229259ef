//! Control plane: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable.
//!
//! Invariant: the in-memory catalog and the catalog keyspace change together, under the `ddl`
//! lock; a table's item keyspace exists before its catalog record is visible.

use std::collections::HashSet;
use std::sync::Arc;

use ferrodyn_model::Error;
use ferrodyn_storage::WriteBatch;

use crate::table::{
    BillingMode, IndexDef, IndexStatus, KeyAttr, ProjectionType, StreamSpec, TableDef,
    TableDescription, TableStatus, Throughput, TABLE_DEF_VERSION,
};
use crate::{now_epoch, storage_err, Counters, Engine, Table, CATALOG};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Hash,
    Range,
}

#[derive(Debug, Clone)]
pub struct KeySchemaElement {
    pub name: String,
    pub key_type: KeyType,
}

#[derive(Debug, Clone)]
pub struct IndexInput {
    pub name: String,
    pub key_schema: Vec<KeySchemaElement>,
    pub projection_type: Option<ProjectionType>,
    pub non_key_attributes: Option<Vec<String>>,
    pub provisioned: Option<(i64, i64)>,
    /// Global indexes of on-demand tables: OnDemandThroughput (maximum read and write request
    /// units, -1: none).
    pub on_demand: Option<(Option<i64>, Option<i64>)>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateTableInput {
    pub name: String,
    pub attribute_definitions: Vec<KeyAttr>,
    pub key_schema: Vec<KeySchemaElement>,
    pub billing_mode: Option<BillingMode>,
    pub provisioned: Option<(i64, i64)>,
    pub deletion_protection: Option<bool>,
    pub table_class: Option<String>,
    pub stream: Option<StreamSpec>,
    pub local_indexes: Option<Vec<IndexInput>>,
    pub global_indexes: Option<Vec<IndexInput>>,
    pub tags: Vec<(String, String)>,
    /// OnDemandThroughput: maximum read and write request units (-1: none).
    pub on_demand: Option<(Option<i64>, Option<i64>)>,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateTableInput {
    pub name: String,
    pub attribute_definitions: Option<Vec<KeyAttr>>,
    pub billing_mode: Option<BillingMode>,
    pub provisioned: Option<(i64, i64)>,
    pub deletion_protection: Option<bool>,
    pub table_class: Option<String>,
    pub stream: Option<StreamSpec>,
    /// GlobalSecondaryIndexUpdates, in request order.
    pub gsi_updates: Option<Vec<GsiUpdate>>,
    /// OnDemandThroughput: maximum read and write request units (-1: remove the maximum).
    pub on_demand: Option<(Option<i64>, Option<i64>)>,
}

/// One element of UpdateTable's GlobalSecondaryIndexUpdates.
#[derive(Debug, Clone)]
pub enum GsiUpdate {
    Create(IndexInput),
    Update {
        name: String,
        provisioned: Option<(i64, i64)>,
        on_demand: Option<(Option<i64>, Option<i64>)>,
    },
    Delete {
        name: String,
    },
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Validation(format!(
        "One or more parameter values were invalid: {}",
        msg.into()
    ))
}

const MAX_PROVISIONED: i64 = 40_000;

/// Validates a key schema against attribute definitions; returns (hash, range).
fn resolve_key_schema(
    ks: &[KeySchemaElement],
    defs: &[KeyAttr],
    what: &str,
) -> Result<(KeyAttr, Option<KeyAttr>), Error> {
    let lookup = |name: &str| defs.iter().find(|d| d.name == name).cloned();
    let first = ks.first().ok_or_else(|| {
        Error::validation(format!(
            "Invalid {what}: The number of key schema elements must be 1 or 2"
        ))
    })?;
    if first.key_type != KeyType::Hash {
        return Err(Error::validation(format!(
            "Invalid {what}: The first KeySchemaElement is not a HASH key type"
        )));
    }
    let range = ks.get(1);
    if let Some(r) = range {
        if r.key_type != KeyType::Range {
            return Err(Error::validation(format!(
                "Invalid {what}: The second KeySchemaElement is not a RANGE key type"
            )));
        }
        if r.name == first.name {
            return Err(Error::validation(format!(
                // AWS reports a repeated key attribute as a missing definition.
                "Invalid {what}: Some index key attribute have no definition"
            )));
        }
    }
    let hash = lookup(&first.name).ok_or_else(|| {
        Error::validation(format!(
            "Invalid {what}: Some index key attribute have no definition"
        ))
    })?;
    let range = match range {
        Some(r) => Some(lookup(&r.name).ok_or_else(|| {
            Error::validation(format!(
                "Invalid {what}: Some index key attribute have no definition"
            ))
        })?),
        None => None,
    };
    Ok((hash, range))
}

/// Most attributes of each kind in a global secondary index's multi-attribute key.
const MAX_GSI_KEY_ATTRS: usize = 4;

/// The key attributes of a global secondary index: HASH ones, then RANGE ones.
type GsiKeys = (Vec<KeyAttr>, Vec<KeyAttr>);

/// Validates a global secondary index's key schema: 1 to 4 HASH elements followed by 0 to 4
/// RANGE elements (multi-attribute keys), all defined. A one-HASH, at-most-one-RANGE schema
/// gets exactly the checks and messages of [`resolve_key_schema`].
fn resolve_gsi_key_schema(ks: &[KeySchemaElement], defs: &[KeyAttr]) -> Result<GsiKeys, Error> {
    let hashes = ks.iter().filter(|k| k.key_type == KeyType::Hash).count();
    let ranges = ks.len() - hashes;
    if ks.len() <= 2 && hashes <= 1 {
        let (h, r) = resolve_key_schema(ks, defs, "KeySchema")?;
        return Ok((vec![h], r.into_iter().collect()));
    }
    let what = "KeySchema";
    if ks.first().is_some_and(|k| k.key_type != KeyType::Hash) {
        return Err(Error::validation(format!(
            "Invalid {what}: The first KeySchemaElement is not a HASH key type"
        )));
    }
    if ks[..hashes].iter().any(|k| k.key_type != KeyType::Hash) {
        return Err(Error::validation(format!(
            "Invalid {what}: All HASH KeySchemaElements must precede all RANGE KeySchemaElements"
        )));
    }
    if hashes > MAX_GSI_KEY_ATTRS {
        return Err(Error::validation(format!(
            "Invalid {what}: The number of HASH KeySchemaElements must be between 1 and {MAX_GSI_KEY_ATTRS}"
        )));
    }
    if ranges > MAX_GSI_KEY_ATTRS {
        return Err(Error::validation(format!(
            "Invalid {what}: The number of RANGE KeySchemaElements must be between 0 and {MAX_GSI_KEY_ATTRS}"
        )));
    }
    let mut seen = HashSet::new();
    if let Some(dup) = ks.iter().find(|k| !seen.insert(k.name.as_str())) {
        return Err(Error::validation(format!(
            "Invalid {what}: KeySchemaElements must not have the same name: {}",
            dup.name
        )));
    }
    let lookup = |k: &KeySchemaElement| {
        defs.iter()
            .find(|d| d.name == k.name)
            .cloned()
            .ok_or_else(|| {
                Error::validation(format!(
                    "Invalid {what}: Some index key attribute have no definition"
                ))
            })
    };
    let h = ks[..hashes].iter().map(lookup).collect::<Result<_, _>>()?;
    let r = ks[hashes..].iter().map(lookup).collect::<Result<_, _>>()?;
    Ok((h, r))
}

/// Index key attributes must all be defined (AWS names them and the definitions).
fn check_index_keys_defined(ix: &IndexInput, defs: &[KeyAttr]) -> Result<(), Error> {
    let keys: Vec<&str> = ix.key_schema.iter().map(|k| k.name.as_str()).collect();
    if keys.iter().all(|k| defs.iter().any(|d| d.name == *k)) {
        return Ok(());
    }
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    Err(invalid(format!(
        "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
        keys.join(", "),
        names.join(", ")
    )))
}

fn check_throughput(r: i64, w: i64) -> Result<(), Error> {
    if r > MAX_PROVISIONED || w > MAX_PROVISIONED {
        return Err(Error::LimitExceeded(format!(
            "Subscriber limit exceeded: Provisioned throughput for the table can not exceed {MAX_PROVISIONED} read or write capacity units."
        )));
    }
    Ok(())
}

impl Engine {
    pub fn create_table(&self, input: CreateTableInput) -> Result<TableDescription, Error> {
        let def = self.prepare_table(input)?;
        let table = self.install_table(def, |name| {
            Error::ResourceInUse(format!("Table already exists: {name}"))
        })?;
        Ok(self.describe(&table, TableStatus::Creating))
    }

    /// Validates a CreateTable request (in DynamoDB's order) into a new table's definition.
    pub(crate) fn prepare_table(&self, input: CreateTableInput) -> Result<TableDef, Error> {
        // Attribute definitions: no duplicates.
        let mut seen = HashSet::new();
        for d in &input.attribute_definitions {
            if !seen.insert(d.name.as_str()) {
                return Err(invalid(format!(
                    "Duplicate AttributeName in AttributeDefinitions: {}",
                    d.name
                )));
            }
        }
        let (hash_key, range_key) =
            resolve_key_schema(&input.key_schema, &input.attribute_definitions, "KeySchema")?;
        crate::tags::validate_tags(&input.tags)?;

        let billing_mode = input.billing_mode.unwrap_or(BillingMode::Provisioned);
        let throughput = match (billing_mode, input.provisioned) {
            (BillingMode::Provisioned, None) => {
                return Err(invalid("ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"))
            }
            (BillingMode::Provisioned, Some((r, w))) => {
                check_throughput(r, w)?;
                Throughput { read: r, write: w, last_increase: None, last_decrease: None, decreases_today: 0 }
            }
            (BillingMode::PayPerRequest, Some(_)) => {
                return Err(invalid(
                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ))
            }
            (BillingMode::PayPerRequest, None) => {
                Throughput { read: 0, write: 0, last_increase: None, last_decrease: None, decreases_today: 0 }
            }
        };

        let id = uuid::Uuid::new_v4().to_string();
        let mut used: HashSet<&str> = HashSet::new();
        used.insert(hash_key.name.as_str());
        if let Some(r) = &range_key {
            used.insert(r.name.as_str());
        }

        // Secondary indexes: definitions are validated and recorded.
        let mut names = HashSet::new();
        let mut local_indexes = Vec::new();
        if let Some(lsis) = &input.local_indexes {
            if range_key.is_none() {
                return Err(invalid(
                    "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
                ));
            }
            if lsis.is_empty() {
                return Err(invalid("List of LocalSecondaryIndexes is empty"));
            }
            for ix in lsis {
                if !names.insert(ix.name.clone()) {
                    return Err(invalid(format!("Duplicate index name: {}", ix.name)));
                }
                check_index_keys_defined(ix, &input.attribute_definitions)?;
                let (h, r) =
                    resolve_key_schema(&ix.key_schema, &input.attribute_definitions, "KeySchema")?;
                if h.name != hash_key.name {
                    return Err(invalid(format!(
                        "Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                        ix.name, h.name, hash_key.name
                    )));
                }
                let Some(r) = r else {
                    return Err(invalid(format!(
                        "Index KeySchema must have a range key for index: {}",
                        ix.name
                    )));
                };
                used.insert(
                    input
                        .attribute_definitions
                        .iter()
                        .find(|d| d.name == r.name)
                        .map(|d| d.name.as_str())
                        .unwrap_or(""),
                );
                local_indexes.push(index_def(ix, vec![h], vec![r], None, &id)?);
            }
        }
        let mut global_indexes = Vec::new();
        if let Some(gsis) = &input.global_indexes {
            if gsis.is_empty() {
                return Err(invalid("List of GlobalSecondaryIndexes is empty"));
            }
            for ix in gsis {
                if !names.insert(ix.name.clone()) {
                    return Err(invalid(format!("Duplicate index name: {}", ix.name)));
                }
                check_index_keys_defined(ix, &input.attribute_definitions)?;
                let (h, r) = resolve_gsi_key_schema(&ix.key_schema, &input.attribute_definitions)?;
                for k in h.iter().chain(&r) {
                    if let Some(d) = input
                        .attribute_definitions
                        .iter()
                        .find(|d| d.name == k.name)
                    {
                        used.insert(d.name.as_str());
                    }
                }
                let tp = gsi_throughput(billing_mode, ix)?;
                let mut gsi = index_def(ix, h, r, tp, &id)?;
                if billing_mode == BillingMode::PayPerRequest {
                    gsi.on_demand = merge_on_demand(None, ix.on_demand);
                }
                global_indexes.push(gsi);
            }
        }
        if input.attribute_definitions.len() != used.len() {
            return Err(invalid(
                "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
        if let Some(s) = &input.stream {
            if s.enabled && s.view_type.is_none() {
                return Err(invalid(
                    "StreamSpecification: StreamViewType is required when streams are enabled",
                ));
            }
            if !s.enabled && s.view_type.is_some() {
                return Err(invalid(
                    "Stream ViewType must not be specified if StreamEnabled is false",
                ));
            }
        }

        let created = now_epoch();
        let stream = input.stream.filter(|s| s.enabled);
        let stream_label = stream.as_ref().map(|_| stream_label(created));
        let def = TableDef {
            version: TABLE_DEF_VERSION,
            name: input.name.clone(),
            keyspace: format!("t-{id}"),
            id,
            hash_key,
            range_key,
            attribute_definitions: input.attribute_definitions,
            billing_mode,
            throughput,
            billing_mode_last_update: (billing_mode == BillingMode::PayPerRequest)
                .then_some(created),
            created,
            deletion_protection: input.deletion_protection.unwrap_or(false),
            table_class: input.table_class.unwrap_or_else(|| "STANDARD".into()),
            stream,
            stream_label,
            tags: input.tags,
            local_indexes,
            global_indexes,
            resource_policies: Vec::new(),
            on_demand: match billing_mode {
                BillingMode::PayPerRequest => merge_on_demand(None, input.on_demand),
                BillingMode::Provisioned => None,
            },
            pitr: None,
            restore: None,
        };
        Ok(def)
    }

    /// Creates the keyspaces of a new table and publishes its definition; `exists` is the
    /// error when the name is taken.
    pub(crate) fn install_table(
        &self,
        def: TableDef,
        exists: impl FnOnce(&str) -> Error,
    ) -> Result<Arc<Table>, Error> {
        let _ddl = self.ddl.lock()?;
        if self.tables.read().contains_key(&def.name) {
            return Err(exists(&def.name));
        }
        self.storage
            .create_keyspace(&def.keyspace)
            .map_err(storage_err)?;
        for ix in def.local_indexes.iter().chain(&def.global_indexes) {
            self.storage
                .create_keyspace(&ix.keyspace)
                .map_err(storage_err)?;
        }
        self.persist_def(&def, "CreateTable")?;
        let table = Arc::new(Table {
            def,
            counters: Arc::new(Counters::new(&self.config)),
        });
        self.tables
            .write()
            .insert(table.def.name.clone(), table.clone());
        Ok(table)
    }

    /// Drops the keyspaces a crash left without an owner. A table's item and index keyspaces
    /// (and an index's, a history's, a backup's) are created before the catalog or backup
    /// record that names them is written, and dropped after that record is deleted: a crash in
    /// between leaves a keyspace nothing refers to, invisible and holding its disk space for
    /// ever. Only on storage of one node: on shared storage another node may be between the two
    /// steps right now.
    pub(crate) fn drop_orphan_keyspaces(&self) -> Result<(), Error> {
        if self.shared {
            return Ok(());
        }
        let mut owned: HashSet<String> = HashSet::new();
        for t in self.tables.read().values() {
            let def = &t.def;
            owned.insert(def.keyspace.clone());
            for ix in def.local_indexes.iter().chain(&def.global_indexes) {
                owned.insert(ix.keyspace.clone());
            }
            if let Some(p) = &def.pitr {
                owned.insert(p.keyspace.clone());
            }
        }
        // A system backup keeps its table's item keyspace: with an unreadable backup record,
        // keyspaces of items and backups are left alone.
        let prefixes: &[&str] = match self.backup_keyspaces()? {
            Some(backups) => {
                owned.extend(backups);
                &["t-", "i-", "h-", "b-"]
            }
            None => &["i-", "h-"],
        };
        for ks in self.storage.list_keyspaces() {
            if prefixes.iter().any(|p| ks.starts_with(p)) && !owned.contains(&ks) {
                tracing::warn!(keyspace = %ks, "dropping a keyspace a crash left without its table or backup");
                self.storage.drop_keyspace(&ks).map_err(storage_err)?;
            }
        }
        Ok(())
    }

    /// Writes a table's catalog record for `operation`, with its audit record in the same batch.
    pub(crate) fn persist_def(&self, def: &TableDef, operation: &str) -> Result<(), Error> {
        let raw = serde_json::to_vec(def).map_err(Error::internal)?;
        let mut batch = WriteBatch::default();
        batch.put(CATALOG, def.name.as_bytes(), &raw);
        self.write_control(batch, operation, &def.name)
    }

    pub(crate) fn describe(&self, table: &Table, status: TableStatus) -> TableDescription {
        let def = table.def.clone();
        let arn = def.arn(&self.config.region, &self.config.account);
        let stream_arn = def
            .stream_label
            .as_ref()
            .map(|l| format!("{arn}/stream/{l}"));
        let mut index_stats = std::collections::HashMap::new();
        for ix in def.local_indexes.iter().chain(&def.global_indexes) {
            if let Ok(st) = self.storage.stats(&ix.keyspace) {
                index_stats.insert(ix.name.clone(), (st.approximate_keys, st.approximate_bytes));
            }
        }
        let (item_count, size_bytes) = self.item_statistics(table);
        TableDescription {
            index_stats,
            arn,
            status,
            item_count,
            size_bytes,
            stream_arn,
            def,
        }
    }

    pub fn describe_table(&self, name: &str) -> Result<TableDescription, Error> {
        let table = self.lookup(name)?.ok_or_else(|| {
            Error::ResourceNotFound(format!(
                "Requested resource not found: Table: {name} not found"
            ))
        })?;
        let status = if table.def.loading() {
            TableStatus::Creating
        } else {
            TableStatus::Active
        };
        Ok(self.describe(&table, status))
    }

    /// Table names in lexicographic order, starting after `exclusive_start`.
    pub fn list_tables(
        &self,
        exclusive_start: Option<&str>,
        limit: usize,
    ) -> (Vec<String>, Option<String>) {
        let mut names: Vec<String> = self.tables.read().keys().cloned().collect();
        names.sort();
        let start = match exclusive_start {
            Some(s) => names.partition_point(|n| n.as_str() <= s),
            None => 0,
        };
        let page: Vec<String> = names[start..].iter().take(limit).cloned().collect();
        let last = if start + page.len() < names.len() {
            page.last().cloned()
        } else {
            None
        };
        (page, last)
    }

    pub fn delete_table(&self, name: &str) -> Result<TableDescription, Error> {
        let _ddl = self.ddl.lock()?;
        let table = self.tables.read().get(name).cloned().ok_or_else(|| {
            Error::ResourceNotFound(format!(
                "Requested resource not found: Table: {name} not found"
            ))
        })?;
        if table.def.deletion_protection {
            return Err(Error::validation(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
            ));
        }
        if table.def.loading() {
            return Err(Error::ResourceInUse(format!(
                "Attempt to change a resource which is still in use: Table is being created: {name}"
            )));
        }
        // A point-in-time restore from this table reads its history until it is loaded.
        let restoring = self.tables.read().values().any(|t| {
            t.def.loading()
                && matches!(
                    t.def.restore.as_ref().and_then(|r| r.job.as_ref()),
                    Some(crate::table::LoadJob::PointInTime { id, .. }) if *id == table.def.id
                )
        });
        if restoring {
            return Err(Error::ResourceInUse(format!(
                "Attempt to change a resource which is still in use: Table is being restored from: {name}"
            )));
        }
        if self.backup_in_progress(&table.def)? {
            return Err(Error::ResourceInUse(format!(
                "Attempt to change a resource which is still in use: Table is being backed up: {name}"
            )));
        }
        let desc = self.describe(&table, TableStatus::Deleting);
        let mut batch = WriteBatch::default();
        batch.delete(CATALOG, name.as_bytes());
        // With point-in-time recovery enabled, the table's items become a system backup
        // (recorded in the same batch), as DynamoDB keeps one of a deleted table.
        let keep_items = table.def.pitr.is_some();
        if keep_items {
            self.stage_system_backup(&table, &mut batch)?;
        }
        // The audit record is in the same batch as the catalog change.
        self.write_control(batch, "DeleteTable", name)?;
        self.tables.write().remove(name);
        let mut def = table.def.clone();
        if keep_items {
            // Its keyspace now belongs to the backup: dropped with the table's others below
            // under a name no keyspace has.
            def.keyspace.clear();
        }
        self.drop_table_keyspaces(&def)?;
        Ok(desc)
    }

    pub fn update_table(&self, input: UpdateTableInput) -> Result<TableDescription, Error> {
        let _ddl = self.ddl.lock()?;
        let table = self
            .tables
            .read()
            .get(&input.name)
            .cloned()
            .ok_or_else(|| {
                Error::ResourceNotFound(format!(
                    "Requested resource not found: Table: {} not found",
                    input.name
                ))
            })?;
        if table.def.loading() {
            return Err(Error::ResourceInUse(format!(
                "Attempt to change a resource which is still in use: Table is being created: {}",
                input.name
            )));
        }
        let mut def = table.def.clone();
        let now = now_epoch();
        let mut changed = false;
        let mut jobs: Vec<(crate::index::Job, String)> = Vec::new();
        if let Some(updates) = &input.gsi_updates {
            self.plan_gsi_updates(
                &mut def,
                updates,
                input.attribute_definitions.as_deref().unwrap_or(&[]),
                &mut jobs,
            )?;
            changed |= !updates.is_empty();
        }
        if let Some(mode) = input.billing_mode {
            if mode != def.billing_mode {
                changed = true;
                def.billing_mode = mode;
                def.billing_mode_last_update = Some(now);
                match mode {
                    BillingMode::PayPerRequest => {
                        if input.provisioned.is_some() {
                            return Err(invalid(
                                "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                            ));
                        }
                        def.throughput.read = 0;
                        def.throughput.write = 0;
                    }
                    BillingMode::Provisioned => {
                        if input.provisioned.is_none() {
                            return Err(invalid(
                                "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                            ));
                        }
                    }
                }
            }
        }
        if let Some((r, w)) = input.provisioned {
            if def.billing_mode == BillingMode::PayPerRequest {
                return Err(invalid(
                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            check_throughput(r, w)?;
            let (or, ow) = (def.throughput.read, def.throughput.write);
            let mode_changed = input
                .billing_mode
                .is_some_and(|m| m != table.def.billing_mode);
            if (r, w) == (or, ow) && !mode_changed {
                return Err(invalid(format!(
                    "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {or}. Requested ReadCapacityUnits: {r}. Current WriteCapacityUnits provisioned for the table: {ow}. Requested WriteCapacityUnits: {w}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
                )));
            }
            if r > or || w > ow {
                def.throughput.last_increase = Some(now);
            }
            if r < or || w < ow {
                def.throughput.last_decrease = Some(now);
                def.throughput.decreases_today += 1;
            }
            def.throughput.read = r;
            def.throughput.write = w;
            changed = true;
        }
        if let Some(p) = input.deletion_protection {
            def.deletion_protection = p;
            changed = true;
        }
        if input.on_demand.is_some() {
            changed = true;
        }
        def.on_demand = match def.billing_mode {
            BillingMode::PayPerRequest => merge_on_demand(def.on_demand, input.on_demand),
            // A provisioned table has no on-demand maximum, and does not keep one for later.
            BillingMode::Provisioned => None,
        };
        if def.billing_mode == BillingMode::Provisioned {
            for ix in &mut def.global_indexes {
                ix.on_demand = None;
            }
        }
        if let Some(c) = input.table_class {
            def.table_class = c;
            changed = true;
        }
        if let Some(s) = input.stream {
            let currently = def.stream.as_ref().is_some_and(|x| x.enabled);
            if s.enabled && s.view_type.is_none() {
                return Err(invalid(
                    "StreamSpecification: StreamViewType is required when streams are enabled",
                ));
            }
            if s.enabled && currently {
                return Err(Error::validation(format!(
                    "Table already has an enabled stream: {}",
                    self.describe(&table, TableStatus::Active)
                        .stream_arn
                        .unwrap_or_default()
                )));
            }
            if !s.enabled && !currently {
                return Err(Error::validation("Table already has its stream disabled"));
            }
            if s.enabled {
                def.stream_label = Some(stream_label(now));
                def.stream = Some(s);
            } else {
                def.stream = None;
            }
            changed = true;
        }
        if !changed && input.billing_mode.is_none() {
            return Err(Error::validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
            ));
        }
        self.persist_def(&def, "UpdateTable")?;
        let new = Arc::new(Table {
            def,
            counters: table.counters.clone(),
        });
        self.tables
            .write()
            .insert(new.def.name.clone(), new.clone());
        for (job, index) in jobs {
            self.spawn_index_job(job, &new.def, &index, Some(table.clone()));
        }
        Ok(self.describe(&new, TableStatus::Updating))
    }
}

/// Throughput of a new global index under the table's billing mode.
fn gsi_throughput(billing_mode: BillingMode, ix: &IndexInput) -> Result<Option<Throughput>, Error> {
    let tp = |read, write| Throughput {
        read,
        write,
        last_increase: None,
        last_decrease: None,
        decreases_today: 0,
    };
    match (billing_mode, ix.provisioned) {
        (BillingMode::Provisioned, None) => Err(invalid(format!(
            "ProvisionedThroughput is not specified for index: {}",
            ix.name
        ))),
        (BillingMode::Provisioned, Some((r, w))) => {
            check_throughput(r, w)?;
            Ok(Some(tp(r, w)))
        }
        (BillingMode::PayPerRequest, Some(_)) => Err(invalid(format!(
            "ProvisionedThroughput should not be specified for index: {} when BillingMode is PAY_PER_REQUEST",
            ix.name
        ))),
        (BillingMode::PayPerRequest, None) => Ok(Some(tp(0, 0))),
    }
}

impl Engine {
    /// Applies GlobalSecondaryIndexUpdates to `def` (validating them first) and lists the
    /// background jobs to start once `def` is installed.
    fn plan_gsi_updates(
        &self,
        def: &mut TableDef,
        updates: &[GsiUpdate],
        new_defs: &[KeyAttr],
        jobs: &mut Vec<(crate::index::Job, String)>,
    ) -> Result<(), Error> {
        let online = updates
            .iter()
            .filter(|u| !matches!(u, GsiUpdate::Update { .. }))
            .count();
        let busy = def
            .global_indexes
            .iter()
            .any(|ix| matches!(ix.status, IndexStatus::Creating | IndexStatus::Deleting));
        if online > 1 || (online == 1 && busy) {
            return Err(Error::LimitExceeded(
                "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table".into(),
            ));
        }
        // Attribute definitions: the table's plus the request's (a redefinition must agree).
        let mut attrs = def.attribute_definitions.clone();
        for a in new_defs {
            match attrs.iter().find(|x| x.name == a.name) {
                Some(x) if x.ty != a.ty => {
                    return Err(invalid(format!(
                        "Attributes cannot be redefined. Please check that your attribute has the same type as previously defined. Existing schema: Schema:[SchemaElement: key{{{}:{}}}] New schema: Schema:[SchemaElement: key{{{}:{}}}]",
                        x.name,
                        x.ty.as_str(),
                        a.name,
                        a.ty.as_str()
                    )))
                }
                Some(_) => {}
                None => attrs.push(a.clone()),
            }
        }
        for u in updates {
            match u {
                GsiUpdate::Create(ix) => {
                    if def.index(&ix.name).is_some() {
                        return Err(Error::validation(
                            "One or more parameter values were invalid: Attempting to create an index which already exists",
                        ));
                    }
                    if def.global_indexes.len() >= 20 {
                        return Err(Error::LimitExceeded(
                            "Subscriber limit exceeded: the number of global secondary indexes of a table cannot exceed 20".into(),
                        ));
                    }
                    // The request itself must define the new index's keys, even when the table
                    // already knows them (AWS checks the request's AttributeDefinitions).
                    check_index_keys_defined(ix, new_defs)?;
                    let (h, r) = resolve_gsi_key_schema(&ix.key_schema, &attrs)?;
                    let tp = gsi_throughput(def.billing_mode, ix)?;
                    let unique = uuid::Uuid::new_v4().simple().to_string();
                    let mut new = index_def(ix, h, r, tp, &format!("{}-{}", def.id, &unique[..8]))?;
                    new.status = IndexStatus::Creating;
                    if def.billing_mode == BillingMode::PayPerRequest {
                        new.on_demand = merge_on_demand(None, ix.on_demand);
                    }
                    self.storage
                        .create_keyspace(&new.keyspace)
                        .map_err(storage_err)?;
                    jobs.push((crate::index::Job::Backfill, new.name.clone()));
                    def.global_indexes.push(new);
                }
                GsiUpdate::Delete { name } => {
                    let Some(ix) = def.global_indexes.iter_mut().find(|ix| &ix.name == name) else {
                        return Err(Error::ResourceNotFound(format!(
                            "Requested resource not found: Index: {name} not found"
                        )));
                    };
                    ix.status = IndexStatus::Deleting;
                    jobs.push((crate::index::Job::Drop, name.clone()));
                }
                GsiUpdate::Update {
                    name,
                    provisioned,
                    on_demand,
                } => {
                    let billing = def.billing_mode;
                    let Some(ix) = def.global_indexes.iter_mut().find(|ix| &ix.name == name) else {
                        return Err(Error::ResourceNotFound(format!(
                            "Requested resource not found: Index: {name} not found"
                        )));
                    };
                    // An on-demand table's index changes only its OnDemandThroughput.
                    if provisioned.is_none() && on_demand.is_some() {
                        if billing == BillingMode::PayPerRequest {
                            ix.on_demand = merge_on_demand(ix.on_demand, *on_demand);
                        }
                        continue;
                    }
                    let Some((r, w)) = *provisioned else {
                        return Err(invalid(format!(
                            "ProvisionedThroughput must be specified for index: {name}"
                        )));
                    };
                    if billing == BillingMode::PayPerRequest {
                        return Err(invalid(format!(
                            "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
                        )));
                    }
                    check_throughput(r, w)?;
                    let now = now_epoch();
                    let t = ix.throughput.get_or_insert(Throughput {
                        read: 0,
                        write: 0,
                        last_increase: None,
                        last_decrease: None,
                        decreases_today: 0,
                    });
                    if r > t.read || w > t.write {
                        t.last_increase = Some(now);
                    }
                    if r < t.read || w < t.write {
                        t.last_decrease = Some(now);
                        t.decreases_today += 1;
                    }
                    t.read = r;
                    t.write = w;
                }
            }
        }
        def.attribute_definitions = attrs;
        crate::index::prune_attribute_definitions(def);
        Ok(())
    }
}

/// An index definition from its request and its validated key attributes (`h` not empty).
fn index_def(
    ix: &IndexInput,
    h: Vec<KeyAttr>,
    r: Vec<KeyAttr>,
    tp: Option<Throughput>,
    keyspace_id: &str,
) -> Result<IndexDef, Error> {
    let Some(projection) = ix.projection_type else {
        return Err(invalid("Unknown ProjectionType: null"));
    };
    let nka = ix.non_key_attributes.clone().unwrap_or_default();
    if projection != ProjectionType::Include && ix.non_key_attributes.is_some() {
        return Err(invalid(format!(
            "ProjectionType is {}, but NonKeyAttributes is specified",
            projection.as_str()
        )));
    }
    if projection == ProjectionType::Include {
        if nka.is_empty() {
            return Err(invalid(
                "ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
            ));
        }
        let mut seen = HashSet::new();
        for a in &nka {
            if !seen.insert(a.as_str()) {
                return Err(invalid(format!(
                    "Duplicate attributes in NonKeyAttributes: {a}"
                )));
            }
        }
    }
    let mut h = h.into_iter();
    let Some(hash_key) = h.next() else {
        return Err(Error::internal("index without a HASH key"));
    };
    let mut r = r.into_iter();
    Ok(IndexDef {
        name: ix.name.clone(),
        hash_key,
        range_key: r.next(),
        more_hash_keys: h.collect(),
        more_range_keys: r.collect(),
        projection,
        non_key_attributes: nka,
        throughput: tp,
        keyspace: format!("i-{keyspace_id}-{}", ix.name),
        status: IndexStatus::Active,
        on_demand: None,
    })
}

/// Stream labels are ISO-8601 timestamps with milliseconds, as DynamoDB shows them.
fn stream_label(epoch: f64) -> String {
    let secs = epoch.floor() as i64;
    let millis = ((epoch - secs as f64) * 1000.0).floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = ferrodyn_model::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Applies a request's OnDemandThroughput to a table's: a positive value sets that maximum, -1
/// (or anything below 1) removes it, an absent one keeps it.
fn merge_on_demand(
    current: Option<crate::table::OnDemandThroughput>,
    request: Option<(Option<i64>, Option<i64>)>,
) -> Option<crate::table::OnDemandThroughput> {
    let mut t = current.unwrap_or_default();
    if let Some((r, w)) = request {
        if let Some(r) = r {
            t.read = (r > 0).then_some(r);
        }
        if let Some(w) = w {
            t.write = (w > 0).then_some(w);
        }
    }
    (t.read.is_some() || t.write.is_some()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keyspaces left by a crash between creating a table's (an index's, a backup's) keyspaces
    /// and writing the record naming them, or between deleting the record and dropping them,
    /// are dropped at the next open; the keyspaces of live tables and backups are kept.
    #[test]
    fn crash_leftover_keyspaces_are_dropped_at_open() {
        use ferrodyn_storage::{Durability, MemoryStorage, Storage};
        let storage = Arc::new(MemoryStorage::new());
        let engine = Engine::open(storage.clone(), crate::EngineConfig::default()).unwrap();
        crate::create_hash_table(&engine, "live");
        engine.create_backup("live", "b1").unwrap();
        drop(engine);
        let live: Vec<String> = storage.list_keyspaces();
        let leftovers = ["t-gone", "i-gone-g", "h-gone-1", "b-gone"];
        for ks in leftovers {
            storage.create_keyspace(ks).unwrap();
            let mut batch = WriteBatch::default();
            batch.put(ks, b"k", b"v");
            storage.write(batch, Durability::Sync).unwrap();
        }
        let engine = Engine::open(storage.clone(), crate::EngineConfig::default()).unwrap();
        assert_eq!(storage.list_keyspaces(), live);
        assert!(
            live.iter().any(|k| k.starts_with("t-")) && live.iter().any(|k| k.starts_with("b-"))
        );
        assert_eq!(engine.list_tables(None, 100).0, vec!["live".to_string()]);
    }

    #[test]
    fn stream_label_format() {
        assert_eq!(stream_label(0.0), "1970-01-01T00:00:00.000");
        assert_eq!(stream_label(1_700_000_000.5), "2023-11-14T22:13:20.500");
    }
}
