//! Query and Scan: key-range reads with filters, projections, paging and the 1 MB page cap.
//!
//! Invariants: Query reads only the key range of one partition (cost proportional to the items
//! visited); Scan streams storage in key order (partition-hash order, then sort key) without
//! materialising the table; both stop after `Limit` items visited or 1 MB of item data read
//! (measured before filtering), and then report the last visited key as LastEvaluatedKey.
//! With IndexName they read the index's keyspace (same partition layout, see [`crate::index`]);
//! the storage callback only collects visited entries, and filtering, projection and fetches of
//! non-projected attributes from the base table (local indexes) happen after the scan, because
//! storage callbacks must not re-enter storage.

use std::collections::BTreeMap;
use std::ops::Bound;

use ferrodyn_expr::legacy::Condition as LegacyCondition;
use ferrodyn_expr::{CondKind, Condition, KeyCondition, Path, RangeCondition, Resolver};
use ferrodyn_model::keycodec::{encode_key_tuple, encode_key_value};
use ferrodyn_model::size::item_size;
use ferrodyn_model::{AttributeValue, Error, Item};

use crate::activity::Activity;
use crate::capacity::{read_units, ConsumedCapacity, ReturnConsumedCapacity};
use crate::items::ExprParams;
use crate::keys::{key_of_key_param, partition_prefix_of};
use crate::table::{IndexDef, IndexStatus, KeyAttr, ProjectionType, TableDef};
use crate::{itemcodec, Engine};

/// DynamoDB stops a page after this much item data has been read.
pub const PAGE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    AllAttributes,
    AllProjectedAttributes,
    SpecificAttributes,
    Count,
}

#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub index_name: Option<String>,
    pub filter_expression: Option<String>,
    /// QueryFilter / ScanFilter.
    pub legacy_filter: Option<BTreeMap<String, LegacyCondition>>,
    pub conditional_operator: Option<String>,
    pub projection_expression: Option<String>,
    pub attributes_to_get: Option<Vec<String>>,
    pub select: Option<Select>,
    pub limit: Option<usize>,
    pub exclusive_start_key: Option<Item>,
    pub consistent_read: bool,
    pub params: ExprParams,
    pub return_consumed: ReturnConsumedCapacity,
}

#[derive(Debug, Clone, Default)]
pub struct QueryInput {
    pub table: String,
    pub key_condition_expression: Option<String>,
    pub key_conditions: Option<BTreeMap<String, LegacyCondition>>,
    pub scan_index_forward: bool,
    pub read: ReadOptions,
}

#[derive(Debug, Clone, Default)]
pub struct ScanInput {
    pub table: String,
    pub segment: Option<u32>,
    pub total_segments: Option<u32>,
    pub read: ReadOptions,
}

#[derive(Debug, Clone, Default)]
pub struct ReadOutput {
    /// None with Select=COUNT.
    pub items: Option<PageItems>,
    pub count: usize,
    pub scanned_count: usize,
    pub last_evaluated_key: Option<Item>,
    pub consumed: Option<ConsumedCapacity>,
}

/// The items a read returns.
#[derive(Debug, Clone)]
pub enum PageItems {
    /// Items built by filtering, projection or base-table fetches.
    Built(Vec<Item>),
    /// Items returned exactly as stored (a read without filter, projection or base fetch): the
    /// caller writes them out from their stored form, and nothing decodes them.
    Stored(StoredItems),
}

/// Stored encodings of items, in read order; every one of them has been sized once already.
/// (One allocation per item: a single growing buffer cost more in copies than it saved.)
#[derive(Debug, Clone, Default)]
pub struct StoredItems {
    items: Vec<Vec<u8>>,
    bytes: usize,
}

impl StoredItems {
    pub(crate) fn push(&mut self, raw: &[u8]) {
        self.bytes += raw.len();
        self.items.push(raw.to_vec());
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Total length of the stored encodings (to size an output buffer).
    pub fn stored_bytes(&self) -> usize {
        self.bytes
    }

    /// The stored form of each item, in read order (walk it with
    /// [`itemcodec::walk_stored`]).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(Vec::as_slice)
    }
}

/// Everything about a read that is decided before touching storage.
struct Plan {
    filter: Option<Condition>,
    projection: Option<Vec<Path>>,
    count_only: bool,
    limit: Option<usize>,
    /// Local index reads that need attributes the index does not project.
    fetch_base: bool,
}

impl Plan {
    /// Whether visited entries are returned (or just counted) exactly as stored.
    fn passes_through(&self) -> bool {
        self.filter.is_none() && self.projection.is_none() && !self.fetch_base
    }
}

/// What a read visits: the table itself or one of its indexes.
struct Target<'a> {
    def: &'a TableDef,
    /// `(index, is_global)`.
    index: Option<(&'a IndexDef, bool)>,
}

impl<'a> Target<'a> {
    fn resolve(def: &'a TableDef, r: &ReadOptions) -> Result<Target<'a>, Error> {
        let Some(name) = &r.index_name else {
            return Ok(Target { def, index: None });
        };
        let missing = || {
            Error::validation(format!(
                "The table does not have the specified index: {name}"
            ))
        };
        let (ix, global) = def.index(name).ok_or_else(missing)?;
        if global && r.consistent_read {
            return Err(Error::validation(
                "Consistent reads are not supported on global secondary indexes",
            ));
        }
        match ix.status {
            IndexStatus::Active | IndexStatus::Updating => {}
            IndexStatus::Creating => {
                return Err(Error::validation(format!(
                    "Cannot read from backfilling global secondary index: {name}"
                )))
            }
            IndexStatus::Deleting => return Err(missing()),
        }
        Ok(Target {
            def,
            index: Some((ix, global)),
        })
    }
    fn keyspace(&self) -> &str {
        match self.index {
            Some((ix, _)) => &ix.keyspace,
            None => &self.def.keyspace,
        }
    }
    /// The HASH attributes of the key read (several for a multi-attribute index key).
    fn hash_keys(&self) -> Vec<&KeyAttr> {
        match self.index {
            Some((ix, _)) => ix.hash_keys().collect(),
            None => vec![&self.def.hash_key],
        }
    }
    /// The RANGE attributes of the key read, in key-schema order.
    fn range_keys(&self) -> Vec<&KeyAttr> {
        match self.index {
            Some((ix, _)) => ix.range_keys().collect(),
            None => self.def.range_key.iter().collect(),
        }
    }
    fn is_key(&self, name: &str) -> bool {
        match self.index {
            Some((ix, _)) => ix.is_key(name),
            None => self.def.is_key(name),
        }
    }
    /// Storage key of an ExclusiveStartKey.
    fn start_key(&self, esk: &Item) -> Result<Vec<u8>, Error> {
        let bad = || {
            Error::validation(
                "The provided starting key is invalid: The provided key element does not match the schema",
            )
        };
        match self.index {
            None => key_of_key_param(self.def, esk).map_err(|_| bad()),
            Some((ix, _)) => crate::index::entry_key_of_key_map(self.def, ix, esk).ok_or_else(bad),
        }
    }
    /// LastEvaluatedKey of a visited entry.
    fn key_map(&self, item: &Item) -> Item {
        match self.index {
            None => crate::keys::key_map(self.def, item),
            Some((ix, _)) => crate::index::entry_key_map(self.def, ix, item),
        }
    }
}

fn plan(
    target: &Target<'_>,
    r: &ReadOptions,
    resolver: &mut Resolver<'_>,
    key_cond_is_expr: Option<bool>,
) -> Result<Plan, Error> {
    // Mixing rules between legacy and expression parameters.
    let mut legacy = Vec::new();
    let mut exprs = Vec::new();
    if r.attributes_to_get.is_some() {
        legacy.push("AttributesToGet");
    }
    if r.legacy_filter.is_some() {
        legacy.push(if key_cond_is_expr.is_some() {
            "QueryFilter"
        } else {
            "ScanFilter"
        });
    }
    // KeyConditions, unlike the other legacy parameters, combines with expressions on AWS.
    if r.projection_expression.is_some() {
        exprs.push("ProjectionExpression");
    }
    if r.filter_expression.is_some() {
        exprs.push("FilterExpression");
    }
    if key_cond_is_expr == Some(true) {
        exprs.push("KeyConditionExpression");
    }
    if !legacy.is_empty() && !exprs.is_empty() {
        return Err(Error::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            legacy.join(", "),
            exprs.join(", ")
        )));
    }
    if let Some(n) = &r.params.names {
        if n.is_empty() {
            return Err(Error::validation(
                "ExpressionAttributeNames must not be empty",
            ));
        }
    }
    if let Some(v) = &r.params.values {
        if v.is_empty() {
            return Err(Error::validation(
                "ExpressionAttributeValues must not be empty",
            ));
        }
    }
    if exprs.is_empty() {
        let missing = if key_cond_is_expr.is_some() {
            "KeyConditionExpression and FilterExpression and ProjectionExpression are null"
        } else {
            "FilterExpression and ProjectionExpression are null"
        };
        if r.params.names.is_some() {
            return Err(Error::validation(format!(
                "ExpressionAttributeNames can only be specified when using expressions: {missing}"
            )));
        }
        if r.params.values.is_some() {
            return Err(Error::validation(format!(
                "ExpressionAttributeValues can only be specified when using expressions: {missing}"
            )));
        }
    }
    if let Some(l) = r.limit {
        if l == 0 {
            return Err(Error::validation(
                "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ));
        }
    }
    let has_projection = r.projection_expression.is_some() || r.attributes_to_get.is_some();
    let which = if r.projection_expression.is_some() {
        "ProjectionExpression"
    } else {
        "AttributesToGet"
    };
    match r.select {
        Some(Select::AllAttributes) if has_projection => {
            return Err(Error::validation(format!(
                "Cannot specify the {which} when choosing to get ALL_ATTRIBUTES"
            )));
        }
        Some(Select::Count) if has_projection => {
            return Err(Error::validation(format!(
                "Cannot specify the {which} when choosing to get only the COUNT"
            )));
        }
        Some(Select::AllProjectedAttributes) if has_projection => {
            return Err(Error::validation(format!(
                "Cannot specify the {which} when choosing to get ALL_PROJECTED_ATTRIBUTES"
            )));
        }
        Some(Select::AllProjectedAttributes) if target.index.is_none() => {
            return Err(Error::validation(
                "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
            ));
        }
        Some(Select::SpecificAttributes) if !has_projection => {
            return Err(Error::validation(
                "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
            ));
        }
        _ => {}
    }
    let filter = match (&r.filter_expression, &r.legacy_filter) {
        (Some(text), _) => Some(resolver.condition(text, CondKind::Filter)?),
        (None, Some(f)) => Some(ferrodyn_expr::legacy::filter(
            f,
            r.conditional_operator.as_deref(),
        )?),
        (None, None) => {
            if r.conditional_operator.is_some() {
                return Err(Error::validation(
                    "ConditionalOperator can only be used when Filter or Expected has two or more elements",
                ));
            }
            None
        }
    };
    if key_cond_is_expr.is_some() {
        if let Some(f) = &filter {
            for path in f.paths() {
                let name = path.top();
                if target.is_key(name) {
                    return Err(Error::validation(format!(
                        "Filter Expression can only contain non-primary key attributes: Primary key attribute: {name}"
                    )));
                }
            }
        }
    }
    let projection = match (&r.projection_expression, &r.attributes_to_get) {
        (Some(text), _) => Some(resolver.projection(text)?),
        (None, Some(names)) => Some(ferrodyn_expr::legacy::attributes_to_get(names)),
        (None, None) => None,
    };
    let mut fetch_base = false;
    if let Some((ix, global)) = target.index {
        if let Some(names) = crate::index::projected_names(target.def, ix) {
            let mut wanted: Vec<&Path> = projection.iter().flatten().collect();
            if let Some(f) = &filter {
                wanted.extend(f.paths());
            }
            let missing: Vec<&str> = wanted
                .iter()
                .map(|p| p.top())
                .filter(|n| !names.contains(n))
                .collect();
            if global {
                if r.select == Some(Select::AllAttributes) {
                    return Err(Error::validation(format!(
                        "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                        ix.name
                    )));
                }
                if let Some(p) = &projection {
                    let missing: Vec<&str> = p
                        .iter()
                        .filter(|p| !names.contains(&p.top()))
                        .map(|p| p.top())
                        .collect();
                    if !missing.is_empty() {
                        return Err(Error::validation(format!(
                            "One or more parameter values were invalid: Global secondary index {} does not project [{}]",
                            ix.name,
                            missing.join(", ")
                        )));
                    }
                }
            } else {
                fetch_base = r.select == Some(Select::AllAttributes) || !missing.is_empty();
            }
        }
        debug_assert!(ix.projection != ProjectionType::All || !fetch_base);
    }
    Ok(Plan {
        filter,
        projection,
        count_only: r.select == Some(Select::Count),
        limit: r.limit,
        fetch_base,
    })
}

/// An extra test on each visited storage key (e.g. still inside the partition / prefix).
type KeyCheck<'a> = &'a dyn Fn(&[u8]) -> bool;

/// Accumulates one page of visited entries while storage is visited in order.
struct Page<'a> {
    target: &'a Target<'a>,
    plan: &'a Plan,
    /// Entries decoded for filtering, projection or base fetches.
    visited: Vec<Item>,
    /// Entries kept in stored form when the plan passes them through (and does not only count).
    stored: StoredItems,
    passes_through: bool,
    scanned: usize,
    bytes: usize,
    last_key: Option<Item>,
    error: Option<Error>,
    extra_check: Option<KeyCheck<'a>>,
    /// Scans: the bytes read per partition, for the capacity they are charged.
    partitions: Option<ScanPartitions>,
}

/// DynamoDB charges a Scan page per partition it reads: each partition's bytes are rounded up
/// to 4 KB separately, and each partition the page crosses costs at least one read, even when
/// it holds nothing (a full Scan of a new table with one small item costs 4 units, 2 when
/// eventually consistent). Ferrodyn models the four partitions a new DynamoDB table starts
/// with as the four quarters of the key space: keys begin with their partition's 64-bit hash,
/// so a key's quarter is the top two bits of its first byte.
#[derive(Debug, Clone, Copy)]
struct ScanPartitions {
    bytes: [usize; SCAN_PARTITIONS],
    /// The partition the page starts in, the one it last read from, and the one it would end in
    /// if it reached the end of its range.
    first: usize,
    last: usize,
    end: usize,
}

const SCAN_PARTITIONS: usize = 4;

fn partition_of(key: &[u8]) -> usize {
    key.first().map_or(0, |b| (b >> 6) as usize)
}

impl ScanPartitions {
    fn new(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> Self {
        let first = match lower {
            Bound::Included(k) | Bound::Excluded(k) => partition_of(k),
            Bound::Unbounded => 0,
        };
        let end = match upper {
            // An exclusive bound at the start of a partition ends in the one before it.
            Bound::Excluded(k) => {
                let mut h = [0u8; 8];
                for (d, s) in h.iter_mut().zip(k.iter()) {
                    *d = *s;
                }
                (u64::from_be_bytes(h).saturating_sub(1) >> 62) as usize
            }
            Bound::Included(k) => partition_of(k),
            Bound::Unbounded => SCAN_PARTITIONS - 1,
        };
        ScanPartitions {
            bytes: [0; SCAN_PARTITIONS],
            first,
            last: first,
            end: end.max(first),
        }
    }

    /// Units of a page that stopped in `last` (`complete`: it reached the end of its range).
    fn units(&self, complete: bool, consistent: bool) -> f64 {
        let to = if complete { self.end } else { self.last };
        (self.first..=to.max(self.first))
            .map(|p| read_units(self.bytes[p], consistent))
            .sum()
    }
}

impl<'a> Page<'a> {
    /// Visits one stored item; returns false when the page is complete.
    fn visit(&mut self, key: &[u8], raw: &[u8]) -> bool {
        if let Some(check) = self.extra_check {
            if !check(key) {
                return false;
            }
        }
        let before = self.bytes;
        let taken = self.take(raw);
        if let Some(parts) = &mut self.partitions {
            let p = partition_of(key);
            parts.bytes[p] += self.bytes - before;
            parts.last = p;
        }
        match taken {
            Ok(more) => more,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Counts and keeps one entry: decoded when the plan works on items, otherwise in stored
    /// form, sized from its encoding (then only the page's last entry is decoded, for its key).
    fn take(&mut self, raw: &[u8]) -> Result<bool, Error> {
        let (size, item) = if self.passes_through {
            (itemcodec::stored_size(raw)?, None)
        } else {
            let item = itemcodec::decode_item(raw)?;
            (item_size(&item), Some(item))
        };
        self.scanned += 1;
        self.bytes += size;
        let full = self.full();
        if full {
            let key = match &item {
                Some(item) => self.target.key_map(item),
                None => self.target.key_map(&itemcodec::decode_item(raw)?),
            };
            self.last_key = Some(key);
        }
        match item {
            Some(item) => self.visited.push(item),
            None if !self.plan.count_only => self.stored.push(raw),
            None => {}
        }
        Ok(!full)
    }

    fn full(&self) -> bool {
        self.plan.limit.is_some_and(|l| self.scanned >= l) || self.bytes >= PAGE_BYTES
    }

    fn new(target: &'a Target<'a>, plan: &'a Plan, check: Option<KeyCheck<'a>>) -> Self {
        Page {
            target,
            plan,
            visited: Vec::new(),
            stored: StoredItems::default(),
            passes_through: plan.passes_through(),
            scanned: 0,
            bytes: 0,
            last_key: None,
            error: None,
            extra_check: check,
            partitions: None,
        }
    }
}

impl Engine {
    /// The table a Query or Scan reads. On a shared engine, a read of an index this node
    /// does not know yet, or knows as still backfilling, reloads the catalog first: another
    /// node may have just created it or finished it (writes see schema changes at once; this
    /// brings reads of a new index in step too, at no cost on the usual path).
    fn table_for_read(
        &self,
        name: &str,
        index: Option<&str>,
    ) -> Result<std::sync::Arc<crate::Table>, Error> {
        let table = self.table(name)?;
        let Some(index) = index.filter(|_| self.shared) else {
            return Ok(table);
        };
        let current = table
            .def
            .index(index)
            .is_some_and(|(ix, _)| ix.status != IndexStatus::Creating);
        if current {
            return Ok(table);
        }
        self.tables.refresh(&*self.storage)?;
        self.table(name)
    }

    pub fn query(&self, input: QueryInput) -> Result<ReadOutput, Error> {
        self.with_capacity(input, Self::query_now)
    }

    fn query_now(&self, input: QueryInput) -> Result<ReadOutput, Error> {
        let table = self.table_for_read(&input.table, input.read.index_name.as_deref())?;
        let def = &table.def;
        let target = Target::resolve(def, &input.read)?;
        let (hash_keys, range_keys) = (target.hash_keys(), target.range_keys());
        let hash_names: Vec<&str> = hash_keys.iter().map(|k| k.name.as_str()).collect();
        let range_names: Vec<&str> = range_keys.iter().map(|k| k.name.as_str()).collect();
        let mut resolver = Resolver::new(
            input.read.params.names.as_ref(),
            input.read.params.values.as_ref(),
        );
        let key_cond: KeyCondition = match (&input.key_condition_expression, &input.key_conditions) {
            (Some(_), Some(_)) => {
                return Err(Error::validation(
                    "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {KeyConditions} Expression parameters: {KeyConditionExpression}",
                ))
            }
            (Some(text), None) => {
                let c = resolver.condition(text, CondKind::KeyCondition)?;
                ferrodyn_expr::key_condition(&c, &hash_names, &range_names)?
            }
            (None, Some(kc)) => {
                ferrodyn_expr::legacy::key_conditions(kc, &hash_names, &range_names)?
            }
            (None, None) => {
                return Err(Error::validation("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."))
            }
        };
        let plan = plan(
            &target,
            &input.read,
            &mut resolver,
            Some(input.key_condition_expression.is_some()),
        )?;
        resolver.finish()?;

        // Types of the key condition values must match the schema.
        let type_err = || {
            Error::validation("One or more parameter values were invalid: Condition parameter type does not match schema type")
        };
        let typed = |v: &AttributeValue, k: &KeyAttr| v.scalar_type() == Some(k.ty);
        if !key_cond
            .hash
            .iter()
            .zip(&hash_keys)
            .all(|(v, k)| typed(v, k))
            || !key_cond
                .range_prefix
                .iter()
                .zip(&range_keys)
                .all(|(v, k)| typed(v, k))
        {
            return Err(type_err());
        }
        // The attribute the last RANGE condition constrains.
        let last_range = range_keys.get(key_cond.range_prefix.len()).copied();
        if let (Some(rc), Some(rk)) = (&key_cond.range, last_range) {
            let vals: Vec<&AttributeValue> = match rc {
                RangeCondition::Eq(v)
                | RangeCondition::Lt(v)
                | RangeCondition::Le(v)
                | RangeCondition::Gt(v)
                | RangeCondition::Ge(v)
                | RangeCondition::BeginsWith(v) => vec![v],
                RangeCondition::Between(a, b) => vec![a, b],
            };
            for v in vals {
                if v.scalar_type() != Some(rk.ty) {
                    return Err(type_err());
                }
            }
            if let RangeCondition::Between(a, b) = rc {
                if compare_key_values(a, b) == std::cmp::Ordering::Greater {
                    return Err(Error::validation(format!(
                        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {{{}}}, upper bound operand: AttributeValue: {{{}}}",
                        display_value(a),
                        display_value(b)
                    )));
                }
            }
        }

        // The partition, extended by the equalities on leading RANGE attributes of a
        // multi-attribute key: the entries that match them are exactly those starting with it.
        let mut prefix = partition_prefix_of(&key_cond.hash);
        encode_key_tuple(&key_cond.range_prefix, &mut prefix);
        let enc = |v: &AttributeValue| {
            let mut k = prefix.clone();
            encode_key_value(v, &mut k);
            k
        };
        // Bounds use prefix semantics: index entries continue after the sort key (with the table
        // key), so "sort key <= v" is "key < successor(prefix ++ enc(v))".
        let after = |k: Vec<u8>| match ferrodyn_storage::prefix_end(&k) {
            Some(s) => Bound::Excluded(s),
            None => Bound::Unbounded,
        };
        let (mut lower, mut upper): (Bound<Vec<u8>>, Bound<Vec<u8>>) =
            (Bound::Included(prefix.clone()), after(prefix.clone()));
        let mut begins: Option<Vec<u8>> = None;
        match &key_cond.range {
            None => {}
            Some(RangeCondition::Eq(v)) => {
                lower = Bound::Included(enc(v));
                upper = after(enc(v));
            }
            Some(RangeCondition::Lt(v)) => upper = Bound::Excluded(enc(v)),
            Some(RangeCondition::Le(v)) => upper = after(enc(v)),
            Some(RangeCondition::Gt(v)) => {
                lower = match after(enc(v)) {
                    Bound::Excluded(s) => Bound::Included(s),
                    _ => Bound::Excluded(enc(v)),
                }
            }
            Some(RangeCondition::Ge(v)) => lower = Bound::Included(enc(v)),
            Some(RangeCondition::Between(a, b)) => {
                lower = Bound::Included(enc(a));
                upper = after(enc(b));
            }
            Some(RangeCondition::BeginsWith(v)) => {
                if matches!(v, AttributeValue::N(_)) {
                    return Err(Error::validation(
                        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                    ));
                }
                // Encoded strings are byte-stuffed and terminated: every value that starts with
                // `v` has an encoding that starts with enc(v) minus its 2-byte terminator.
                let mut p = enc(v);
                p.truncate(p.len().saturating_sub(2));
                lower = Bound::Included(p.clone());
                // Bounded on both sides, so a backward read starts inside the prefix too.
                upper = after(p.clone());
                begins = Some(p);
            }
        }
        // Resume after ExclusiveStartKey.
        if let Some(esk) = &input.read.exclusive_start_key {
            // A table without a sort key has one item per partition: nothing can follow it.
            if input.read.index_name.is_none() && def.range_key.is_none() {
                let shown: Vec<String> = esk
                    .iter()
                    .map(|(k, v)| format!("{k}=AttributeValue: {{{}}}", display_value(v)))
                    .collect();
                return Err(Error::validation(format!(
                    "The provided exclusive start key is invalid: ExclusiveStartKey: {{{}}}",
                    shown.join(", ")
                )));
            }
            let k = target.start_key(esk)?;
            let inside = k.starts_with(&prefix)
                && in_bounds(&k, &lower, &upper)
                && begins.as_ref().is_none_or(|b| k.starts_with(b));
            if !inside {
                return Err(Error::validation(
                    "The provided starting key is outside query boundaries based on provided conditions",
                ));
            }
            if input.scan_index_forward {
                lower = tighter_lower(lower, Bound::Excluded(k));
            } else {
                upper = tighter_upper(upper, Bound::Excluded(k));
            }
        }

        let check = |key: &[u8]| -> bool {
            key.starts_with(&prefix) && begins.as_ref().is_none_or(|b| key.starts_with(b))
        };
        let mut page = Page::new(&target, &plan, Some(&check));
        if !bounds_empty(&lower, &upper) {
            self.scan_for(
                input.read.consistent_read,
                target.keyspace(),
                as_ref_bound(&lower),
                as_ref_bound(&upper),
                !input.scan_index_forward,
                &mut |k, v| page.visit(k, v),
            )?;
        }
        if let Some(e) = page.error.take() {
            return Err(e);
        }
        self.finish(&table.counters.activity, page, &input.read)
    }

    pub fn scan(&self, input: ScanInput) -> Result<ReadOutput, Error> {
        self.with_capacity(input, Self::scan_now)
    }

    fn scan_now(&self, input: ScanInput) -> Result<ReadOutput, Error> {
        let table = self.table_for_read(&input.table, input.read.index_name.as_deref())?;
        let def = &table.def;
        match (input.segment, input.total_segments) {
            (Some(_), None) => {
                return Err(Error::validation(
                    "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::validation(
                    "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
                ))
            }
            (Some(s), Some(t)) if s >= t => {
                return Err(Error::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
                )))
            }
            _ => {}
        }
        let target = Target::resolve(def, &input.read)?;
        let mut resolver = Resolver::new(
            input.read.params.names.as_ref(),
            input.read.params.values.as_ref(),
        );
        let plan = plan(&target, &input.read, &mut resolver, None)?;
        resolver.finish()?;

        // A segment is a range of partition hashes.
        let (seg_lo, seg_hi): (Bound<Vec<u8>>, Bound<Vec<u8>>) =
            match (input.segment, input.total_segments) {
                (Some(s), Some(t)) if t > 1 => {
                    let lo = ((s as u128) << 64) / t as u128;
                    let hi = (((s as u128) + 1) << 64) / t as u128;
                    let lo_b = Bound::Included((lo as u64).to_be_bytes().to_vec());
                    let hi_b = if s + 1 == t {
                        Bound::Unbounded
                    } else {
                        Bound::Excluded((hi as u64).to_be_bytes().to_vec())
                    };
                    (lo_b, hi_b)
                }
                _ => (Bound::Unbounded, Bound::Unbounded),
            };
        let mut lower = seg_lo.clone();
        if let Some(esk) = &input.read.exclusive_start_key {
            let k = target.start_key(esk)?;
            if !in_bounds(&k, &seg_lo, &seg_hi) {
                return Err(Error::validation(
                    "The provided Exclusive start key does not map to the provided segment",
                ));
            }
            lower = tighter_lower(lower, Bound::Excluded(k));
        }
        let mut page = Page::new(&target, &plan, None);
        page.partitions = Some(ScanPartitions::new(&lower, &seg_hi));
        self.scan_for(
            input.read.consistent_read,
            target.keyspace(),
            as_ref_bound(&lower),
            as_ref_bound(&seg_hi),
            false,
            &mut |k, v| page.visit(k, v),
        )?;
        if let Some(e) = page.error.take() {
            return Err(e);
        }
        self.finish(&table.counters.activity, page, &input.read)
    }

    /// Filters and projects the visited entries of a page (fetching base items for local index
    /// reads that need non-projected attributes).
    fn finish(
        &self,
        activity: &Activity,
        mut page: Page<'_>,
        r: &ReadOptions,
    ) -> Result<ReadOutput, Error> {
        let def = page.target.def;
        let plan = page.plan;
        if page.passes_through {
            let stored = std::mem::take(&mut page.stored);
            let items = (!plan.count_only).then_some(PageItems::Stored(stored));
            let count = page.scanned;
            return Ok(self.output(activity, page, r, count, items));
        }
        let mut items = Vec::new();
        let mut count = 0;
        for entry in std::mem::take(&mut page.visited) {
            let item = if plan.fetch_base {
                let pk = entry.get(&def.hash_key.name);
                let sk = def.range_key.as_ref().map(|k| entry.get(&k.name));
                let key = match (pk, sk) {
                    (Some(pk), None) => crate::keys::storage_key(pk, None),
                    (Some(pk), Some(Some(sk))) => crate::keys::storage_key(pk, Some(sk)),
                    _ => continue,
                };
                match self.read_item_for(r.consistent_read, def, &key)? {
                    Some(i) => i,
                    // Deleted since the index entry was read.
                    None => continue,
                }
            } else {
                entry
            };
            if let Some(f) = &plan.filter {
                if !f.eval(&item)? {
                    continue;
                }
            }
            count += 1;
            if !plan.count_only {
                items.push(match &plan.projection {
                    Some(p) => ferrodyn_expr::project(&item, p),
                    None => item,
                });
            }
        }
        let items = (!plan.count_only).then_some(PageItems::Built(items));
        Ok(self.output(activity, page, r, count, items))
    }

    fn output(
        &self,
        activity: &Activity,
        page: Page<'_>,
        r: &ReadOptions,
        count: usize,
        items: Option<PageItems>,
    ) -> ReadOutput {
        let def = page.target.def;
        let units = match &page.partitions {
            Some(p) => p.units(page.last_key.is_none(), r.consistent_read),
            None => read_units(page.bytes, r.consistent_read),
        };
        let index = r.index_name.as_deref().and_then(|n| def.index(n));
        activity.read(page.scanned as u64, page.bytes as u64);
        activity.read_units(index.map(|(ix, _)| ix.name.as_str()), units);
        ReadOutput {
            items,
            count,
            scanned_count: page.scanned,
            last_evaluated_key: page.last_key,
            consumed: match index {
                Some((ix, global)) => ConsumedCapacity::index_read(
                    r.return_consumed,
                    &def.name,
                    &ix.name,
                    global,
                    units,
                ),
                None => ConsumedCapacity::read(r.return_consumed, &def.name, units),
            },
        }
    }
}

fn as_ref_bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn tighter_lower(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if y > x || (y == x && matches!(b, Bound::Excluded(_))) {
                b
            } else {
                a
            }
        }
    }
}

fn tighter_upper(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if y < x || (y == x && matches!(b, Bound::Excluded(_))) {
                b
            } else {
                a
            }
        }
    }
}

fn bounds_empty(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

fn in_bounds(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    let above = match lo {
        Bound::Included(l) => k >= l.as_slice(),
        Bound::Excluded(l) => k > l.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(h) => k <= h.as_slice(),
        Bound::Excluded(h) => k < h.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

fn compare_key_values(a: &AttributeValue, b: &AttributeValue) -> std::cmp::Ordering {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => x.cmp(y),
        (AttributeValue::S(x), AttributeValue::S(y)) => x.as_bytes().cmp(y.as_bytes()),
        (AttributeValue::B(x), AttributeValue::B(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

fn display_value(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => format!("S:{s}"),
        AttributeValue::N(n) => format!("N:{n}"),
        AttributeValue::B(b) => format!("B:{}", String::from_utf8_lossy(b)),
        other => other.type_name().to_string(),
    }
}
