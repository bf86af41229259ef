//! Capacity enforcement (`ferrodyn serve --enforce-capacity`): a token bucket per table and
//! per global secondary index, for reads and for writes.
//!
//! Owns: the bucket arithmetic, the limits a table definition implies, admitting a request
//! before it runs and charging it afterwards, and the errors DynamoDB gives when a limit is hit.
//! Must not: change anything when enforcement is off (`EngineConfig::capacity == None`): the
//! operations then never reach this module.
//!
//! Model: a bucket refills at the limit's rate (units per second) and holds at most
//! `rate × window` units: for provisioned capacity the window is DynamoDB's burst window
//! (300 seconds of unused capacity retained), for on-demand limits one second. A request is
//! admitted while its buckets hold at least what the smallest request costs (one write unit,
//! half a read unit) and is charged its consumed units once it has run,
//! since an item's size (and so its cost) is known only after reading it; a bucket may thus go
//! into debt, and requests are refused until the refill has paid it back. DynamoDB also debits
//! after the fact (a single request is never refused for its own size).
//!
//! Which bucket pays: reads of the table or of a local secondary index pay the table's read
//! bucket (LSIs share the table's capacity), reads of a global secondary index that index's; a
//! write pays the table's write bucket and each global index it updates pays its own share. A
//! write is refused while the table's write bucket or that of any of its global secondary
//! indexes is exhausted, as DynamoDB documents it ("the table and all of its global secondary
//! indexes must have enough write capacity").

use std::collections::HashMap;
use std::time::Instant;

use ferrodyn_model::error::{ThrottleKind, ThrottlingReason};
use ferrodyn_model::{Error, Item};
use parking_lot::Mutex;

use crate::capacity::{ConsumedCapacity, ReturnConsumedCapacity};
use crate::items::{
    DeleteItemInput, GetItemInput, GetOutput, PutItemInput, UpdateItemInput, WriteOutput,
};
use crate::query::{QueryInput, ReadOutput, ScanInput};
use crate::table::{BillingMode, IndexDef, TableDef};
use crate::{Engine, Table};

/// DynamoDB retains up to five minutes of unused provisioned capacity.
pub const BURST_SECONDS: f64 = 300.0;
/// DynamoDB's default per-table throughput quota for on-demand tables (read and write request
/// units per second, each).
pub const ON_DEMAND_TABLE_LIMIT: f64 = 40_000.0;

const TABLE_MESSAGE: &str = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.";
const INDEX_MESSAGE: &str = "The level of configured provisioned throughput for one or more global secondary indexes of the table was exceeded. Consider increasing your provisioning level for the under-provisioned global secondary indexes with the UpdateTable API";
const ON_DEMAND_MAX_MESSAGE: &str =
    "Throughput exceeds the maximum OnDemandThroughput configured on table or index";
const ON_DEMAND_MESSAGE: &str = "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html";

/// Enforcement settings (`EngineConfig::capacity`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// Seconds of unused provisioned capacity a bucket retains (DynamoDB: 300). Tests shorten it.
    pub burst_seconds: f64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            burst_seconds: BURST_SECONDS,
        }
    }
}

/// Reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    fn slot(self) -> usize {
        match self {
            Access::Read => 0,
            Access::Write => 1,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Access::Read => "Read",
            Access::Write => "Write",
        }
    }
    /// The least any request of this kind costs: it is admitted only while its buckets hold
    /// that much (an eventually consistent read of a small item costs half a unit).
    fn least(self) -> f64 {
        match self {
            Access::Read => 0.5,
            Access::Write => 1.0,
        }
    }
}

/// One token bucket. It learns its rate and size at each use, so a changed limit (UpdateTable)
/// applies from the next request on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bucket {
    tokens: f64,
    /// `None` until first used; a new bucket holds one second of capacity.
    last: Option<Instant>,
}

impl Bucket {
    fn refill(&mut self, rate: f64, capacity: f64, now: Instant) {
        self.tokens = match self.last {
            None => rate.min(capacity),
            Some(t) => {
                let elapsed = now.saturating_duration_since(t).as_secs_f64();
                // A debt is paid back by the refill; the cap applies only to savings.
                (self.tokens + elapsed * rate).min(capacity)
            }
        };
        self.last = Some(now);
    }

    /// True while the bucket holds at least `need` units (after refilling up to `now`).
    pub fn admits(&mut self, need: f64, rate: f64, capacity: f64, now: Instant) -> bool {
        self.refill(rate, capacity, now);
        self.tokens >= need
    }

    /// Takes `units` out of the bucket, possibly into debt.
    pub fn debit(&mut self, units: f64, rate: f64, capacity: f64, now: Instant) {
        self.refill(rate, capacity, now);
        self.tokens -= units;
    }

    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

/// The buckets of one table (kept in its `Counters`, so they survive UpdateTable).
#[derive(Debug, Default)]
pub struct TableBuckets {
    inner: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    table: [Bucket; 2],
    /// By global secondary index name.
    indexes: HashMap<String, [Bucket; 2]>,
}

/// A limit: its rate, its bucket size and what a client is told when it is exhausted.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limit {
    rate: f64,
    capacity: f64,
    kind: ThrottleKind,
    /// The `<limit type>` part of a ThrottlingReason.
    limit_type: &'static str,
    message: &'static str,
}

fn provisioned(units: i64, config: &ThrottleConfig, message: &'static str) -> Limit {
    let rate = units.max(0) as f64;
    Limit {
        rate,
        capacity: rate * config.burst_seconds.max(1.0),
        kind: ThrottleKind::ProvisionedThroughputExceeded,
        limit_type: "ProvisionedThroughputExceeded",
        message,
    }
}

fn on_demand(max: Option<i64>) -> Limit {
    match max.filter(|m| *m > 0) {
        Some(m) => Limit {
            rate: m as f64,
            capacity: m as f64,
            kind: ThrottleKind::Throttling,
            limit_type: "MaxOnDemandThroughputExceeded",
            message: ON_DEMAND_MAX_MESSAGE,
        },
        None => Limit {
            rate: ON_DEMAND_TABLE_LIMIT,
            capacity: ON_DEMAND_TABLE_LIMIT,
            kind: ThrottleKind::Throttling,
            limit_type: "AccountLimitExceeded",
            message: ON_DEMAND_MESSAGE,
        },
    }
}

fn table_limit(def: &TableDef, access: Access, config: &ThrottleConfig) -> Limit {
    match def.billing_mode {
        BillingMode::Provisioned => provisioned(
            match access {
                Access::Read => def.throughput.read,
                Access::Write => def.throughput.write,
            },
            config,
            TABLE_MESSAGE,
        ),
        BillingMode::PayPerRequest => on_demand(def.on_demand.and_then(|o| match access {
            Access::Read => o.read,
            Access::Write => o.write,
        })),
    }
}

fn index_limit(def: &TableDef, ix: &IndexDef, access: Access, config: &ThrottleConfig) -> Limit {
    match (def.billing_mode, &ix.throughput) {
        (BillingMode::Provisioned, Some(t)) => provisioned(
            match access {
                Access::Read => t.read,
                Access::Write => t.write,
            },
            config,
            INDEX_MESSAGE,
        ),
        _ => on_demand(ix.on_demand.and_then(|o| match access {
            Access::Read => o.read,
            Access::Write => o.write,
        })),
    }
}

/// The error for exhausted limits, one reason per exhausted table or index.
fn throttled(limit: Limit, reasons: Vec<ThrottlingReason>) -> Error {
    Error::Throttled {
        kind: limit.kind,
        message: limit.message.to_string(),
        reasons,
    }
}

fn reason(index: bool, access: Access, limit: &Limit, resource: String) -> ThrottlingReason {
    ThrottlingReason {
        reason: format!(
            "{}{}{}",
            if index { "Index" } else { "Table" },
            access.as_str(),
            limit.limit_type
        ),
        resource,
    }
}

/// Checks and charges one table's buckets.
pub(crate) struct Meter<'a> {
    def: &'a TableDef,
    buckets: &'a TableBuckets,
    config: &'a ThrottleConfig,
    region: &'a str,
    account: &'a str,
}

impl<'a> Meter<'a> {
    pub fn new(engine: &'a Engine, table: &'a Table, config: &'a ThrottleConfig) -> Self {
        Meter {
            def: &table.def,
            buckets: &table.counters.buckets,
            config,
            region: &engine.config.region,
            account: &engine.config.account,
        }
    }

    fn arn(&self, index: Option<&str>) -> String {
        let table = self.def.arn(self.region, self.account);
        match index {
            Some(ix) => format!("{table}/index/{ix}"),
            None => table,
        }
    }

    fn gsis(&self) -> impl Iterator<Item = &IndexDef> {
        self.def
            .global_indexes
            .iter()
            .filter(|ix| ix.status != crate::table::IndexStatus::Deleting)
    }

    /// Refuses `access` while a bucket it needs holds less than the least a request costs. `index`: the index a read goes to.
    pub fn admit(&self, access: Access, index: Option<&str>, now: Instant) -> Result<(), Error> {
        let mut b = self.buckets.inner.lock();
        let gsi = index.and_then(|n| self.gsis().find(|ix| ix.name == n));
        if access == Access::Read {
            if let Some(ix) = gsi {
                let limit = index_limit(self.def, ix, access, self.config);
                let bucket = &mut b.indexes.entry(ix.name.clone()).or_default()[0];
                if !bucket.admits(access.least(), limit.rate, limit.capacity, now) {
                    let arn = self.arn(Some(&ix.name));
                    return Err(throttled(limit, vec![reason(true, access, &limit, arn)]));
                }
                return Ok(());
            }
        }
        let limit = table_limit(self.def, access, self.config);
        if !b.table[access.slot()].admits(access.least(), limit.rate, limit.capacity, now) {
            return Err(throttled(
                limit,
                vec![reason(false, access, &limit, self.arn(None))],
            ));
        }
        if access == Access::Write {
            let mut first = None;
            let mut reasons = Vec::new();
            for ix in self.gsis() {
                let limit = index_limit(self.def, ix, access, self.config);
                let bucket = &mut b.indexes.entry(ix.name.clone()).or_default()[1];
                if !bucket.admits(access.least(), limit.rate, limit.capacity, now) {
                    first.get_or_insert(limit);
                    let arn = self.arn(Some(&ix.name));
                    reasons.push(reason(true, access, &limit, arn));
                }
            }
            if let Some(limit) = first {
                return Err(throttled(limit, reasons));
            }
        }
        Ok(())
    }

    /// Charges what an operation consumed (as reported with INDEXES) to the buckets that pay
    /// for it.
    pub fn charge(&self, access: Access, consumed: &ConsumedCapacity, now: Instant) {
        let mut b = self.buckets.inner.lock();
        let local: f64 = consumed.local_indexes.iter().map(|(_, u)| u).sum();
        let on_table = match consumed.table_units {
            Some(t) => t + local,
            None if consumed.global_indexes.is_empty() => consumed.capacity_units,
            None => local,
        };
        if on_table > 0.0 {
            let limit = table_limit(self.def, access, self.config);
            b.table[access.slot()].debit(on_table, limit.rate, limit.capacity, now);
        }
        for (name, units) in &consumed.global_indexes {
            if let Some(ix) = self.gsis().find(|ix| &ix.name == name) {
                let limit = index_limit(self.def, ix, access, self.config);
                b.indexes.entry(name.clone()).or_default()[access.slot()].debit(
                    *units,
                    limit.rate,
                    limit.capacity,
                    now,
                );
            }
        }
    }
}

/// A write whose condition failed still consumes write capacity, as DynamoDB charges it: by
/// the size of the item it found (at least one unit). Index shares are not charged.
fn failed_write(units: f64) -> ConsumedCapacity {
    ConsumedCapacity {
        capacity_units: units,
        table_units: Some(units),
        ..ConsumedCapacity::default()
    }
}

/// What a metered single-table operation does: reads or writes, the index a read goes to,
/// and a write's key (or item), whose stored size a failed condition is charged.
struct Metered<'a> {
    access: Access,
    index: Option<&'a str>,
    written: Option<&'a Item>,
}

/// A single-table operation's input, as capacity enforcement sees it: which table (and index)
/// it reads or writes, the ConsumedCapacity it asks for, and where its output reports it.
pub(crate) trait MeteredInput: Sized {
    type Output;
    const ACCESS: Access;
    fn table(&self) -> &str;
    /// The index a read goes to.
    fn index(&self) -> Option<&str> {
        None
    }
    /// A write's key (or item): a failed condition is charged the size of the item stored there.
    fn written(&self, _engine: &Engine) -> Option<Item> {
        None
    }
    fn return_consumed(&mut self) -> &mut ReturnConsumedCapacity;
    fn consumed(out: &mut Self::Output) -> &mut Option<ConsumedCapacity>;
}

/// `MeteredInput` for an operation's input: its output, whether it reads or writes, the path
/// of its ReturnConsumedCapacity field, then any other items (`index`, `written`). Every input
/// names its table in `table`, every output reports in `consumed`.
macro_rules! metered_input {
    ($input:ty => $output:ty, $access:ident, $($rc:ident).+ $(, $($rest:tt)*)?) => {
        impl MeteredInput for $input {
            type Output = $output;
            const ACCESS: Access = Access::$access;
            fn table(&self) -> &str {
                &self.table
            }
            fn return_consumed(&mut self) -> &mut ReturnConsumedCapacity {
                &mut self.$($rc).+
            }
            fn consumed(out: &mut $output) -> &mut Option<ConsumedCapacity> {
                &mut out.consumed
            }
            $($($rest)*)?
        }
    };
}

metered_input!(PutItemInput => WriteOutput, Write, return_consumed,
    fn written(&self, engine: &Engine) -> Option<Item> {
        let t = engine.table(&self.table).ok()?;
        Some(crate::keys::key_map(&t.def, &self.item))
    }
);
metered_input!(DeleteItemInput => WriteOutput, Write, return_consumed,
    fn written(&self, _engine: &Engine) -> Option<Item> {
        Some(self.key.clone())
    }
);
metered_input!(UpdateItemInput => WriteOutput, Write, return_consumed,
    fn written(&self, _engine: &Engine) -> Option<Item> {
        Some(self.key.clone())
    }
);
metered_input!(GetItemInput => GetOutput, Read, return_consumed);
metered_input!(QueryInput => ReadOutput, Read, read.return_consumed,
    fn index(&self) -> Option<&str> {
        self.read.index_name.as_deref()
    }
);
metered_input!(ScanInput => ReadOutput, Read, read.return_consumed,
    fn index(&self) -> Option<&str> {
        self.read.index_name.as_deref()
    }
);

impl Engine {
    /// Runs a single-table operation: exactly `op` when capacity is not enforced, otherwise
    /// through [`Engine::metered`].
    pub(crate) fn with_capacity<I: MeteredInput>(
        &self,
        mut input: I,
        op: impl FnOnce(&Engine, I) -> Result<I::Output, Error>,
    ) -> Result<I::Output, Error> {
        if !self.enforcing() {
            return op(self, input);
        }
        let table = input.table().to_owned();
        let index = input.index().map(str::to_owned);
        let written = input.written(self);
        let wanted = *input.return_consumed();
        self.metered(
            &table,
            Metered {
                access: I::ACCESS,
                index: index.as_deref(),
                written: written.as_ref(),
            },
            wanted,
            |mode| {
                *input.return_consumed() = mode;
                op(self, input)
            },
            I::consumed,
        )
    }

    /// True when capacity is enforced; the operations check this once and otherwise run as
    /// they always did.
    pub(crate) fn enforcing(&self) -> bool {
        self.config.capacity.is_some()
    }

    /// Runs a single-table operation under enforcement: refuses it while a bucket it needs is
    /// exhausted, runs it asking for INDEXES capacity, charges what it consumed, and answers
    /// with the ConsumedCapacity the client asked for (`wanted`).
    fn metered<O>(
        &self,
        table: &str,
        what: Metered<'_>,
        wanted: ReturnConsumedCapacity,
        run: impl FnOnce(ReturnConsumedCapacity) -> Result<O, Error>,
        consumed: impl FnOnce(&mut O) -> &mut Option<ConsumedCapacity>,
    ) -> Result<O, Error> {
        let (Some(config), Ok(table)) = (&self.config.capacity, self.table(table)) else {
            // A missing table: the operation reports it.
            return run(wanted);
        };
        let Metered {
            access,
            index,
            written,
        } = what;
        let meter = Meter::new(self, &table, config);
        meter.admit(access, index, Instant::now())?;
        match run(ReturnConsumedCapacity::Indexes) {
            Ok(mut out) => {
                let slot = consumed(&mut out);
                if let Some(c) = slot.take() {
                    meter.charge(access, &c, Instant::now());
                    *slot = c.for_mode(wanted);
                }
                Ok(out)
            }
            Err(e) => {
                if let (Error::ConditionalCheckFailed { .. }, Some(item)) = (&e, written) {
                    let size = crate::keys::key_of_item(&table.def, item)
                        .and_then(|k| self.read_item_size(&table.def, &k))
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                    let units = crate::capacity::write_units(size);
                    meter.charge(access, &failed_write(units), Instant::now());
                }
                Err(e)
            }
        }
    }

    /// Refuses `access` to `table` while a bucket it needs is exhausted (multi-table operations
    /// check each table before they run). `Ok` for a missing table: the operation reports it.
    pub(crate) fn admit(&self, table: &str, access: Access) -> Result<(), Error> {
        match (&self.config.capacity, self.table(table)) {
            (Some(config), Ok(t)) => {
                Meter::new(self, &t, config).admit(access, None, Instant::now())
            }
            _ => Ok(()),
        }
    }

    /// Charges entries of a multi-table operation's ConsumedCapacity (asked for with INDEXES)
    /// to their tables, and reshapes them to what the client asked for.
    pub(crate) fn charge_all(
        &self,
        access: Access,
        consumed: &mut Vec<ConsumedCapacity>,
        wanted: ReturnConsumedCapacity,
    ) {
        let Some(config) = &self.config.capacity else {
            return;
        };
        let now = Instant::now();
        for c in consumed.iter() {
            if let Ok(t) = self.table(&c.table_name) {
                Meter::new(self, &t, config).charge(access, c, now);
            }
        }
        *consumed = std::mem::take(consumed)
            .into_iter()
            .filter_map(|c| c.for_mode(wanted))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_new_bucket_holds_one_second_and_saves_up_to_its_window() {
        let t0 = Instant::now();
        let mut b = Bucket::default();
        assert!(b.admits(1.0, 5.0, 50.0, t0));
        assert_eq!(b.tokens(), 5.0);
        // Ten idle seconds at 5/s fill the 50-unit window, and no further.
        b.refill(5.0, 50.0, t0 + Duration::from_secs(10));
        assert_eq!(b.tokens(), 50.0);
        b.refill(5.0, 50.0, t0 + Duration::from_secs(100));
        assert_eq!(b.tokens(), 50.0);
    }

    #[test]
    fn debt_is_paid_back_by_the_refill() {
        let t0 = Instant::now();
        let mut b = Bucket::default();
        b.debit(25.0, 10.0, 100.0, t0);
        assert_eq!(b.tokens(), -15.0);
        assert!(!b.admits(1.0, 10.0, 100.0, t0 + Duration::from_millis(1550)));
        assert!(b.admits(1.0, 10.0, 100.0, t0 + Duration::from_millis(1650)));
    }

    #[test]
    fn a_burst_spends_the_savings_then_is_refused() {
        let t0 = Instant::now();
        let mut b = Bucket::default();
        b.refill(5.0, 10.0, t0);
        b.refill(5.0, 10.0, t0 + Duration::from_secs(5));
        let mut admitted = 0;
        while b.admits(1.0, 5.0, 10.0, t0 + Duration::from_secs(5)) {
            b.debit(1.0, 5.0, 10.0, t0 + Duration::from_secs(5));
            admitted += 1;
        }
        assert_eq!(admitted, 10);
        // Not even one unit has come back a tenth of a second later, a fifth of a second later
        // it has.
        assert!(!b.admits(1.0, 5.0, 10.0, t0 + Duration::from_millis(5100)));
        assert!(b.admits(1.0, 5.0, 10.0, t0 + Duration::from_millis(5250)));
    }

    #[test]
    fn a_lowered_limit_caps_the_savings() {
        let t0 = Instant::now();
        let mut b = Bucket::default();
        b.refill(100.0, 1000.0, t0);
        b.refill(100.0, 1000.0, t0 + Duration::from_secs(20));
        assert_eq!(b.tokens(), 1000.0);
        b.refill(1.0, 10.0, t0 + Duration::from_secs(20));
        assert_eq!(b.tokens(), 10.0);
    }

    #[test]
    fn limits_follow_the_billing_mode() {
        let cfg = ThrottleConfig::default();
        let l = provisioned(5, &cfg, TABLE_MESSAGE);
        assert_eq!((l.rate, l.capacity), (5.0, 1500.0));
        assert_eq!(l.kind, ThrottleKind::ProvisionedThroughputExceeded);
        let l = on_demand(Some(7));
        assert_eq!((l.rate, l.capacity), (7.0, 7.0));
        assert_eq!(l.limit_type, "MaxOnDemandThroughputExceeded");
        let l = on_demand(None);
        assert_eq!(l.rate, ON_DEMAND_TABLE_LIMIT);
        assert_eq!(l.kind, ThrottleKind::Throttling);
        let r = reason(true, Access::Write, &l, "arn".into());
        assert_eq!(r.reason, "IndexWriteAccountLimitExceeded");
    }
}
