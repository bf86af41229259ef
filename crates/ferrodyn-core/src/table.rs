//! Table metadata: the persisted definition of a table and the description returned to clients.
//!
//! Invariant: a [`TableDef`] in the catalog is valid (key schema attributes are defined with
//! S/N/B types, billing mode and throughput agree); validation happens before it is stored.

use ferrodyn_model::ScalarType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    pub ty: ScalarType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    Provisioned,
    PayPerRequest,
}

impl BillingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Provisioned => "PROVISIONED",
            BillingMode::PayPerRequest => "PAY_PER_REQUEST",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub read: i64,
    pub write: i64,
    pub last_increase: Option<f64>,
    pub last_decrease: Option<f64>,
    pub decreases_today: i64,
}

/// OnDemandThroughput of an on-demand table: its maximum read and write request units per
/// second (`None`: no maximum of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OnDemandThroughput {
    pub read: Option<i64>,
    pub write: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSpec {
    pub enabled: bool,
    pub view_type: Option<String>,
}

/// Persisted definition of one table. Stored in the catalog keyspace as a versioned record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Record version; bump with a migration when the layout changes.
    pub version: u32,
    pub name: String,
    pub id: String,
    /// The storage keyspace that holds this table's items.
    pub keyspace: String,
    pub hash_key: KeyAttr,
    pub range_key: Option<KeyAttr>,
    /// In request order, as DescribeTable returns them.
    pub attribute_definitions: Vec<KeyAttr>,
    pub billing_mode: BillingMode,
    pub throughput: Throughput,
    pub billing_mode_last_update: Option<f64>,
    pub created: f64,
    pub deletion_protection: bool,
    pub table_class: String,
    pub stream: Option<StreamSpec>,
    pub stream_label: Option<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub local_indexes: Vec<IndexDef>,
    #[serde(default)]
    pub global_indexes: Vec<IndexDef>,
    /// Resource-based policies of the table and of its stream (`policies.rs`); kept in the
    /// catalog record so they change atomically with it and are dropped with the table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_policies: Vec<crate::policies::StoredPolicy>,
    /// On-demand tables: their OnDemandThroughput, if one was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<OnDemandThroughput>,
    /// Point-in-time recovery, when enabled (`pitr.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrSpec>,
    /// Tables made by a restore or an import: where from, and whether it is still loading
    /// (`restore.rs`). A loading table answers data operations as DynamoDB answers them for a
    /// table in `CREATING` status: it is not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSummary>,
}

/// Point-in-time recovery settings of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PitrSpec {
    /// When recovery was enabled (epoch seconds): no restore goes back further.
    pub enabled_at: f64,
    /// RecoveryPeriodInDays (1..=35).
    pub period_days: u32,
    /// The keyspace holding the table's change history (a fresh one each time recovery is
    /// enabled; dropped when it is disabled).
    pub keyspace: String,
}

/// Where a restored (or imported) table came from; DescribeTable's RestoreSummary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreSummary {
    pub source_backup_arn: Option<String>,
    pub source_table_arn: Option<String>,
    /// The point in time restored (epoch seconds).
    pub restore_time: f64,
    /// True until every item is loaded (the table is `CREATING` meanwhile).
    pub in_progress: bool,
    /// The job that loads it (`restore.rs`), while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<LoadJob>,
}

/// Where a loading table's items come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LoadJob {
    /// A backup's items (its keyspace).
    Backup { keyspace: String },
    /// Table `table` (id `id`) as it was at `at_us` (µs since the epoch).
    PointInTime {
        table: String,
        id: String,
        at_us: u64,
    },
    /// An import (ImportTable) with this id, loaded by the layer that runs imports.
    Import { id: String },
}

impl TableDef {
    /// True while a restore or an import still loads the table.
    pub fn loading(&self) -> bool {
        self.restore.as_ref().is_some_and(|r| r.in_progress)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectionType {
    All,
    KeysOnly,
    Include,
}

impl ProjectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionType::All => "ALL",
            ProjectionType::KeysOnly => "KEYS_ONLY",
            ProjectionType::Include => "INCLUDE",
        }
    }
}

/// A secondary index definition (local or global).
///
/// A global index may have a multi-attribute key: up to 4 HASH and up to 4 RANGE attributes.
/// The first of each kind is `hash_key` / `range_key` (so catalog records written before
/// multi-attribute keys read unchanged), the others follow in key-schema order; use
/// [`IndexDef::hash_keys`] and [`IndexDef::range_keys`] for the whole key.
/// Invariant: `more_range_keys` is empty when `range_key` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub hash_key: KeyAttr,
    pub range_key: Option<KeyAttr>,
    /// The HASH attributes after the first (multi-attribute keys; global indexes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_hash_keys: Vec<KeyAttr>,
    /// The RANGE attributes after the first (multi-attribute keys; global indexes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_range_keys: Vec<KeyAttr>,
    pub projection: ProjectionType,
    pub non_key_attributes: Vec<String>,
    /// Global indexes only: provisioned throughput (0/0 for on-demand tables).
    pub throughput: Option<Throughput>,
    /// The storage keyspace holding this index's entries (unique per index incarnation, so a
    /// re-created index never meets the entries of a dropped one).
    pub keyspace: String,
    /// Lifecycle state. Local indexes and global indexes created with their table are always
    /// `Active`; `Creating` means a backfill is (or, after a restart, will again be) running.
    #[serde(default)]
    pub status: IndexStatus,
    /// Global indexes of on-demand tables: their OnDemandThroughput, if one was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<OnDemandThroughput>,
}

impl IndexDef {
    /// The HASH attributes of the index key, in key-schema order.
    pub fn hash_keys(&self) -> impl Iterator<Item = &KeyAttr> + Clone {
        std::iter::once(&self.hash_key).chain(&self.more_hash_keys)
    }
    /// The RANGE attributes of the index key, in key-schema order (none for a hash-only key).
    pub fn range_keys(&self) -> impl Iterator<Item = &KeyAttr> + Clone {
        self.range_key.iter().chain(&self.more_range_keys)
    }
    /// Every attribute of the index key: HASH ones, then RANGE ones.
    pub fn key_attrs(&self) -> impl Iterator<Item = &KeyAttr> + Clone {
        self.hash_keys().chain(self.range_keys())
    }
    pub fn is_key(&self, name: &str) -> bool {
        self.key_attrs().any(|k| k.name == name)
    }
}

/// Lifecycle of a secondary index.
///
/// Invariant: writes maintain every index that is not `Deleting` (so an index being backfilled
/// never misses a concurrent write); reads are served only by `Active` indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IndexStatus {
    Creating,
    #[default]
    Active,
    Updating,
    Deleting,
}

impl IndexStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexStatus::Creating => "CREATING",
            IndexStatus::Active => "ACTIVE",
            IndexStatus::Updating => "UPDATING",
            IndexStatus::Deleting => "DELETING",
        }
    }
}

pub const TABLE_DEF_VERSION: u32 = 1;

impl TableDef {
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.hash_key.name.as_str())
            .chain(self.range_key.as_ref().map(|k| k.name.as_str()))
    }
    pub fn is_key(&self, name: &str) -> bool {
        self.hash_key.name == name || self.range_key.as_ref().is_some_and(|k| k.name == name)
    }
    /// A local or global index by name.
    pub fn index(&self, name: &str) -> Option<(&IndexDef, bool)> {
        self.local_indexes
            .iter()
            .find(|ix| ix.name == name)
            .map(|ix| (ix, false))
            .or_else(|| {
                self.global_indexes
                    .iter()
                    .find(|ix| ix.name == name)
                    .map(|ix| (ix, true))
            })
    }
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:dynamodb:{region}:{account}:table/{}", self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl TableStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Creating => "CREATING",
            TableStatus::Active => "ACTIVE",
            TableStatus::Updating => "UPDATING",
            TableStatus::Deleting => "DELETING",
        }
    }
}

/// What DescribeTable (and the other control-plane calls) report about a table.
#[derive(Debug, Clone)]
pub struct TableDescription {
    pub def: TableDef,
    pub status: TableStatus,
    pub arn: String,
    pub item_count: u64,
    pub size_bytes: u64,
    pub stream_arn: Option<String>,
    /// Per index (by name): (ItemCount, IndexSizeBytes), approximate like DynamoDB's own.
    pub index_stats: std::collections::HashMap<String, (u64, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(name: &str, ty: ScalarType) -> KeyAttr {
        KeyAttr {
            name: name.into(),
            ty,
        }
    }

    fn index(more_hash: Vec<KeyAttr>, more_range: Vec<KeyAttr>) -> IndexDef {
        IndexDef {
            name: "ix".into(),
            hash_key: attr("h1", ScalarType::S),
            range_key: Some(attr("r1", ScalarType::N)),
            more_hash_keys: more_hash,
            more_range_keys: more_range,
            projection: ProjectionType::All,
            non_key_attributes: Vec::new(),
            throughput: None,
            on_demand: None,
            keyspace: "i-x-ix".into(),
            status: IndexStatus::Active,
        }
    }

    #[test]
    fn single_attribute_index_records_keep_their_catalog_form() {
        // Written without the multi-attribute fields, so catalog records read the same by
        // builds before and after them.
        let single = index(Vec::new(), Vec::new());
        let json = serde_json::to_value(&single).unwrap();
        assert!(json.get("more_hash_keys").is_none());
        assert!(json.get("more_range_keys").is_none());
        let back: IndexDef = serde_json::from_value(json).unwrap();
        assert_eq!(back, single);
    }

    #[test]
    fn multi_attribute_keys_in_key_schema_order() {
        let ix = index(
            vec![attr("h2", ScalarType::B)],
            vec![attr("r2", ScalarType::S), attr("r3", ScalarType::N)],
        );
        let names =
            |it: &mut dyn Iterator<Item = &KeyAttr>| it.map(|k| k.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&mut ix.hash_keys()), ["h1", "h2"]);
        assert_eq!(names(&mut ix.range_keys()), ["r1", "r2", "r3"]);
        assert_eq!(names(&mut ix.key_attrs()), ["h1", "h2", "r1", "r2", "r3"]);
        assert!(ix.is_key("r3") && ix.is_key("h2") && !ix.is_key("x"));
        let back: IndexDef = serde_json::from_value(serde_json::to_value(&ix).unwrap()).unwrap();
        assert_eq!(back, ix);
    }
}
