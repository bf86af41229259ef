//! Workload definitions (YCSB A–F and single-operation runs) and the DynamoDB
//! JSON request bodies they send.
//!
//! Owns: the operation mix of each workload and the byte-exact request bodies.
//!
//! Invariants:
//! - Bodies are written into a caller-owned buffer; nothing here allocates per
//!   request. Only pre-escaped JSON fragments (table name) and ASCII we generate
//!   (`user{n}`, decimal sort keys, alphanumeric data) are spliced in, so no
//!   escaping is needed on the hot path.
//! - Data layout: partition key `pk` = `user{n}`, sort key `sk` = decimal row
//!   number (`"0"` for single-row items), attribute `data` = a string of exactly
//!   `item_size` bytes.
//! - Multi-item writes (BatchWriteItem, TransactWriteItems) use distinct keys
//!   `(base + i) mod keys`, which requires `keys >= items per request`.

use bytes::{BufMut, BytesMut};

use crate::keygen::{Distribution, Rng};

/// Items per BatchWriteItem request (the DynamoDB maximum).
pub const BATCH_SIZE: u64 = 25;
/// Puts per TransactWriteItems request.
pub const TRANSACT_SIZE: u64 = 4;
/// Rows (sort keys) per partition for query workloads.
pub const QUERY_ROWS: u64 = 20;

/// The workload to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// YCSB A: 50% reads, 50% updates.
    A,
    /// YCSB B: 95% reads, 5% updates.
    B,
    /// YCSB C: 100% reads.
    C,
    /// YCSB D: 95% reads of recently inserted keys, 5% inserts.
    D,
    /// YCSB E: 95% short Query ranges, 5% inserts.
    E,
    /// YCSB F: 50% reads, 50% read-modify-write.
    F,
    /// PutItem only.
    Put,
    /// GetItem only.
    Get,
    /// UpdateItem only.
    Update,
    /// Query of a whole partition (20 items when loaded with 20 rows).
    Query,
    /// BatchWriteItem of 25 puts.
    BatchWrite,
    /// TransactWriteItems of 4 puts.
    TransactWrite,
    /// ExecuteStatement `SELECT * ... WHERE pk = ? AND sk = ?` (the PartiQL form of `get`).
    PartiqlGet,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::A => "a",
            Workload::B => "b",
            Workload::C => "c",
            Workload::D => "d",
            Workload::E => "e",
            Workload::F => "f",
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Update => "update",
            Workload::Query => "query",
            Workload::BatchWrite => "batch-write",
            Workload::TransactWrite => "transact-write",
            Workload::PartiqlGet => "partiql-get",
        }
    }

    /// The key distribution used when none is given: YCSB uses "latest" for D
    /// and zipfian for the rest.
    pub fn default_distribution(self) -> Distribution {
        match self {
            Workload::D => Distribution::Latest,
            _ => Distribution::Zipfian,
        }
    }

    /// Rows per partition to pre-load so the workload's queries find data.
    pub fn default_rows_per_key(self) -> u64 {
        match self {
            Workload::E | Workload::Query => QUERY_ROWS,
            _ => 1,
        }
    }

    /// Minimum key count so multi-item requests have distinct keys.
    pub fn min_keys(self) -> u64 {
        match self {
            Workload::BatchWrite => BATCH_SIZE,
            Workload::TransactWrite => TRANSACT_SIZE,
            _ => 1,
        }
    }

    /// Picks the next operation of this workload's mix.
    #[inline]
    pub fn pick(self, rng: &mut Rng) -> OpKind {
        let r = rng.below(100);
        match self {
            Workload::A => pick2(r, 50, OpKind::Get, OpKind::Update),
            Workload::B => pick2(r, 95, OpKind::Get, OpKind::Update),
            Workload::C => OpKind::Get,
            Workload::D => pick2(r, 95, OpKind::Get, OpKind::Insert),
            Workload::E => pick2(r, 95, OpKind::Scan, OpKind::Insert),
            Workload::F => pick2(r, 50, OpKind::Get, OpKind::Rmw),
            Workload::Put => OpKind::Put,
            Workload::Get => OpKind::Get,
            Workload::Update => OpKind::Update,
            Workload::Query => OpKind::Query,
            Workload::BatchWrite => OpKind::BatchWrite,
            Workload::TransactWrite => OpKind::TransactWrite,
            Workload::PartiqlGet => OpKind::PartiqlGet,
        }
    }
}

#[inline]
fn pick2(r: u64, first_pct: u64, first: OpKind, second: OpKind) -> OpKind {
    if r < first_pct {
        first
    } else {
        second
    }
}

/// One kind of measured operation. Every kind but `Rmw` is one HTTP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Get = 0,
    Put,
    Update,
    /// PutItem of a brand-new key (YCSB INSERT).
    Insert,
    /// Query returning a whole partition.
    Query,
    /// Short Query range with a Limit (YCSB SCAN).
    Scan,
    BatchWrite,
    TransactWrite,
    /// Read-modify-write: GetItem then UpdateItem of the same key (composite).
    Rmw,
    /// ExecuteStatement SELECT of one item by its full key.
    PartiqlGet,
}

impl OpKind {
    pub const COUNT: usize = 10;
    pub const ALL: [OpKind; OpKind::COUNT] = [
        OpKind::Get,
        OpKind::Put,
        OpKind::Update,
        OpKind::Insert,
        OpKind::Query,
        OpKind::Scan,
        OpKind::BatchWrite,
        OpKind::TransactWrite,
        OpKind::Rmw,
        OpKind::PartiqlGet,
    ];

    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::Query => "query",
            OpKind::Scan => "scan",
            OpKind::BatchWrite => "batch_write",
            OpKind::TransactWrite => "transact_write",
            OpKind::Rmw => "read_modify_write",
            OpKind::PartiqlGet => "partiql_get",
        }
    }

    /// Whether this kind is a single HTTP request (counted in request totals).
    pub fn is_request(self) -> bool {
        self != OpKind::Rmw
    }
}

/// DynamoDB operation names, used for the `X-Amz-Target` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    GetItem,
    PutItem,
    UpdateItem,
    Query,
    BatchWriteItem,
    TransactWriteItems,
    CreateTable,
    DescribeTable,
    ExecuteStatement,
    Scan,
    DeleteTable,
    CreateBackup,
    DescribeBackup,
    DeleteBackup,
    UpdateContinuousBackups,
    RestoreTableFromBackup,
    RestoreTableToPointInTime,
}

impl Target {
    pub fn header(self) -> &'static str {
        match self {
            Target::GetItem => "DynamoDB_20120810.GetItem",
            Target::PutItem => "DynamoDB_20120810.PutItem",
            Target::UpdateItem => "DynamoDB_20120810.UpdateItem",
            Target::Query => "DynamoDB_20120810.Query",
            Target::BatchWriteItem => "DynamoDB_20120810.BatchWriteItem",
            Target::TransactWriteItems => "DynamoDB_20120810.TransactWriteItems",
            Target::CreateTable => "DynamoDB_20120810.CreateTable",
            Target::DescribeTable => "DynamoDB_20120810.DescribeTable",
            Target::ExecuteStatement => "DynamoDB_20120810.ExecuteStatement",
            Target::Scan => "DynamoDB_20120810.Scan",
            Target::DeleteTable => "DynamoDB_20120810.DeleteTable",
            Target::CreateBackup => "DynamoDB_20120810.CreateBackup",
            Target::DescribeBackup => "DynamoDB_20120810.DescribeBackup",
            Target::DeleteBackup => "DynamoDB_20120810.DeleteBackup",
            Target::UpdateContinuousBackups => "DynamoDB_20120810.UpdateContinuousBackups",
            Target::RestoreTableFromBackup => "DynamoDB_20120810.RestoreTableFromBackup",
            Target::RestoreTableToPointInTime => "DynamoDB_20120810.RestoreTableToPointInTime",
        }
    }
}

/// Builds request bodies for one table. Cheap to clone (shares the data pool).
#[derive(Clone, Debug)]
pub struct Bodies {
    /// The table name as a JSON string literal, quotes included.
    table_json: std::sync::Arc<str>,
    /// Random alphanumeric bytes; `data` values are windows of it.
    pool: std::sync::Arc<[u8]>,
    item_size: usize,
    /// `{"Statement":"SELECT * FROM \"table\" WHERE ...","Parameters":[{"S":"user`.
    partiql_get_prefix: std::sync::Arc<[u8]>,
}

/// Extra pool bytes beyond `item_size`, so values start at varied offsets.
const POOL_SLACK: usize = 4096;

impl Bodies {
    pub fn new(table: &str, item_size: usize, seed: u64) -> Self {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = Rng::new(seed);
        let pool: Vec<u8> = (0..item_size + POOL_SLACK)
            .map(|_| ALNUM[rng.below(ALNUM.len() as u64) as usize])
            .collect();
        let statement = format!("SELECT * FROM \"{table}\" WHERE pk = ? AND sk = ?");
        let partiql_get_prefix = format!(
            "{{\"Statement\":{},\"Parameters\":[{{\"S\":\"user",
            serde_json::Value::String(statement)
        );
        Bodies {
            table_json: serde_json::Value::String(table.to_string())
                .to_string()
                .into(),
            pool: pool.into(),
            item_size,
            partiql_get_prefix: partiql_get_prefix.into_bytes().into(),
        }
    }

    fn data<'a>(&'a self, rng: &mut Rng) -> &'a [u8] {
        let off = rng.below(POOL_SLACK as u64 + 1) as usize;
        &self.pool[off..off + self.item_size]
    }

    fn put_key(buf: &mut BytesMut, key: u64, row: u64) {
        buf.put_slice(b"\"pk\":{\"S\":\"user");
        put_u64(buf, key);
        buf.put_slice(b"\"},\"sk\":{\"S\":\"");
        put_u64(buf, row);
        buf.put_slice(b"\"}");
    }

    fn put_item(&self, buf: &mut BytesMut, key: u64, row: u64, rng: &mut Rng) {
        buf.put_slice(b"{");
        Self::put_key(buf, key, row);
        buf.put_slice(b",\"data\":{\"S\":\"");
        buf.put_slice(self.data(rng));
        buf.put_slice(b"\"}}");
    }

    fn put_table_field(&self, buf: &mut BytesMut) {
        buf.put_slice(b"{\"TableName\":");
        buf.put_slice(self.table_json.as_bytes());
    }

    pub fn get_item(&self, buf: &mut BytesMut, key: u64) {
        self.put_table_field(buf);
        buf.put_slice(b",\"Key\":{");
        Self::put_key(buf, key, 0);
        buf.put_slice(b"}}");
    }

    /// ExecuteStatement selecting `(user{key}, "0")` by its full key.
    pub fn partiql_get(&self, buf: &mut BytesMut, key: u64) {
        buf.put_slice(&self.partiql_get_prefix);
        put_u64(buf, key);
        buf.put_slice(b"\"},{\"S\":\"0\"}]}");
    }

    pub fn put_item_body(&self, buf: &mut BytesMut, key: u64, rng: &mut Rng) {
        self.put_table_field(buf);
        buf.put_slice(b",\"Item\":");
        self.put_item(buf, key, 0, rng);
        buf.put_slice(b"}");
    }

    pub fn update_item(&self, buf: &mut BytesMut, key: u64, rng: &mut Rng) {
        self.put_table_field(buf);
        buf.put_slice(b",\"Key\":{");
        Self::put_key(buf, key, 0);
        buf.put_slice(
            b"},\"UpdateExpression\":\"SET #d = :d\",\"ExpressionAttributeNames\":{\"#d\":\"data\"},\
              \"ExpressionAttributeValues\":{\":d\":{\"S\":\"",
        );
        buf.put_slice(self.data(rng));
        buf.put_slice(b"\"}}}");
    }

    /// Query of the whole partition `user{key}`.
    pub fn query(&self, buf: &mut BytesMut, key: u64) {
        self.put_table_field(buf);
        buf.put_slice(
            b",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"user",
        );
        put_u64(buf, key);
        buf.put_slice(b"\"}}}");
    }

    /// Short range: rows with `sk >= start` in partition `user{key}`, at most `limit`.
    pub fn scan(&self, buf: &mut BytesMut, key: u64, start: u64, limit: u64) {
        self.put_table_field(buf);
        buf.put_slice(
            b",\"KeyConditionExpression\":\"pk = :p AND sk >= :s\",\
              \"ExpressionAttributeValues\":{\":p\":{\"S\":\"user",
        );
        put_u64(buf, key);
        buf.put_slice(b"\"},\":s\":{\"S\":\"");
        put_u64(buf, start);
        buf.put_slice(b"\"}},\"Limit\":");
        put_u64(buf, limit.max(1));
        buf.put_slice(b"}");
    }

    /// BatchWriteItem of the items with global indices `first..first+count`,
    /// where index `i` is key `i / rows`, row `i % rows` (the load layout).
    pub fn batch_write_range(
        &self,
        buf: &mut BytesMut,
        first: u64,
        count: u64,
        rows: u64,
        rng: &mut Rng,
    ) {
        let rows = rows.max(1);
        self.batch_write_with(buf, count, rng, |i| {
            ((first + i) / rows, (first + i) % rows)
        });
    }

    /// BatchWriteItem of `BATCH_SIZE` items with distinct keys `(base + i) mod keys`.
    pub fn batch_write(&self, buf: &mut BytesMut, base: u64, keys: u64, rng: &mut Rng) {
        let keys = keys.max(1);
        self.batch_write_with(buf, BATCH_SIZE, rng, |i| ((base + i) % keys, 0));
    }

    fn batch_write_with(
        &self,
        buf: &mut BytesMut,
        count: u64,
        rng: &mut Rng,
        key_of: impl Fn(u64) -> (u64, u64),
    ) {
        buf.put_slice(b"{\"RequestItems\":{");
        buf.put_slice(self.table_json.as_bytes());
        buf.put_slice(b":[");
        for i in 0..count {
            if i > 0 {
                buf.put_slice(b",");
            }
            let (key, row) = key_of(i);
            buf.put_slice(b"{\"PutRequest\":{\"Item\":");
            self.put_item(buf, key, row, rng);
            buf.put_slice(b"}}");
        }
        buf.put_slice(b"]}}");
    }

    /// TransactWriteItems of `TRANSACT_SIZE` puts with distinct keys.
    pub fn transact_write(&self, buf: &mut BytesMut, base: u64, keys: u64, rng: &mut Rng) {
        let keys = keys.max(1);
        buf.put_slice(b"{\"TransactItems\":[");
        for i in 0..TRANSACT_SIZE {
            if i > 0 {
                buf.put_slice(b",");
            }
            buf.put_slice(b"{\"Put\":");
            self.put_table_field(buf);
            buf.put_slice(b",\"Item\":");
            self.put_item(buf, (base + i) % keys, 0, rng);
            buf.put_slice(b"}}");
        }
        buf.put_slice(b"]}");
    }

    pub fn create_table(&self, buf: &mut BytesMut) {
        self.put_table_field(buf);
        buf.put_slice(
            b",\"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},\
              {\"AttributeName\":\"sk\",\"AttributeType\":\"S\"}],\
              \"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"},\
              {\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}],\
              \"BillingMode\":\"PAY_PER_REQUEST\"}",
        );
    }

    pub fn describe_table(&self, buf: &mut BytesMut) {
        self.put_table_field(buf);
        buf.put_slice(b"}");
    }
}

/// Decimal `v` without allocating.
#[inline]
fn put_u64(buf: &mut BytesMut, v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.put_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(f: impl FnOnce(&Bodies, &mut BytesMut, &mut Rng)) -> serde_json::Value {
        let b = Bodies::new("t\"x", 16, 1);
        let mut buf = BytesMut::new();
        let mut rng = Rng::new(2);
        f(&b, &mut buf, &mut rng);
        serde_json::from_slice(&buf).expect("valid JSON")
    }

    #[test]
    fn bodies_are_valid_json_with_expected_shape() {
        let v = json(|b, buf, _| b.get_item(buf, 42));
        assert_eq!(v["TableName"], "t\"x");
        assert_eq!(v["Key"]["pk"]["S"], "user42");
        assert_eq!(v["Key"]["sk"]["S"], "0");

        let v = json(|b, buf, r| b.put_item_body(buf, 0, r));
        assert_eq!(v["Item"]["data"]["S"].as_str().unwrap().len(), 16);

        let v = json(|b, buf, r| b.update_item(buf, 7, r));
        assert_eq!(v["UpdateExpression"], "SET #d = :d");
        assert_eq!(
            v["ExpressionAttributeValues"][":d"]["S"]
                .as_str()
                .unwrap()
                .len(),
            16
        );

        let v = json(|b, buf, _| b.query(buf, 123_456_789));
        assert_eq!(v["ExpressionAttributeValues"][":p"]["S"], "user123456789");

        let v = json(|b, buf, _| b.scan(buf, 3, 5, 0));
        assert_eq!(v["Limit"], 1);
        assert_eq!(v["ExpressionAttributeValues"][":s"]["S"], "5");

        let v = json(|b, buf, r| b.batch_write(buf, 90, 100, r));
        let items = v["RequestItems"]["t\"x"].as_array().unwrap();
        assert_eq!(items.len(), 25);
        let mut pks: Vec<&str> = items
            .iter()
            .map(|i| i["PutRequest"]["Item"]["pk"]["S"].as_str().unwrap())
            .collect();
        pks.sort_unstable();
        pks.dedup();
        assert_eq!(pks.len(), 25, "distinct keys");

        let v = json(|b, buf, r| b.batch_write_range(buf, 18, 4, 20, r));
        let items = v["RequestItems"]["t\"x"].as_array().unwrap();
        let keys: Vec<(String, String)> = items
            .iter()
            .map(|i| {
                let it = &i["PutRequest"]["Item"];
                (
                    it["pk"]["S"].as_str().unwrap().into(),
                    it["sk"]["S"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(keys[0], ("user0".into(), "18".into()));
        assert_eq!(keys[2], ("user1".into(), "0".into()));

        let v = json(|b, buf, r| b.transact_write(buf, 0, 10, r));
        assert_eq!(v["TransactItems"].as_array().unwrap().len(), 4);

        let v = json(|b, buf, _| b.create_table(buf));
        assert_eq!(v["BillingMode"], "PAY_PER_REQUEST");
        let v = json(|b, buf, _| b.describe_table(buf));
        assert_eq!(v["TableName"], "t\"x");
    }

    #[test]
    fn mixes_follow_their_proportions() {
        let mut rng = Rng::new(9);
        let mut updates = 0;
        for _ in 0..10_000 {
            if Workload::B.pick(&mut rng) == OpKind::Update {
                updates += 1;
            }
        }
        assert!((300..700).contains(&updates), "{updates}");
        assert!((0..1000).all(|_| Workload::C.pick(&mut rng) == OpKind::Get));
    }
}
