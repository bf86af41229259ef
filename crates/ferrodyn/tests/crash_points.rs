//! The crash-point harness: runs deterministic scenario workloads against the real binary on a
//! durable data directory, armed to abort at the N-th storage batch commit, journal fsync or
//! idle compaction (`FERRODYN_CRASH_AT`, `ferrodyn_storage::crash`), for many N sampled across
//! the whole run; restarts without the crash point and checks the directory against a model of
//! every acknowledged request:
//! * tables created or deleted fully or not at all, each ACTIVE with its indexes once resumed
//!   work (backfills, index deletions) finishes;
//! * every acknowledged write present and nothing else: the items equal the model before or
//!   after the one request that was in flight, which makes transactions all-or-nothing (items
//!   that TTL may have expired may be absent);
//! * every index equal to its table (index scan = projection of the table's items);
//! * tags, TTL settings and billing mode as acknowledged;
//! * streams hold every acknowledged change once, in order per item, with its images;
//! * ItemCount and TableSizeBytes settle to the true count and size;
//! * every backup listed is AVAILABLE and restores (indexes included) to exactly its table's
//!   items at its snapshot, every acknowledged backup is listed and no other one; a
//!   point-in-time restore of a surviving source gives its items at the chosen time;
//! * the data directory holds no table, index, history or backup keyspace that no catalog or
//!   backup record names (read with the server stopped).
//!
//! Each scenario first runs crash-free with `FERRODYN_CRASH_AT=count` to learn how many events
//! it causes, then picks its points spread over that range (before or after the event). In the
//! regular test run a bounded number of points runs; by hand, thousands:
//!
//! ```text
//! FERRODYN_CRASH_POINTS=2000 cargo test --release -p ferrodyn --test crash_points -- --ignored --exact crash_points_many --nocapture
//! ```
//!
//! The same scenarios run with crash points at the system-call boundary, inside fjall's
//! flushes and compactions: the `ferrodyn-faultfs` library preloaded, counting in the
//! crash-free run and aborting at `FERRODYN_FAULTFS_ABORT=OP.KIND N before|after` (e.g.
//! `write.table 40 after`, `unlink.table 3 before`); an equal share of the points for each
//! operation and file kind the run saw:
//!
//! ```text
//! FERRODYN_CRASH_POINTS=300 cargo test -p ferrodyn --test crash_points -- --ignored --exact syscall_crash_points_many --nocapture
//! ```
//!
//! Variables: `FERRODYN_CRASH_POINTS` (points over all scenarios, default 700, 300 at the
//! system calls; the regular runs' `FERRODYN_CRASH_POINTS_CI`, default 21, and
//! `FERRODYN_SYSCALL_POINTS_CI`, default 6), `FERRODYN_CRASH_SEED` (default 1),
//! `FERRODYN_CRASH_SCENARIOS` (comma-separated names, default all but `flush` for the engine
//! points; `settle,flush,tables,backups,restores` for the system calls; the regular run of
//! system-call points runs `flush`), `FERRODYN_CRASH_JOBS` (points run at once, default 2).
//! A failing point keeps its data directory and prints the crash point, so
//! `FERRODYN_CRASH_AT` (or `FERRODYN_FAULTFS_ABORT` with the library preloaded) reproduces it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrodyn_testkit::ServerProcess;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ferrodyn");

// ---------------------------------------------------------------------------------------------
// The model of acknowledged state.

/// One stream record as the model expects it.
#[derive(Clone, Debug)]
struct Change {
    event: &'static str,
    old: Option<Value>,
    new: Option<Value>,
    /// When the change was acknowledged (not compared).
    at: Instant,
}

impl PartialEq for Change {
    fn eq(&self, other: &Change) -> bool {
        let c = |v: &Option<Value>| v.clone().map(|v| canonical([v]));
        self.event == other.event && c(&self.old) == c(&other.old) && c(&self.new) == c(&other.new)
    }
}

#[derive(Clone, Debug)]
struct TableModel {
    key: Vec<String>,
    items: BTreeMap<String, Value>,
    /// Keys TTL may have deleted (their expiry time has passed).
    expiring: BTreeSet<String>,
    indexes: BTreeSet<String>,
    tags: BTreeMap<String, String>,
    ttl: Option<String>,
    billing: &'static str,
    /// Changes per item key, when the table had a stream from its creation.
    stream: Option<BTreeMap<String, Vec<Change>>>,
}

impl TableModel {
    fn key_of(&self, item: &Value) -> String {
        let k: BTreeMap<&str, &Value> = self.key.iter().map(|a| (a.as_str(), &item[a])).collect();
        serde_json::to_string(&k).unwrap()
    }

    fn record(&mut self, key: &str, old: Option<Value>, new: Option<Value>) {
        if old == new {
            return;
        }
        if let Some(s) = &mut self.stream {
            let event = match (&old, &new) {
                (None, _) => "INSERT",
                (_, None) => "REMOVE",
                _ => "MODIFY",
            };
            s.entry(key.to_owned()).or_default().push(Change {
                event,
                old,
                new,
                at: Instant::now(),
            });
        }
    }

    fn put(&mut self, item: Value) {
        let key = self.key_of(&item);
        self.expiring.remove(&key);
        let old = self.items.insert(key.clone(), item.clone());
        self.record(&key, old, Some(item));
    }

    fn delete(&mut self, key_item: &Value) {
        let key = self.key_of(key_item);
        self.expiring.remove(&key);
        let old = self.items.remove(&key);
        self.record(&key, old, None);
    }

    /// `SET name = value` for each attribute of `set`, creating the item if absent.
    fn update(&mut self, key_item: &Value, set: &Value) {
        let key = self.key_of(key_item);
        let mut item = self
            .items
            .get(&key)
            .cloned()
            .unwrap_or_else(|| key_item.clone());
        for (k, v) in set.as_object().unwrap() {
            item[k] = v.clone();
        }
        let old = self.items.insert(key.clone(), item.clone());
        self.record(&key, old, Some(item));
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    tables: BTreeMap<String, TableModel>,
    /// Stream retention when the scenario shortens it: records older than this may be gone.
    retention: Option<Duration>,
    /// Backups by name.
    backups: BTreeMap<String, BackupModel>,
    /// Point-in-time restores that must give these items, as long as their source exists.
    pitr: Vec<PitrCheck>,
}

/// What a backup must hold: the items of `base` plus the first k of `extra` (the puts of a
/// writer running while it was taken, in order), k between `min_extra` and `max_extra`.
#[derive(Clone, Debug)]
struct BackupModel {
    table: String,
    base: BTreeMap<String, Value>,
    extra: Vec<(String, Value)>,
    min_extra: usize,
    max_extra: usize,
    /// Acknowledged and seen AVAILABLE: it must exist. Otherwise (CreateBackup or
    /// DeleteBackup in flight at the crash) it may be absent, but if present it is complete.
    required: bool,
}

#[derive(Clone, Debug)]
struct PitrCheck {
    source: String,
    /// Epoch seconds.
    at: f64,
    items: BTreeMap<String, Value>,
}

impl Model {
    fn t(&mut self, name: &str) -> &mut TableModel {
        self.tables.get_mut(name).expect("table in the model")
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.

#[derive(Debug)]
enum Stop {
    /// The server went away (the crash point).
    Died,
    /// The server answered wrongly: a failure of the point.
    Wrong(String),
}

type Effect = Box<dyn FnOnce(&mut Model) + Send>;

struct Ctx {
    url: String,
    client: reqwest::blocking::Client,
    model: Model,
    /// The effect of the request that was in flight when the server went away.
    pending: Option<Effect>,
}

fn send(
    client: &reqwest::blocking::Client,
    url: &str,
    op: &str,
    body: &Value,
) -> Result<(u16, Value), Stop> {
    let service = match op {
        "DescribeStream" | "GetShardIterator" | "GetRecords" => "DynamoDBStreams_20120810",
        _ => "DynamoDB_20120810",
    };
    let target = format!("{service}.{op}");
    match ferrodyn_testkit::call(client, url, &target, body.to_string()) {
        Ok((status, text)) => Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null))),
        Err(e) if e.is_timeout() => Err(Stop::Wrong(format!("{op}: request timed out: {e}"))),
        Err(_) => Err(Stop::Died),
    }
}

impl Ctx {
    fn new(url: &str) -> Ctx {
        Ctx {
            url: url.to_owned(),
            client: client(),
            model: Model::default(),
            pending: None,
        }
    }

    /// A request that changes nothing.
    fn read(&self, op: &str, body: Value) -> Result<Value, Stop> {
        match send(&self.client, &self.url, op, &body)? {
            (200, v) => Ok(v),
            (st, v) => Err(Stop::Wrong(format!("{op}: {st} {v}"))),
        }
    }

    /// A request that must succeed; once acknowledged, `effect` is applied to the model.
    fn write(
        &mut self,
        op: &str,
        body: Value,
        effect: impl FnOnce(&mut Model) + Send + 'static,
    ) -> Result<Value, Stop> {
        match send(&self.client, &self.url, op, &body) {
            Ok((200, v)) => {
                effect(&mut self.model);
                Ok(v)
            }
            Ok((st, v)) => Err(Stop::Wrong(format!("{op}: {st} {v}"))),
            Err(Stop::Died) => {
                self.pending = Some(Box::new(effect));
                Err(Stop::Died)
            }
            Err(e) => Err(e),
        }
    }

    /// A request that must fail with `code` (and so change nothing).
    fn fail(&mut self, op: &str, body: Value, code: &str) -> Result<(), Stop> {
        match send(&self.client, &self.url, op, &body)? {
            (400, v) if v["__type"].as_str().is_some_and(|t| t.ends_with(code)) => Ok(()),
            (st, v) => Err(Stop::Wrong(format!("{op}: expected {code}, got {st} {v}"))),
        }
    }

    fn create_table(&mut self, name: &str, body: Value, stream: bool) -> Result<(), Stop> {
        let key = key_names(&body);
        let mut indexes = BTreeSet::new();
        for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
            for ix in body[kind].as_array().into_iter().flatten() {
                indexes.insert(ix["IndexName"].as_str().unwrap().to_owned());
            }
        }
        let tags = body["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["Key"].as_str().unwrap().to_owned(),
                    t["Value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let billing = match body["BillingMode"].as_str() {
            Some("PAY_PER_REQUEST") => "PAY_PER_REQUEST",
            _ => "PROVISIONED",
        };
        let table = TableModel {
            key,
            items: BTreeMap::new(),
            expiring: BTreeSet::new(),
            indexes,
            tags,
            ttl: None,
            billing,
            stream: stream.then(BTreeMap::new),
        };
        let name = name.to_owned();
        let mut body = body;
        body["TableName"] = json!(name);
        if stream {
            body["StreamSpecification"] =
                json!({"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"});
        }
        self.write("CreateTable", body, move |m| {
            m.tables.insert(name, table);
        })?;
        Ok(())
    }

    fn delete_table(&mut self, name: &str) -> Result<(), Stop> {
        let n = name.to_owned();
        self.write("DeleteTable", json!({"TableName": name}), move |m| {
            m.tables.remove(&n);
        })?;
        Ok(())
    }

    fn put(&mut self, table: &str, item: Value) -> Result<(), Stop> {
        let t = table.to_owned();
        let i = item.clone();
        self.write(
            "PutItem",
            json!({"TableName": table, "Item": item}),
            move |m| m.t(&t).put(i),
        )?;
        Ok(())
    }

    /// A put whose item TTL may delete.
    fn put_expiring(&mut self, table: &str, item: Value) -> Result<(), Stop> {
        let t = table.to_owned();
        let i = item.clone();
        self.write(
            "PutItem",
            json!({"TableName": table, "Item": item}),
            move |m| {
                let tm = m.t(&t);
                let key = tm.key_of(&i);
                tm.put(i);
                tm.expiring.insert(key);
            },
        )?;
        Ok(())
    }

    fn delete(&mut self, table: &str, key: Value) -> Result<(), Stop> {
        let t = table.to_owned();
        let k = key.clone();
        self.write(
            "DeleteItem",
            json!({"TableName": table, "Key": key}),
            move |m| m.t(&t).delete(&k),
        )?;
        Ok(())
    }

    fn update(&mut self, table: &str, key: Value, set: Value) -> Result<(), Stop> {
        let mut names = serde_json::Map::new();
        let mut values = serde_json::Map::new();
        let mut parts = Vec::new();
        for (i, (k, v)) in set.as_object().unwrap().iter().enumerate() {
            names.insert(format!("#a{i}"), json!(k));
            values.insert(format!(":v{i}"), v.clone());
            parts.push(format!("#a{i} = :v{i}"));
        }
        let body = json!({
            "TableName": table, "Key": key,
            "UpdateExpression": format!("SET {}", parts.join(", ")),
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        });
        let t = table.to_owned();
        self.write("UpdateItem", body, move |m| m.t(&t).update(&key, &set))?;
        Ok(())
    }

    fn batch_put(&mut self, table: &str, items: Vec<Value>) -> Result<(), Stop> {
        for chunk in items.chunks(25) {
            let reqs: Vec<Value> = chunk
                .iter()
                .map(|i| json!({"PutRequest": {"Item": i}}))
                .collect();
            let t = table.to_owned();
            let c = chunk.to_vec();
            let v = self.write(
                "BatchWriteItem",
                json!({"RequestItems": {table: reqs}}),
                move |m| c.into_iter().for_each(|i| m.t(&t).put(i)),
            )?;
            if v["UnprocessedItems"]
                .as_object()
                .is_some_and(|u| !u.is_empty())
            {
                return Err(Stop::Wrong(format!("unprocessed items: {v}")));
            }
        }
        Ok(())
    }

    fn describe(&self, table: &str) -> Result<Value, Stop> {
        Ok(self.read("DescribeTable", json!({"TableName": table}))?["Table"].take())
    }

    /// Polls until every index of `table` is ACTIVE and none is being deleted.
    fn wait_indexes(&self, table: &str) -> Result<(), Stop> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let d = self.describe(table)?;
            if indexes_settled(&d) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Stop::Wrong(format!(
                    "indexes of {table} never settled: {d}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn indexes_settled(d: &Value) -> bool {
    d["TableStatus"] == "ACTIVE"
        && d["GlobalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|ix| ix["IndexStatus"] == "ACTIVE")
}

fn s(v: &str) -> Value {
    json!({"S": v})
}

fn n(v: i64) -> Value {
    json!({"N": v.to_string()})
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hash_table(attrs: &[(&str, &str)], key: &[&str]) -> Value {
    json!({
        "AttributeDefinitions": attrs.iter().map(|(a, t)| json!({"AttributeName": a, "AttributeType": t})).collect::<Vec<_>>(),
        "KeySchema": key.iter().enumerate().map(|(i, a)| json!({"AttributeName": a, "KeyType": if i == 0 { "HASH" } else { "RANGE" }})).collect::<Vec<_>>(),
        "BillingMode": "PAY_PER_REQUEST",
    })
}

fn gsi(name: &str, hash: &str, projection: &str) -> Value {
    json!({
        "IndexName": name,
        "KeySchema": [{"AttributeName": hash, "KeyType": "HASH"}],
        "Projection": {"ProjectionType": projection},
    })
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

struct Scenario {
    name: &'static str,
    /// More `serve` arguments.
    args: &'static [&'static str],
    run: fn(&mut Ctx) -> Result<(), Stop>,
    /// Relative weights of commit, sync and compact points.
    weights: [u32; 3],
}

/// A scenario with no more `serve` arguments; `weights` as in [`Scenario::weights`].
const fn scenario(
    name: &'static str,
    run: fn(&mut Ctx) -> Result<(), Stop>,
    weights: [u32; 3],
) -> Scenario {
    Scenario {
        name,
        args: &[],
        run,
        weights,
    }
}

/// Mostly commits and syncs; the scenarios that exercise flushes and compactions weigh those.
const WRITES: [u32; 3] = [6, 4, 0];
const MAINTENANCE: [u32; 3] = [3, 2, 5];

const SCENARIOS: &[Scenario] = &[
    scenario("tables", scenario_tables, WRITES),
    scenario("gsi_backfill", scenario_gsi_backfill, WRITES),
    scenario("ttl", scenario_ttl, WRITES),
    Scenario {
        args: &[
            "--stream-retention-secs",
            "3",
            "--stream-shard-records",
            "40",
        ],
        ..scenario("streams", scenario_streams, WRITES)
    },
    scenario("transactions", scenario_transactions, WRITES),
    scenario("catalog", scenario_catalog, WRITES),
    scenario("settle", scenario_settle, MAINTENANCE),
    scenario("flush", scenario_flush, MAINTENANCE),
    scenario("backups", scenario_backups, WRITES),
    scenario("restores", scenario_restores, WRITES),
];

/// Table creation and deletion, with indexes, streams and tags, names reused.
fn scenario_tables(c: &mut Ctx) -> Result<(), Stop> {
    for round in 0..2 {
        let mut body = hash_table(&[("pk", "S"), ("gk", "S")], &["pk"]);
        body["GlobalSecondaryIndexes"] = json!([gsi("gi1", "gk", "ALL")]);
        body["Tags"] = json!([{"Key": "round", "Value": round.to_string()}]);
        c.create_table("tb1", body, false)?;
        for i in 0..5 {
            c.put(
                "tb1",
                json!({"pk": s(&format!("a{i}")), "gk": s(&format!("g{}", i % 2)), "v": n(i)}),
            )?;
        }
        c.create_table(
            "tb2",
            hash_table(&[("pk", "S"), ("sk", "S")], &["pk", "sk"]),
            true,
        )?;
        for i in 0..5 {
            c.put(
                "tb2",
                json!({"pk": s("p"), "sk": s(&format!("s{i}")), "v": n(i)}),
            )?;
        }
        let mut body = hash_table(&[("pk", "S"), ("sk", "S"), ("lk", "S")], &["pk", "sk"]);
        body["LocalSecondaryIndexes"] = json!([{
            "IndexName": "li1",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "lk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }]);
        c.create_table("tb3", body, false)?;
        for i in 0..5 {
            c.put(
                "tb3",
                json!({"pk": s("p"), "sk": s(&format!("s{i}")), "lk": s(&format!("l{}", 9 - i))}),
            )?;
        }
        c.delete_table("tb1")?;
        c.create_table("tb1", hash_table(&[("id", "S")], &["id"]), true)?;
        for i in 0..3 {
            c.put("tb1", json!({"id": s(&format!("b{i}")), "round": n(round)}))?;
        }
        c.delete_table("tb2")?;
        c.delete_table("tb3")?;
        if round == 0 {
            c.delete_table("tb1")?;
        }
    }
    Ok(())
}

/// Online index builds and drops on a populated table, with writes while they run.
fn scenario_gsi_backfill(c: &mut Ctx) -> Result<(), Stop> {
    c.create_table("gsi", hash_table(&[("pk", "S")], &["pk"]), false)?;
    let items = (0..800)
        .map(|i| {
            let mut it = json!({"pk": s(&format!("k{i:04}")), "v": n(i)});
            if i % 3 != 0 {
                it["gk"] = s(&format!("g{}", i % 7));
            }
            if i % 2 == 0 {
                it["h"] = n(i % 11);
            }
            it
        })
        .collect();
    c.batch_put("gsi", items)?;
    for (name, attr, ty, projection) in [("byg", "gk", "S", "ALL"), ("byh", "h", "N", "KEYS_ONLY")]
    {
        let body = json!({
            "TableName": "gsi",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": attr, "AttributeType": ty}],
            "GlobalSecondaryIndexUpdates": [{"Create": gsi(name, attr, projection)}],
        });
        let ix = name.to_owned();
        c.write("UpdateTable", body, move |m| {
            m.t("gsi").indexes.insert(ix);
        })?;
        // Writes while the backfill runs.
        let mut i = 0;
        loop {
            let d = c.describe("gsi")?;
            if indexes_settled(&d) {
                break;
            }
            c.update(
                "gsi",
                json!({"pk": s(&format!("k{:04}", i * 37 % 800))}),
                json!({"gk": s("moved"), "h": n(99)}),
            )?;
            i += 1;
        }
    }
    let body = json!({"TableName": "gsi", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byg"}}]});
    c.write("UpdateTable", body, |m| {
        m.t("gsi").indexes.remove("byg");
    })?;
    for i in 0..20 {
        c.put(
            "gsi",
            json!({"pk": s(&format!("late{i}")), "gk": s("x"), "h": n(i)}),
        )?;
    }
    c.wait_indexes("gsi")
}

/// TTL sweeps deleting expired items from a table with an index, while writes continue.
fn scenario_ttl(c: &mut Ctx) -> Result<(), Stop> {
    let mut body = hash_table(&[("pk", "S"), ("gk", "S")], &["pk"]);
    body["GlobalSecondaryIndexes"] = json!([gsi("gix", "gk", "ALL")]);
    c.create_table("ttl", body, false)?;
    let spec = json!({"TableName": "ttl", "TimeToLiveSpecification": {"AttributeName": "exp", "Enabled": true}});
    c.write("UpdateTimeToLive", spec, |m| {
        m.t("ttl").ttl = Some("exp".into())
    })?;
    let past = now() - 1000;
    let future = now() + 86_400;
    for round in 0..3 {
        for i in 0..60 {
            let item = json!({"pk": s(&format!("r{round}-{i}")), "gk": s(&format!("g{}", i % 5))});
            let mut item = item;
            if i % 2 == 0 {
                item["exp"] = n(past);
                c.put_expiring("ttl", item)?;
            } else {
                item["exp"] = n(future);
                c.put("ttl", item)?;
            }
        }
        // Wait for the sweep to remove this round's expired items.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = c.read(
                "Scan",
                json!({"TableName": "ttl", "Select": "COUNT", "ConsistentRead": true}),
            )?;
            if v["Count"] == json!((round + 1) * 30) {
                break;
            }
            if Instant::now() > deadline {
                return Err(Stop::Wrong(format!("TTL never swept: {v}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Puts, updates and deletes on a table with a stream and an index; the stream keeps records
/// for 3 seconds (on disk for 3 more) and starts a new shard every 40 records, so trimming and
/// shard changes run
/// throughout.
fn scenario_streams(c: &mut Ctx) -> Result<(), Stop> {
    c.model.retention = Some(Duration::from_secs(3));
    let mut body = hash_table(&[("pk", "S"), ("gk", "S")], &["pk"]);
    body["GlobalSecondaryIndexes"] = json!([gsi("gix", "gk", "INCLUDE")]);
    body["GlobalSecondaryIndexes"][0]["Projection"]["NonKeyAttributes"] = json!(["v"]);
    c.create_table("str", body, true)?;
    for i in 0..240i64 {
        let key = format!("k{}", i * 7 % 20);
        match i % 5 {
            0 | 1 => c.put(
                "str",
                json!({"pk": s(&key), "v": n(i), "gk": s(&format!("g{}", i % 3))}),
            )?,
            2 | 3 => c.update(
                "str",
                json!({"pk": s(&key)}),
                json!({"v": n(i), "w": s(&format!("w{i}"))}),
            )?,
            _ => c.delete("str", json!({"pk": s(&key)}))?,
        }
        if i % 60 == 59 {
            std::thread::sleep(Duration::from_millis(1500));
        }
    }
    Ok(())
}

/// Transactions of up to 100 items over two tables (one with a stream, one with an index).
fn scenario_transactions(c: &mut Ctx) -> Result<(), Stop> {
    c.create_table("txa", hash_table(&[("pk", "S")], &["pk"]), true)?;
    let mut body = hash_table(&[("pk", "S"), ("gk", "S")], &["pk"]);
    body["GlobalSecondaryIndexes"] = json!([gsi("gix", "gk", "ALL")]);
    c.create_table("txb", body, false)?;
    for round in 0..6i64 {
        let mut actions = Vec::new();
        let mut effects: Vec<(String, Value, Option<Value>)> = Vec::new(); // table, key, set (None: delete)
        for i in 0..50 {
            let key = json!({"pk": s(&format!("k{i}"))});
            match (round + i) % 3 {
                0 if round > 0 => {
                    actions.push(json!({"Delete": {"TableName": "txa", "Key": key}}));
                    effects.push(("txa".into(), key.clone(), None));
                }
                _ => {
                    let item = json!({"pk": s(&format!("k{i}")), "v": n(round * 100 + i)});
                    actions.push(json!({"Put": {"TableName": "txa", "Item": item}}));
                    effects.push(("txa".into(), key.clone(), Some(item)));
                }
            }
            let set = json!({"gk": s(&format!("g{}", (round + i) % 4)), "v": n(round)});
            actions.push(json!({"Update": {
                "TableName": "txb", "Key": key,
                "UpdateExpression": "SET gk = :g, v = :v",
                "ExpressionAttributeValues": {":g": set["gk"], ":v": set["v"]},
            }}));
            effects.push(("txb".into(), key, Some(set)));
        }
        c.write(
            "TransactWriteItems",
            json!({"TransactItems": actions}),
            move |m| {
                for (t, key, set) in effects {
                    match set {
                        None => m.t(&t).delete(&key),
                        Some(set) if t == "txa" => m.t(&t).put(set),
                        Some(set) => m.t(&t).update(&key, &set),
                    }
                }
            },
        )?;
        // A transaction of 100 that fails its condition changes nothing.
        let mut actions: Vec<Value> = (0..99)
            .map(|i| json!({"Put": {"TableName": "txb", "Item": {"pk": s(&format!("never{i}"))}}}))
            .collect();
        actions.push(json!({"ConditionCheck": {
            "TableName": "txa", "Key": {"pk": s("k0")},
            "ConditionExpression": "attribute_exists(nothing)",
        }}));
        c.fail(
            "TransactWriteItems",
            json!({"TransactItems": actions}),
            "TransactionCanceledException",
        )?;
    }
    Ok(())
}

/// Catalog changes: billing mode, tags, TTL settings, stream settings, with writes between.
fn scenario_catalog(c: &mut Ctx) -> Result<(), Stop> {
    let mut body = hash_table(&[("pk", "S")], &["pk"]);
    body["BillingMode"] = json!("PROVISIONED");
    body["ProvisionedThroughput"] = json!({"ReadCapacityUnits": 5, "WriteCapacityUnits": 5});
    body["Tags"] = json!([{"Key": "a", "Value": "1"}]);
    c.create_table("cat", body, false)?;
    let arn = c.describe("cat")?["TableArn"].as_str().unwrap().to_owned();
    for round in 0..4i64 {
        let (mode, billing) = if round % 2 == 0 {
            (
                json!({"TableName": "cat", "BillingMode": "PAY_PER_REQUEST"}),
                "PAY_PER_REQUEST",
            )
        } else {
            (
                json!({"TableName": "cat", "BillingMode": "PROVISIONED",
                       "ProvisionedThroughput": {"ReadCapacityUnits": 5 + round, "WriteCapacityUnits": 5}}),
                "PROVISIONED",
            )
        };
        c.write("UpdateTable", mode, move |m| m.t("cat").billing = billing)?;
        let k = format!("k{round}");
        let tag = json!({"ResourceArn": arn, "Tags": [{"Key": k, "Value": round.to_string()}]});
        c.write("TagResource", tag, move |m| {
            m.t("cat").tags.insert(k, round.to_string());
        })?;
        c.put("cat", json!({"pk": s(&format!("p{round}")), "v": n(round)}))?;
        if round > 0 {
            let k = format!("k{}", round - 1);
            let untag = json!({"ResourceArn": arn, "TagKeys": [k]});
            c.write("UntagResource", untag, move |m| {
                m.t("cat").tags.remove(&k);
            })?;
        }
        let on = round % 2 == 0;
        let spec = json!({"TableName": "cat", "TimeToLiveSpecification": {"AttributeName": "exp", "Enabled": on}});
        c.write("UpdateTimeToLive", spec, move |m| {
            m.t("cat").ttl = on.then(|| "exp".into())
        })?;
        let stream = if on {
            json!({"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"})
        } else {
            json!({"StreamEnabled": false})
        };
        c.write(
            "UpdateTable",
            json!({"TableName": "cat", "StreamSpecification": stream}),
            |_| {},
        )?;
        c.put("cat", json!({"pk": s(&format!("q{round}")), "v": n(round)}))?;
    }
    Ok(())
}

/// Bulk writes on small memtables, then idle pauses in which the settle thread compacts.
fn scenario_settle(c: &mut Ctx) -> Result<(), Stop> {
    c.create_table("zzz", hash_table(&[("pk", "S")], &["pk"]), false)?;
    let pad = "x".repeat(900);
    for round in 0..3i64 {
        let items = (0..600)
            .map(|i| json!({"pk": s(&format!("k{:04}", (i + round * 300) % 1200)), "v": n(round), "pad": s(&pad)}))
            .collect();
        c.batch_put("zzz", items)?;
        for i in 0..50 {
            c.delete(
                "zzz",
                json!({"pk": s(&format!("k{:04}", i * 13 % 1200 + round))}),
            )?;
        }
        std::thread::sleep(Duration::from_millis(2500));
    }
    Ok(())
}

/// Overwrites and deletes on a table with an index, several memtables' worth (1 MiB each), so
/// fjall flushes the table's and the index's trees several times and compacts them, in its
/// workers and, in the pauses, in the settle thread.
fn scenario_flush(c: &mut Ctx) -> Result<(), Stop> {
    let mut body = hash_table(&[("pk", "S"), ("gk", "S")], &["pk"]);
    body["GlobalSecondaryIndexes"] = json!([gsi("gix", "gk", "ALL")]);
    c.create_table("flu", body, false)?;
    let pad = "y".repeat(1500);
    for round in 0..4i64 {
        let items = (0..400)
            .map(|i| {
                json!({"pk": s(&format!("k{:04}", (i + round * 200) % 800)), "gk": s(&format!("g{}", (i + round) % 9)), "v": n(round), "pad": s(&pad)})
            })
            .collect();
        c.batch_put("flu", items)?;
        for i in 0..30 {
            c.delete(
                "flu",
                json!({"pk": s(&format!("k{:04}", (i * 29 + round * 7) % 800))}),
            )?;
        }
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_millis(1500));
        }
    }
    Ok(())
}

/// What a writer thread did: its puts in order (the last one possibly unacknowledged), with
/// when each was sent and acknowledged.
struct WriterLog {
    puts: Vec<(Value, Instant, Option<Instant>)>,
    stop: Option<Stop>,
}

/// Puts fresh items `{prefix}{i}` into `table` one after the other until `stop` is set or
/// the server goes away.
fn spawn_writer(
    url: &str,
    table: &str,
    prefix: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<WriterLog> {
    let (url, table, prefix) = (url.to_owned(), table.to_owned(), prefix.to_owned());
    std::thread::spawn(move || {
        let client = client();
        let mut log = WriterLog {
            puts: Vec::new(),
            stop: None,
        };
        let mut i = 0;
        while !stop.load(Ordering::SeqCst) && i < 5000 {
            let item = json!({"pk": s(&format!("{prefix}{i}")), "gk": s(&format!("g{}", i % 3)), "v": n(i)});
            let sent = Instant::now();
            log.puts.push((item.clone(), sent, None));
            match send(
                &client,
                &url,
                "PutItem",
                &json!({"TableName": table, "Item": item}),
            ) {
                Ok((200, _)) => log.puts.last_mut().unwrap().2 = Some(Instant::now()),
                Ok((st, v)) => {
                    log.stop = Some(Stop::Wrong(format!("PutItem: {st} {v}")));
                    break;
                }
                Err(e) => {
                    log.stop = Some(e);
                    break;
                }
            }
            i += 1;
        }
        log
    })
}

/// Polls DescribeBackup until the backup is AVAILABLE.
fn wait_backup(c: &Ctx, arn: &str) -> Result<(), Stop> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = c.read("DescribeBackup", json!({"BackupArn": arn}))?;
        if d["BackupDescription"]["BackupDetails"]["BackupStatus"] == "AVAILABLE" {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Stop::Wrong(format!("backup never became AVAILABLE: {d}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CreateBackup of `table` named `name` while a writer adds items to it; registers the
/// backup in the model (required once acknowledged and AVAILABLE).
fn backup_while_writing(
    c: &mut Ctx,
    table: &str,
    name: &str,
    prefix: &str,
) -> Result<String, Stop> {
    let base = c.model.t(table).items.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = spawn_writer(&c.url, table, prefix, stop.clone());
    std::thread::sleep(Duration::from_millis(30));
    let t0 = Instant::now();
    let answer = send(
        &c.client,
        &c.url,
        "CreateBackup",
        &json!({"TableName": table, "BackupName": name}),
    );
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, Ordering::SeqCst);
    let log = writer.join().unwrap();
    let died = matches!(answer, Err(Stop::Died)) || matches!(log.stop, Some(Stop::Died));
    // The model of the table: every acknowledged put; the one in flight may be absent.
    let tm = c.model.t(table);
    for (item, _, acked) in &log.puts {
        let key = tm.key_of(item);
        tm.put(item.clone());
        if acked.is_none() {
            tm.expiring.insert(key);
        }
    }
    let min_extra = log
        .puts
        .iter()
        .take_while(|(_, _, acked)| acked.is_some_and(|a| a < t0))
        .count();
    let max_extra = match answer {
        Ok(_) => log.puts.iter().filter(|(_, sent, _)| *sent < t1).count(),
        Err(_) => log.puts.len(),
    };
    let extra = log
        .puts
        .iter()
        .map(|(item, _, _)| (tm.key_of(item), item.clone()))
        .collect();
    c.model.backups.insert(
        name.to_owned(),
        BackupModel {
            table: table.to_owned(),
            base,
            extra,
            min_extra,
            max_extra,
            required: false,
        },
    );
    if let Some(Stop::Wrong(e)) = log.stop {
        return Err(Stop::Wrong(e));
    }
    if died {
        return Err(Stop::Died);
    }
    let v = match answer? {
        (200, v) => v,
        (st, v) => return Err(Stop::Wrong(format!("CreateBackup: {st} {v}"))),
    };
    let arn = v["BackupDetails"]["BackupArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    wait_backup(c, &arn)?;
    c.model.backups.get_mut(name).unwrap().required = true;
    Ok(arn)
}

/// DeleteBackup: the backup may survive a crash while the request is in flight.
fn delete_backup(c: &mut Ctx, name: &str, arn: &str) -> Result<(), Stop> {
    c.model.backups.get_mut(name).unwrap().required = false;
    let n = name.to_owned();
    c.write("DeleteBackup", json!({"BackupArn": arn}), move |m| {
        m.backups.remove(&n);
    })?;
    Ok(())
}

/// Backups of a populated table with an index while a writer adds items, changes between
/// them, and the deletion of one.
fn scenario_backups(c: &mut Ctx) -> Result<(), Stop> {
    let mut body = hash_table(&[("pk", "S"), ("gk", "S")], &["pk"]);
    body["GlobalSecondaryIndexes"] = json!([gsi("gix", "gk", "ALL")]);
    c.create_table("bks", body, false)?;
    let items = (0..300)
        .map(|i| json!({"pk": s(&format!("k{i:03}")), "gk": s(&format!("g{}", i % 5)), "v": n(i)}))
        .collect();
    c.batch_put("bks", items)?;
    let mut arns = Vec::new();
    for round in 0..3 {
        let name = format!("bk{round}");
        arns.push(backup_while_writing(
            c,
            "bks",
            &name,
            &format!("w{round}-"),
        )?);
        for i in 0..15 {
            let k = format!("k{:03}", (i * 17 + round * 5) % 300);
            if i % 3 == 0 {
                c.delete("bks", json!({"pk": s(&k)}))?;
            } else {
                c.update(
                    "bks",
                    json!({"pk": s(&k)}),
                    json!({"v": n(1000 + i), "gk": s("moved")}),
                )?;
            }
        }
        if round == 1 {
            delete_backup(c, "bk0", &arns[0])?;
        }
    }
    Ok(())
}

/// Waits until `table` is ACTIVE with its indexes and checks that its items are exactly the
/// model's: a restore is never shown ACTIVE with part of its items.
fn wait_restored(c: &Ctx, table: &str) -> Result<(), Stop> {
    c.wait_indexes(table)?;
    let got: BTreeMap<String, Value> = {
        let tm = &c.model.tables[table];
        scan_all(c, table, None)?
            .into_iter()
            .map(|i| (tm.key_of(&i), i))
            .collect()
    };
    let want = &c.model.tables[table].items;
    if canonical(got.values().cloned()) != canonical(want.values().cloned()) {
        return Err(Stop::Wrong(format!(
            "{table} is ACTIVE with {} items, expected {}",
            got.len(),
            want.len()
        )));
    }
    Ok(())
}

/// A table restored from `items` with the indexes of `like` (a restore keeps the key
/// schema, indexes and billing mode, not tags, TTL or the stream).
fn restored_model(like: &TableModel, items: BTreeMap<String, Value>) -> TableModel {
    TableModel {
        key: like.key.clone(),
        items,
        expiring: BTreeSet::new(),
        indexes: like.indexes.clone(),
        tags: BTreeMap::new(),
        ttl: None,
        billing: like.billing,
        stream: None,
    }
}

fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Point-in-time recovery and restores: a table with a global and a local index, PITR on,
/// writes before and after a chosen time, a backup, a restore from it and one to the chosen
/// time, writes to the restored table, then the backup deleted.
fn scenario_restores(c: &mut Ctx) -> Result<(), Stop> {
    let mut body = hash_table(
        &[("pk", "S"), ("sk", "S"), ("gk", "S"), ("lk", "S")],
        &["pk", "sk"],
    );
    body["GlobalSecondaryIndexes"] = json!([gsi("gix", "gk", "ALL")]);
    body["LocalSecondaryIndexes"] = json!([{
        "IndexName": "lix",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "lk", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }]);
    c.create_table("rsrc", body, false)?;
    let item = |i: i64, v: i64| json!({"pk": s(&format!("p{}", i % 10)), "sk": s(&format!("s{i:03}")), "gk": s(&format!("g{}", (i + v) % 4)), "lk": s(&format!("l{}", i % 7)), "v": n(v)});
    c.batch_put("rsrc", (0..300).map(|i| item(i, 0)).collect())?;
    c.write(
        "UpdateContinuousBackups",
        json!({"TableName": "rsrc", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
        |_| {},
    )?;
    let writes = |c: &mut Ctx, phase: i64| -> Result<(), Stop> {
        for i in 0..40 {
            let k = (i * 7 + phase * 3) % 320;
            if i % 4 == 3 {
                let key = json!({"pk": s(&format!("p{}", k % 10)), "sk": s(&format!("s{k:03}"))});
                c.delete("rsrc", key)?;
            } else {
                c.put("rsrc", item(k, phase))?;
            }
        }
        Ok(())
    };
    writes(c, 1)?;
    std::thread::sleep(Duration::from_millis(300));
    let at = epoch_now();
    let then = c.model.t("rsrc").items.clone();
    c.model.pitr.push(PitrCheck {
        source: "rsrc".into(),
        at,
        items: then.clone(),
    });
    std::thread::sleep(Duration::from_millis(300));
    writes(c, 2)?;
    let base = c.model.t("rsrc").items.clone();
    c.model.backups.insert(
        "rbk".into(),
        BackupModel {
            table: "rsrc".into(),
            base: base.clone(),
            extra: Vec::new(),
            min_extra: 0,
            max_extra: 0,
            required: false,
        },
    );
    let v = c.read(
        "CreateBackup",
        json!({"TableName": "rsrc", "BackupName": "rbk"}),
    )?;
    let arn = v["BackupDetails"]["BackupArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    wait_backup(c, &arn)?;
    c.model.backups.get_mut("rbk").unwrap().required = true;
    let from_backup = restored_model(c.model.t("rsrc"), base);
    c.write(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "rfb", "BackupArn": arn}),
        move |m| {
            m.tables.insert("rfb".into(), from_backup);
        },
    )?;
    let to_time = restored_model(c.model.t("rsrc"), then);
    c.write(
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "rsrc", "TargetTableName": "rpit", "RestoreDateTime": at}),
        move |m| {
            m.tables.insert("rpit".into(), to_time);
        },
    )?;
    wait_restored(c, "rfb")?;
    wait_restored(c, "rpit")?;
    for i in 0..5 {
        c.put("rfb", item(400 + i, 9))?;
    }
    delete_backup(c, "rbk", &arn)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading back and checking.

#[derive(Debug)]
struct ActualTable {
    items: BTreeMap<String, Value>,
    indexes: BTreeSet<String>,
    tags: BTreeMap<String, String>,
    ttl: Option<String>,
    billing: String,
    stream: Option<BTreeMap<String, Vec<Change>>>,
}

fn scan_all(c: &Ctx, table: &str, index: Option<&str>) -> Result<Vec<Value>, Stop> {
    let mut err = None;
    let items = ferrodyn_testkit::scan_items(
        |op, body| match c.read(op, body) {
            Ok(v) => v,
            Err(e) => {
                err.get_or_insert(e);
                Value::Null
            }
        },
        table,
        index,
    );
    match err {
        Some(e) => Err(e),
        None => Ok(items),
    }
}

fn seq_key(s: &str) -> (usize, String) {
    (s.len(), s.to_owned())
}

fn read_stream(c: &Ctx, arn: &str, key: &[String]) -> Result<BTreeMap<String, Vec<Change>>, Stop> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let mut body = json!({"StreamArn": arn});
        if let Some(s) = &start {
            body["ExclusiveStartShardId"] = json!(s);
        }
        let d = c.read("DescribeStream", body)?["StreamDescription"].take();
        for sh in d["Shards"].as_array().into_iter().flatten() {
            shards.push(sh["ShardId"].as_str().unwrap().to_owned());
        }
        match d["LastEvaluatedShardId"].as_str() {
            Some(s) => start = Some(s.to_owned()),
            None => break,
        }
    }
    let mut records = Vec::new();
    for shard in shards {
        let it = c.read(
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )?;
        let mut iter = it["ShardIterator"].as_str().map(str::to_owned);
        while let Some(i) = iter.take() {
            let page = c.read("GetRecords", json!({"ShardIterator": i}))?;
            let recs = page["Records"].as_array().cloned().unwrap_or_default();
            let empty = recs.is_empty();
            records.extend(recs);
            if !empty {
                iter = page["NextShardIterator"].as_str().map(str::to_owned);
            }
        }
    }
    records.sort_by_key(|r| seq_key(r["dynamodb"]["SequenceNumber"].as_str().unwrap()));
    let mut out: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for r in records {
        let d = &r["dynamodb"];
        let k: BTreeMap<&str, &Value> = key.iter().map(|a| (a.as_str(), &d["Keys"][a])).collect();
        let event = match r["eventName"].as_str().unwrap() {
            "INSERT" => "INSERT",
            "MODIFY" => "MODIFY",
            _ => "REMOVE",
        };
        out.entry(serde_json::to_string(&k).unwrap())
            .or_default()
            .push(Change {
                event,
                old: d.get("OldImage").cloned(),
                new: d.get("NewImage").cloned(),
                at: Instant::now(),
            });
    }
    Ok(out)
}

fn item_size(item: &Value) -> u64 {
    item.as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| {
            let size = if let Some(s) = v["S"].as_str() {
                s.len()
            } else if let Some(num) = v["N"].as_str() {
                ferrodyn_model::Number::parse(num).unwrap().size_bytes()
            } else {
                panic!("unexpected attribute type in {v}")
            };
            (name.len() + size) as u64
        })
        .sum()
}

/// The attribute names of a `KeySchema` (of a table description, a CreateTable body or an
/// index), hash key first.
fn key_names(described: &Value) -> Vec<String> {
    described["KeySchema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
        .collect()
}

/// What an index holds for a table item: `None` if the item lacks an index key attribute.
fn project(item: &Value, index: &Value, table_key: &[String]) -> Option<Value> {
    let keys = key_names(index);
    if keys.iter().any(|k| item.get(k.as_str()).is_none()) {
        return None;
    }
    let p = &index["Projection"];
    let mut out = serde_json::Map::new();
    for (k, v) in item.as_object().unwrap() {
        let keep = match p["ProjectionType"].as_str().unwrap() {
            "ALL" => true,
            "INCLUDE" => p["NonKeyAttributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == k),
            _ => false,
        } || keys.contains(k)
            || table_key.iter().any(|t| t == k);
        if keep {
            out.insert(k.clone(), v.clone());
        }
    }
    Some(Value::Object(out))
}

fn canonical(items: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut v: Vec<String> = items
        .into_iter()
        .map(|i| {
            serde_json::to_string(&serde_json::from_value::<BTreeMap<String, Value>>(i).unwrap())
                .unwrap()
        })
        .collect();
    v.sort();
    v
}

/// Reads everything back from a restarted server, checking what holds whatever the model
/// (indexes equal their tables, statistics settle, tables are ACTIVE).
fn read_actual(c: &Ctx) -> Result<BTreeMap<String, ActualTable>, Stop> {
    let names: Vec<String> = c.read("ListTables", json!({}))?["TableNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        c.wait_indexes(&name)?;
        let d = c.describe(&name)?;
        let key = key_names(&d);
        let key_of = |item: &Value| {
            let k: BTreeMap<&str, &Value> = key.iter().map(|a| (a.as_str(), &item[a])).collect();
            serde_json::to_string(&k).unwrap()
        };
        // Expired items are swept first, so the reads below see a table TTL no longer changes.
        let ttl_d = c.read("DescribeTimeToLive", json!({"TableName": name}))?;
        let ttl = match ttl_d["TimeToLiveDescription"]["TimeToLiveStatus"].as_str() {
            Some("ENABLED" | "ENABLING") => ttl_d["TimeToLiveDescription"]["AttributeName"]
                .as_str()
                .map(str::to_owned),
            _ => None,
        };
        if let Some(attr) = &ttl {
            let deadline = Instant::now() + Duration::from_secs(30);
            while scan_all(c, &name, None)?.iter().any(|i| {
                i[attr]["N"]
                    .as_str()
                    .and_then(|n| n.parse::<i64>().ok())
                    .is_some_and(|t| t <= now())
            }) {
                if Instant::now() > deadline {
                    return Err(Stop::Wrong(format!("{name}: expired items never swept")));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Statistics settle on the stored items.
        let deadline = Instant::now() + Duration::from_secs(60);
        let items = loop {
            let items = scan_all(c, &name, None)?;
            let d = c.describe(&name)?;
            let size: u64 = items.iter().map(item_size).sum();
            if d["ItemCount"] == json!(items.len()) && d["TableSizeBytes"] == json!(size) {
                break items;
            }
            if Instant::now() > deadline {
                return Err(Stop::Wrong(format!(
                    "{name}: statistics never settled: ItemCount {} TableSizeBytes {}, stored {} items of {size} bytes",
                    d["ItemCount"], d["TableSizeBytes"], items.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let indexes = check_indexes(c, &name, &d, &items, &key)?;
        let arn = d["TableArn"].as_str().unwrap();
        let tags = c.read("ListTagsOfResource", json!({"ResourceArn": arn}))?["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["Key"].as_str().unwrap().to_owned(),
                    t["Value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let billing = d["BillingModeSummary"]["BillingMode"]
            .as_str()
            .unwrap_or("PROVISIONED")
            .to_owned();
        let stream = match d["LatestStreamArn"].as_str() {
            Some(arn) if d["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES" => {
                // Records trimmed while being read: read again.
                let mut tries = 0;
                loop {
                    match read_stream(c, arn, &key) {
                        Ok(s) => break Some(s),
                        Err(Stop::Wrong(e)) if e.contains("TrimmedDataAccess") && tries < 5 => {
                            tries += 1
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            _ => None,
        };
        out.insert(
            name,
            ActualTable {
                items: items.iter().map(|i| (key_of(i), i.clone())).collect(),
                indexes,
                tags,
                ttl,
                billing,
                stream,
            },
        );
    }
    Ok(out)
}

/// Checks that every index of the table `name` (described by `d`) equals the projection of
/// its `items`; the names of its indexes.
fn check_indexes(
    c: &Ctx,
    name: &str,
    d: &Value,
    items: &[Value],
    key: &[String],
) -> Result<BTreeSet<String>, Stop> {
    let mut indexes = BTreeSet::new();
    for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
        for ix in d[kind].as_array().into_iter().flatten() {
            let ix_name = ix["IndexName"].as_str().unwrap();
            indexes.insert(ix_name.to_owned());
            let want = canonical(items.iter().filter_map(|i| project(i, ix, key)));
            let got = canonical(scan_all(c, name, Some(ix_name))?);
            if want != got {
                let w: BTreeSet<_> = want.iter().collect();
                let g: BTreeSet<_> = got.iter().collect();
                return Err(Stop::Wrong(format!(
                    "{name}: index {ix_name} differs from its table: missing {:?}, extra {:?}",
                    w.difference(&g).take(5).collect::<Vec<_>>(),
                    g.difference(&w).take(5).collect::<Vec<_>>()
                )));
            }
        }
    }
    Ok(indexes)
}

/// Waits for the restored table `name` to be ACTIVE, checks its indexes and deletes it; its
/// items by key.
fn read_restored(c: &Ctx, name: &str) -> Result<BTreeMap<String, Value>, Stop> {
    c.wait_indexes(name)?;
    let d = c.describe(name)?;
    let key = key_names(&d);
    let items = scan_all(c, name, None)?;
    check_indexes(c, name, &d, &items, &key)?;
    c.read("DeleteTable", json!({"TableName": name}))?;
    Ok(items
        .into_iter()
        .map(|i| {
            let k: BTreeMap<&str, &Value> = key.iter().map(|a| (a.as_str(), &i[a])).collect();
            (serde_json::to_string(&k).unwrap(), i)
        })
        .collect())
}

fn same_items(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k)
                .is_some_and(|w| canonical([v.clone()]) == canonical([w.clone()]))
        })
}

/// After a restart: every backup the model requires exists, every backup is AVAILABLE (or
/// gone, if allowed) and restores, with its indexes, to exactly its items; no other backup
/// exists; point-in-time restores of surviving sources give the items at their time.
fn check_backups(c: &Ctx, model: &Model) -> Result<(), String> {
    let wrong = |e: Stop| format!("checking backups: {e:?}");
    let mut listed: BTreeMap<String, String> = BTreeMap::new(); // name -> ARN
    let mut start: Option<String> = None;
    loop {
        let mut body = json!({"BackupType": "ALL"});
        if let Some(s) = &start {
            body["ExclusiveStartBackupArn"] = json!(s);
        }
        let page = c.read("ListBackups", body).map_err(wrong)?;
        for b in page["BackupSummaries"].as_array().into_iter().flatten() {
            listed.insert(
                b["BackupName"].as_str().unwrap_or_default().to_owned(),
                b["BackupArn"].as_str().unwrap_or_default().to_owned(),
            );
        }
        match page["LastEvaluatedBackupArn"].as_str() {
            Some(s) => start = Some(s.to_owned()),
            None => break,
        }
    }
    for name in listed.keys() {
        if !model.backups.contains_key(name) {
            return Err(format!("unexpected backup {name}"));
        }
    }
    for (i, (name, b)) in model.backups.iter().enumerate() {
        let Some(arn) = listed.get(name) else {
            if b.required {
                return Err(format!("acknowledged backup {name} is gone"));
            }
            continue;
        };
        // An interrupted copy is removed at the start; anything listed must be complete.
        let d = c
            .read("DescribeBackup", json!({"BackupArn": arn}))
            .map_err(wrong)?;
        let status = &d["BackupDescription"]["BackupDetails"]["BackupStatus"];
        if status != "AVAILABLE" {
            return Err(format!("backup {name} is {status} after the restart"));
        }
        let target = format!("chk{i}");
        c.read(
            "RestoreTableFromBackup",
            json!({"TargetTableName": target, "BackupArn": arn}),
        )
        .map_err(wrong)?;
        let got = read_restored(c, &target).map_err(wrong)?;
        let fits = (b.min_extra..=b.max_extra.min(b.extra.len())).any(|k| {
            let mut want = b.base.clone();
            want.extend(b.extra[..k].iter().cloned());
            same_items(&want, &got)
        });
        if !fits {
            return Err(format!(
                "backup {name} of {} restores {} items, not its table's at its time ({} items plus {}..={} of {} written meanwhile)",
                b.table,
                got.len(),
                b.base.len(),
                b.min_extra,
                b.max_extra,
                b.extra.len()
            ));
        }
    }
    for (i, p) in model.pitr.iter().enumerate() {
        if !model.tables.contains_key(&p.source) {
            continue;
        }
        let target = format!("chkp{i}");
        c.read(
            "RestoreTableToPointInTime",
            json!({"SourceTableName": p.source, "TargetTableName": target, "RestoreDateTime": p.at}),
        )
        .map_err(wrong)?;
        let got = read_restored(c, &target).map_err(wrong)?;
        if !same_items(&p.items, &got) {
            return Err(format!(
                "{} restored to {} holds {} items, expected {}",
                p.source,
                p.at,
                got.len(),
                p.items.len()
            ));
        }
    }
    Ok(())
}

/// Differences between the model and what was read back (empty: they match).
fn compare(model: &Model, actual: &BTreeMap<String, ActualTable>) -> Vec<String> {
    let mut diffs = Vec::new();
    let m_names: Vec<&String> = model.tables.keys().collect();
    let a_names: Vec<&String> = actual.keys().collect();
    if m_names != a_names {
        diffs.push(format!("tables {a_names:?}, expected {m_names:?}"));
        return diffs;
    }
    for (name, m) in &model.tables {
        let a = &actual[name];
        for (k, v) in &m.items {
            match a.items.get(k) {
                Some(got) if canonical([got.clone()]) == canonical([v.clone()]) => {}
                None if m.expiring.contains(k) => {}
                got => diffs.push(format!("{name}: item {k} is {got:?}, expected {v}")),
            }
        }
        for k in a.items.keys() {
            if !m.items.contains_key(k) {
                diffs.push(format!("{name}: unexpected item {k}"));
            }
        }
        if m.indexes != a.indexes {
            diffs.push(format!(
                "{name}: indexes {:?}, expected {:?}",
                a.indexes, m.indexes
            ));
        }
        if m.tags != a.tags {
            diffs.push(format!("{name}: tags {:?}, expected {:?}", a.tags, m.tags));
        }
        if m.ttl != a.ttl {
            diffs.push(format!("{name}: TTL {:?}, expected {:?}", a.ttl, m.ttl));
        }
        if m.billing != a.billing {
            diffs.push(format!(
                "{name}: billing {}, expected {}",
                a.billing, m.billing
            ));
        }
        if let Some(ms) = &m.stream {
            let Some(as_) = &a.stream else {
                diffs.push(format!("{name}: stream missing"));
                continue;
            };
            let keys: BTreeSet<&String> = ms.keys().chain(as_.keys()).collect();
            for k in keys {
                let want = ms.get(k).map(Vec::as_slice).unwrap_or_default();
                let got = as_.get(k).map(Vec::as_slice).unwrap_or_default();
                let same = match model.retention {
                    None => want == got,
                    // Trimming removes the oldest records: what is left is the newest part,
                    // including at least every change from well within the retention period.
                    Some(retention) => {
                        let recent = Instant::now()
                            .checked_sub(retention.saturating_sub(Duration::from_millis(1500)));
                        let required = want
                            .iter()
                            .filter(|w| recent.is_none_or(|r| w.at > r))
                            .count();
                        got.len() <= want.len()
                            && got.len() >= required
                            && want[want.len() - got.len()..] == *got
                    }
                };
                if !same {
                    diffs.push(format!("{name}: stream of {k}: {got:?}, expected {want:?}"));
                }
            }
        }
    }
    diffs
}

// ---------------------------------------------------------------------------------------------
// Running points.

fn serve_args(dir: &Path, scenario: &Scenario) -> Vec<String> {
    [
        "serve",
        "--port",
        "0",
        "--data-dir",
        dir.to_str().unwrap(),
        "--ttl-interval",
        "0.1",
        "--memtable-mb",
        "1",
    ]
    .iter()
    .chain(scenario.args)
    .map(|s| s.to_string())
    .collect()
}

/// Restarts on `dir` without a crash point and checks it against the model before and after
/// the request that was in flight.
fn check_restart(
    dir: &Path,
    scenario: &Scenario,
    model: &Model,
    pending: Option<Effect>,
) -> Result<(), String> {
    let args = serve_args(dir, scenario);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::try_start_env(Path::new(BIN), &args, &[], None)
        .map_err(|mut p| format!("restart failed: {:?}", p.wait_exit(Duration::from_secs(10))))?;
    let c = Ctx::new(&server.url);
    let actual = read_actual(&c).map_err(|e| format!("reading back: {e:?}"))?;
    let before = compare(model, &actual);
    let verdict = if before.is_empty() {
        Ok(())
    } else if let Some(effect) = pending {
        let mut after_model = model.clone();
        effect(&mut after_model);
        let after = compare(&after_model, &actual);
        if after.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "matches neither the acknowledged state ({before:?}) nor that plus the request in flight ({after:?})"
            ))
        }
    } else {
        Err(format!("differs from the acknowledged state: {before:?}"))
    };
    verdict?;
    check_backups(&c, model)?;
    drop(server);
    let leaked = leaked_keyspaces(dir);
    if !leaked.is_empty() {
        return Err(format!(
            "keyspaces no table or backup refers to: {leaked:?}"
        ));
    }
    Ok(())
}

/// Keyspaces of tables, indexes, histories and backups (by their name prefixes) that no
/// catalog or backup record names, read from the stopped server's directory.
fn leaked_keyspaces(dir: &Path) -> Vec<String> {
    use ferrodyn_storage::Storage;
    fn named(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match v.as_str() {
                        Some(ks) if k == "keyspace" => {
                            out.insert(ks.to_owned());
                        }
                        _ => named(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| named(v, out)),
            _ => {}
        }
    }
    let storage = ferrodyn_storage::FjallStorage::open(dir).expect("open the data directory");
    let mut owned = BTreeSet::new();
    for records in ["catalog", "backups"] {
        if storage.keyspace_exists(records) {
            storage
                .scan(
                    records,
                    std::ops::Bound::Unbounded,
                    std::ops::Bound::Unbounded,
                    false,
                    &mut |_, v| {
                        named(
                            &serde_json::from_slice(v).unwrap_or(Value::Null),
                            &mut owned,
                        );
                        true
                    },
                )
                .unwrap();
        }
    }
    storage
        .list_keyspaces()
        .into_iter()
        .filter(|k| ["t-", "i-", "h-", "b-"].iter().any(|p| k.starts_with(p)) && !owned.contains(k))
        .collect()
}

#[derive(Debug)]
struct PointResult {
    crashed: bool,
}

/// Where crash points are counted and armed.
#[derive(Clone, Debug)]
enum Points {
    /// In the storage engine, around its calls into fjall (`FERRODYN_CRASH_AT`).
    Engine,
    /// At the system-call boundary, inside fjall's flushes and compactions too: the
    /// `ferrodyn-faultfs` library at this path, preloaded (`FERRODYN_FAULTFS_ABORT`).
    Syscalls(PathBuf),
}

impl Points {
    /// The environment that arms `point` (`count`: counts, into `report`) for a server on `dir`.
    fn env(&self, point: &str, report: Option<&Path>, dir: &Path) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.to_str().unwrap().to_owned();
        match self {
            Points::Engine => {
                let mut env = vec![("FERRODYN_CRASH_AT", point.to_owned())];
                if let Some(r) = report {
                    env.push(("FERRODYN_CRASH_REPORT", path(r)));
                }
                env
            }
            Points::Syscalls(shim) => {
                // The library compares with the kernel's name of each file: no symlink.
                let dir = dir.canonicalize().unwrap();
                let mut env = vec![
                    ("LD_PRELOAD", path(shim)),
                    ("FERRODYN_FAULTFS_DIR", path(&dir)),
                ];
                match report {
                    Some(r) => env.push(("FERRODYN_FAULTFS_COUNTS", path(r))),
                    None => env.push(("FERRODYN_FAULTFS_ABORT", point.to_owned())),
                }
                env
            }
        }
    }
}

/// Runs `scenario` with the crash point `point` of `points` on a fresh directory (with
/// `report`: counts its events there instead, and shuts down cleanly).
fn run_point(
    scenario: &Scenario,
    points: &Points,
    point: &str,
    report: Option<&Path>,
) -> Result<PointResult, (String, PathBuf)> {
    let dir = tempfile::tempdir().unwrap();
    let fail = |msg: String, dir: tempfile::TempDir| Err((msg, dir.keep()));
    let env = points.env(point, report, dir.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = serve_args(dir.path(), scenario);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (model, pending, crashed) =
        match ServerProcess::try_start_env(Path::new(BIN), &args, &env, None) {
            Err(mut proc) => {
                // Crashed while opening.
                match proc.wait_exit(Duration::from_secs(10)) {
                    Some(st) if is_abort(&st) => (Model::default(), None, true),
                    st => return fail(format!("server failed to start: {st:?}"), dir),
                }
            }
            Ok(mut server) => {
                let mut c = Ctx::new(&server.url);
                let res = (scenario.run)(&mut c);
                match res {
                    Ok(()) => {
                        if report.is_some() {
                            if !server.terminate() {
                                return fail("clean shutdown failed".into(), dir);
                            }
                            (c.model, None, false)
                        } else {
                            let crashed = server.exited().is_some();
                            if crashed && !server.exited().is_some_and(|s| is_abort(&s)) {
                                return fail(format!("server exited: {:?}", server.exited()), dir);
                            }
                            if !crashed && matches!(points, Points::Syscalls(_)) {
                                // A clean shutdown deletes the table files compactions
                                // replaced: the system-call points reach into it too.
                                let _ = std::process::Command::new("kill")
                                    .args(["-TERM", &server.pid().to_string()])
                                    .status();
                                match server.wait_exit(Duration::from_secs(60)) {
                                    Some(st) if st.success() => (c.model, None, false),
                                    Some(st) if is_abort(&st) => (c.model, None, true),
                                    st => return fail(format!("clean shutdown: {st:?}"), dir),
                                }
                            } else {
                                server.kill9();
                                (c.model, None, crashed)
                            }
                        }
                    }
                    Err(Stop::Died) => match server.wait_exit(Duration::from_secs(10)) {
                        Some(st) if is_abort(&st) => (c.model, c.pending, true),
                        st => {
                            return fail(
                                format!("a request failed but the server did not abort: {st:?}"),
                                dir,
                            )
                        }
                    },
                    Err(Stop::Wrong(msg)) => return fail(format!("workload: {msg}"), dir),
                }
            }
        };
    match check_restart(dir.path(), scenario, &model, pending) {
        Ok(()) => Ok(PointResult { crashed }),
        Err(msg) => fail(msg, dir),
    }
}

fn is_abort(st: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    st.signal() == Some(6)
}

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `points` crash points spread over the events a crash-free run counted, shared between the
/// kinds of event by the scenario's weights.
fn pick_points(
    scenario: &Scenario,
    counts: &BTreeMap<String, u64>,
    points: usize,
    rng: &mut Rng,
) -> Vec<String> {
    let kinds: Vec<(&str, u64, usize)> = ["commit", "sync", "compact"]
        .into_iter()
        .zip(scenario.weights)
        .map(|(k, w)| (k, counts.get(k).copied().unwrap_or(0), w as usize))
        .filter(|(_, count, w)| *count > 0 && *w > 0)
        .collect();
    let total: usize = kinds.iter().map(|(_, _, w)| w).sum();
    let mut shares: Vec<usize> = kinds
        .iter()
        .map(|(_, _, w)| points * w / total.max(1))
        .collect();
    let left = points.saturating_sub(shares.iter().sum::<usize>());
    for i in 0..left {
        let k = i % shares.len().max(1);
        if let Some(s) = shares.get_mut(k) {
            *s += 1;
        }
    }
    let mut out = Vec::new();
    for ((kind, count, _), share) in kinds.iter().zip(shares) {
        // One point in each of `share` equal strata of the run.
        for i in 0..share as u64 {
            let lo = count * i / share as u64;
            let hi = (count * (i + 1) / share as u64).max(lo + 1);
            let n = 1 + lo + rng.below(hi - lo);
            let when = if rng.below(2) == 0 { "before" } else { "after" };
            out.push(format!("{kind}:{n}:{when}"));
        }
    }
    out
}

/// `points` crash points at the system-call boundary: an equal share for each operation on
/// each kind of file the crash-free run saw (`write.table`, `rename.version`, ...; calls on
/// other files, directories and the lock file, are left out), each share spread over the run.
fn pick_syscall_points(
    counts: &BTreeMap<String, u64>,
    points: usize,
    rng: &mut Rng,
) -> Vec<String> {
    let mut kinds: Vec<(&String, u64)> = counts
        .iter()
        .filter(|(k, &n)| n > 0 && !k.ends_with(".other"))
        .map(|(k, &n)| (k, n))
        .collect();
    // Table and version files first (flushes and compactions), in an order of the seed's;
    // a share is only taken once every kind before it has one.
    let order: Vec<(bool, u64)> = kinds
        .iter()
        .map(|(k, _)| (k.ends_with(".journal"), rng.next()))
        .collect();
    let mut idx: Vec<usize> = (0..kinds.len()).collect();
    idx.sort_by_key(|&i| order[i]);
    kinds = idx.iter().map(|&i| kinds[i]).collect();
    // Round-robin, at most two points (before and after) per call a kind has.
    let mut shares = vec![0usize; kinds.len()];
    let mut left = points;
    while left > 0 {
        let before = left;
        for (share, (_, count)) in shares.iter_mut().zip(&kinds) {
            if left > 0 && (*share as u64) < count * 2 {
                *share += 1;
                left -= 1;
            }
        }
        if left == before {
            break;
        }
    }
    let mut out = Vec::new();
    for ((kind, count), share) in kinds.iter().zip(shares) {
        for j in 0..share as u64 {
            let lo = count * j / share as u64;
            let hi = (count * (j + 1) / share as u64).max(lo + 1);
            let n = 1 + lo + rng.below(hi - lo);
            // More points than calls: both sides of each call.
            let when = if share as u64 > *count {
                ["before", "after"][j as usize % 2]
            } else {
                ["before", "after"][rng.below(2) as usize]
            };
            out.push(format!("{kind} {n} {when}"));
        }
    }
    out
}

fn counts_of(scenario: &Scenario, points: &Points) -> BTreeMap<String, u64> {
    let report = tempfile::NamedTempFile::new().unwrap();
    if let Err((msg, dir)) = run_point(scenario, points, "count", Some(report.path())) {
        panic!(
            "{}: crash-free run failed: {msg} (data directory {})",
            scenario.name,
            dir.display()
        );
    }
    std::fs::read_to_string(report.path())
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `points` crash points of `mode` spread over the scenarios (`default`, unless
/// `FERRODYN_CRASH_SCENARIOS` names others); panics listing every failure.
fn run_harness(points: usize, mode: &Points, default: &[&str]) {
    let seed: u64 = env_or("FERRODYN_CRASH_SEED", 1);
    let jobs: usize = env_or("FERRODYN_CRASH_JOBS", 2usize).max(1);
    let only: Vec<String> = match std::env::var("FERRODYN_CRASH_SCENARIOS") {
        Ok(v) => v.split(',').map(str::to_owned).collect(),
        Err(_) => default.iter().map(|s| s.to_string()).collect(),
    };
    let scenarios: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == s.name))
        .collect();
    let per = points.div_ceil(scenarios.len().max(1));
    let mut work: Vec<(&Scenario, String)> = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        let started = Instant::now();
        let counts = counts_of(scenario, mode);
        eprintln!(
            "{}: crash-free run counted {counts:?} in {:.1}s",
            scenario.name,
            started.elapsed().as_secs_f64()
        );
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64 + 1) | 1);
        let picked = match mode {
            Points::Engine => pick_points(scenario, &counts, per, &mut rng),
            Points::Syscalls(_) => pick_syscall_points(&counts, per, &mut rng),
        };
        for p in picked {
            work.push((scenario, p));
        }
    }
    let next = AtomicUsize::new(0);
    let crashed = AtomicUsize::new(0);
    // Points that crashed, by their first word (`commit`, `rename.version`, ...).
    let by_kind: Mutex<BTreeMap<String, usize>> = Mutex::default();
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((scenario, point)) = work.get(i) else {
                    return;
                };
                match run_point(scenario, mode, point, None) {
                    Ok(r) => {
                        if r.crashed {
                            crashed.fetch_add(1, Ordering::SeqCst);
                            let kind = point.split([' ', ':']).next().unwrap_or_default();
                            *by_kind.lock().unwrap().entry(kind.to_owned()).or_default() += 1;
                        }
                    }
                    Err((msg, dir)) => {
                        let var = match mode {
                            Points::Engine => "FERRODYN_CRASH_AT",
                            Points::Syscalls(_) => "FERRODYN_FAULTFS_ABORT",
                        };
                        let line = format!(
                            "{} at {var}='{point}': {msg} (data directory {})",
                            scenario.name,
                            dir.display()
                        );
                        eprintln!("FAILED {line}");
                        failures.lock().unwrap().push(line);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "crash points: {} run, {} crashed at their point ({:?}), {} failed, in {:.0}s",
        work.len(),
        crashed.load(Ordering::SeqCst),
        by_kind.into_inner().unwrap(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} crash points failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        crashed.load(Ordering::SeqCst) * 2 >= work.len(),
        "most points never crashed: the counts of the crash-free run do not describe the runs"
    );
}

/// The scenarios of the engine's points.
const ENGINE_SCENARIOS: &[&str] = &[
    "tables",
    "gsi_backfill",
    "ttl",
    "streams",
    "transactions",
    "catalog",
    "settle",
    "backups",
    "restores",
];

/// The scenarios of the system-call points: those that flush, compact, and create and drop
/// keyspaces.
const SYSCALL_SCENARIOS: &[&str] = &["settle", "flush", "tables", "backups", "restores"];

/// The bounded run of the regular test suite.
#[test]
fn crash_points_bounded() {
    run_harness(
        env_or("FERRODYN_CRASH_POINTS_CI", 21),
        &Points::Engine,
        ENGINE_SCENARIOS,
    );
}

/// Thousands of points, by hand (see the module documentation).
#[test]
#[ignore = "long: run by hand with FERRODYN_CRASH_POINTS"]
fn crash_points_many() {
    run_harness(
        env_or("FERRODYN_CRASH_POINTS", 700),
        &Points::Engine,
        ENGINE_SCENARIOS,
    );
}

fn syscall_points() -> Points {
    Points::Syscalls(ferrodyn_testkit::faultfs_library(Path::new(BIN)))
}

/// The bounded run of system-call points: inside a flush and a compaction.
#[test]
fn syscall_crash_points_bounded() {
    run_harness(
        env_or("FERRODYN_SYSCALL_POINTS_CI", 6),
        &syscall_points(),
        &["flush"],
    );
}

/// Hundreds of system-call points, by hand (see the module documentation).
#[test]
#[ignore = "long: run by hand with FERRODYN_CRASH_POINTS"]
fn syscall_crash_points_many() {
    run_harness(
        env_or("FERRODYN_CRASH_POINTS", 300),
        &syscall_points(),
        SYSCALL_SCENARIOS,
    );
}
