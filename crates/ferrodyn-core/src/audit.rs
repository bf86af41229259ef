//! The audit log: one tamper-evident record per item change, schema change, failed request and
//! (optionally) read, in the `audit` keyspace.
//!
//! Owns the `audit` keyspace. Keys are 8-byte big-endian numbers: `0` is the *anchor* (where
//! the retained chain starts, see below), every other key is a record's sequence number
//! (1, 2, 3, ... without gaps).
//!
//! Record encoding (format 1): the *content*, then a fixed 80-byte *tail*:
//!
//! ```text
//! content: 1 (format byte)
//!          str principal, str principal ARN, str source, str operation, str request id,
//!          str outcome, opt-str table, opt-blob key, opt-blob old image, opt-blob new image
//! tail:    seq (u64 BE), time (UTC ms, u64 BE), prev_hash (32 bytes), hash (32 bytes)
//! ```
//!
//! `str`/`blob` are a u32 big-endian length and the bytes; `opt-` ones use length `u32::MAX`
//! for "absent". Key and images are stored items (`itemcodec`). `hash` is SHA-256 of every byte
//! before it (content, seq, time and prev_hash), and `prev_hash` is the previous record's
//! `hash` (32 zero bytes before the first record), so the records form a hash chain. Content
//! comes first so that it is hashed while the record is staged, outside the audit lock; under
//! the lock only the 48 bytes of the tail are fed to the hasher.
//!
//! Anchor encoding (format 1): `1`, the first retained seq (u64 BE), the hash that record's
//! `prev_hash` must equal (32 bytes). Retention deletes the oldest records and rewrites the
//! anchor in the same batch, so verification still starts from a known link.
//!
//! Invariants:
//! - an audit record is staged into the same storage batch as the change it describes (item
//!   changes in `write::stage_item_change`, catalog and TTL settings in their batch), so after
//!   any crash there is no change without its record and no record without its change;
//! - commit order equals sequence order: sequence numbers and hashes are assigned and the batch
//!   is committed (the non-durable part) under one mutex ([`AuditLog::head`]); the chain head
//!   advances only when that commit succeeded. Waiting for durability happens after the lock is
//!   released. Because commits are ordered and every batch is atomic, any reader sees a gapless
//!   prefix of the chain;
//! - when auditing is disabled nothing of this runs: no lock, no record, no decoding of old
//!   items (`write::derives_from_old`).

use std::cell::RefCell;
use std::ops::Bound;
use std::time::Duration;

use ferrodyn_model::{Error, Item};
use ferrodyn_storage::{CommitTicket, Durability, Storage, Transaction, WriteBatch};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::{itemcodec, storage_err, Engine};

/// Keyspace of the audit log.
pub(crate) const AUDIT: &str = "audit";
/// Key of the anchor (records start at 1).
const ANCHOR_KEY: [u8; 8] = [0; 8];
const RECORD_V1: u8 = 1;
const ANCHOR_V1: u8 = 1;
/// seq, time, prev_hash, hash.
const TAIL_LEN: usize = 8 + 8 + 32 + 32;
const ANCHOR_LEN: usize = 1 + 8 + 32;
/// Records deleted per retention batch.
const TRIM_CHUNK: usize = 10_000;
/// Records one [`Engine::audit_records`] call examines at most before it returns a cursor.
const QUERY_SCAN_LIMIT: usize = 100_000;
/// Outcome of a request that succeeded.
pub const SUCCESS: &str = "success";
const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Audit settings of the engine (`EngineConfig::audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Records writes, schema changes and failures; off by default.
    pub enabled: bool,
    /// Also records reads ([`Engine::audit_read`]).
    pub reads: bool,
    /// Records older than this are deleted by the background worker.
    pub retention: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: false,
            reads: false,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// Who made a request, as the server knows it; see [`Engine::with_audit_context`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    /// Access key name, e.g. `reporting`, or `anonymous`.
    pub principal: String,
    pub principal_arn: String,
    /// Client address, `ip:port`.
    pub source: String,
    pub request_id: String,
    /// The API operation, e.g. `PutItem`.
    pub operation: String,
}

/// One audit record, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: u64,
    /// UTC milliseconds since the epoch.
    pub time_ms: u64,
    pub principal: String,
    pub principal_arn: String,
    pub source: String,
    pub operation: String,
    /// Absent for requests that name no table (e.g. a failed ListTables).
    pub table: Option<String>,
    /// The item's key attributes (empty where the record concerns no item).
    pub key: Item,
    /// `success`, or the error type of a failed request.
    pub outcome: String,
    pub request_id: String,
    pub old_image: Option<Item>,
    pub new_image: Option<Item>,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// Which records [`Engine::audit_records`] returns (every given criterion must hold).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub table: Option<String>,
    /// Key attributes, compared with the record's key as a whole.
    pub key: Option<Item>,
    pub principal: Option<String>,
    /// Records at or after this time (UTC ms).
    pub since_ms: Option<u64>,
    /// Records at or before this time (UTC ms).
    pub until_ms: Option<u64>,
}

/// What [`Engine::audit_verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerifyReport {
    /// Records checked (up to and including a broken one).
    pub checked: u64,
    /// First retained sequence number (from the anchor; 1 when nothing was ever trimmed).
    pub first_seq: u64,
    /// Last record present (`None`: none).
    pub last_seq: Option<u64>,
    /// Hash of the last record (or the anchor's when every record was trimmed; zeros if none):
    /// noting it elsewhere lets a later check detect a rewritten or truncated chain.
    pub head_hash: Hash,
    /// The first broken link, if any.
    pub broken: Option<AuditBreak>,
}

/// The first record at which the chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    pub seq: u64,
    pub reason: AuditBreakReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditBreakReason {
    /// The record's hash does not match its contents (the record was altered), or, for the
    /// last record, the hash the engine gave the record it appended last (it was replaced).
    HashMismatch,
    /// The record's prev_hash is not the previous record's hash (a record before it was
    /// replaced, or this one was moved).
    PrevHashMismatch,
    /// Records are missing: `seq` was found where `expected` should have been.
    Gap { expected: u64 },
    /// The stored record is not a record (or is stored under the wrong sequence number).
    Undecodable(String),
    /// The engine has appended up to `expected_last`, but the chain ends at `seq`.
    Truncated { expected_last: u64 },
}

impl std::fmt::Display for AuditBreakReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditBreakReason::HashMismatch => f.write_str("hash mismatch"),
            AuditBreakReason::PrevHashMismatch => f.write_str("prev_hash mismatch"),
            AuditBreakReason::Gap { expected } => {
                write!(f, "gap in sequence: expected {expected}")
            }
            AuditBreakReason::Undecodable(why) => write!(f, "undecodable: {why}"),
            AuditBreakReason::Truncated { expected_last } => {
                write!(
                    f,
                    "records missing at the end: expected up to {expected_last}"
                )
            }
        }
    }
}

/// Lower-case hex of a hash.
pub fn to_hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- request context ------------------------------------------------------------------------

thread_local! {
    /// The request whose engine call this thread runs (see `Engine::with_audit_context`).
    static CONTEXT: RefCell<Option<AuditContext>> = const { RefCell::new(None) };
}

/// Ends the context even if the closure panics.
struct ContextGuard;

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.borrow_mut().take());
    }
}

/// The principal of writes made outside any request (e.g. by an embedding program).
const SYSTEM_PRINCIPAL: &str = "system";

/// The context the TTL sweeper's deletions are recorded with.
pub(crate) fn ttl_context() -> AuditContext {
    AuditContext {
        principal: "ttl".into(),
        operation: "TTL".into(),
        ..AuditContext::default()
    }
}

// ---- the chain --------------------------------------------------------------------------------

/// The last record of the chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Head {
    seq: u64,
    hash: Hash,
    /// Time of the last record: record times never go backwards along the chain.
    time_ms: u64,
}

/// The engine's audit state (present only when auditing is enabled).
pub(crate) struct AuditLog {
    /// The chain head. Held across assigning sequence numbers, hashing the tails, and committing
    /// the batch; never across a durability wait.
    head: Mutex<Head>,
    /// The storage generation the head was read from (changed under `head`): a reopen of the
    /// store may have lost the last records, so the head is read again from the new store.
    generation: std::sync::atomic::AtomicU64,
    reads: bool,
    retention: Duration,
    /// One retention pass at a time.
    trim: Mutex<()>,
}

/// An audit record staged for a batch, awaiting its sequence number: the encoded content and
/// the hasher that has already consumed it.
#[derive(Clone)]
pub(crate) struct Pending {
    content: Vec<u8>,
    hasher: Sha256,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_blob(out, Some(s.as_bytes()));
}

fn put_blob(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            // A u32 length: strings and items are far below 4 GiB (items are at most 400 KB).
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
}

/// What a record says besides who asked (that comes from the context).
pub(crate) struct Fields<'a> {
    pub table: Option<&'a str>,
    /// Encoded key attributes.
    pub key: Option<&'a [u8]>,
    pub outcome: &'a str,
    pub old: Option<&'a [u8]>,
    pub new: Option<&'a [u8]>,
}

impl Pending {
    /// Encodes and hashes a record's content (outside the audit lock).
    pub(crate) fn new(ctx: &AuditContext, fields: &Fields<'_>) -> Pending {
        Pending::build(
            [
                ctx.principal.as_str(),
                &ctx.principal_arn,
                &ctx.source,
                &ctx.operation,
                &ctx.request_id,
            ],
            fields,
        )
    }

    /// Like [`Pending::new`], with the context of the request this thread runs (see
    /// [`Engine::with_audit_context`]), or the system principal and `operation` outside one.
    pub(crate) fn in_context(operation: &str, fields: &Fields<'_>) -> Pending {
        CONTEXT.with(|c| match &*c.borrow() {
            Some(ctx) => Pending::new(ctx, fields),
            None => Pending::build([SYSTEM_PRINCIPAL, "", "", operation, ""], fields),
        })
    }

    fn build(who: [&str; 5], f: &Fields<'_>) -> Pending {
        let blob = |b: Option<&[u8]>| 4 + b.map_or(0, <[u8]>::len);
        let len = 1
            + who.iter().map(|s| 4 + s.len()).sum::<usize>()
            + 4
            + f.outcome.len()
            + blob(f.table.map(str::as_bytes))
            + blob(f.key)
            + blob(f.old)
            + blob(f.new);
        // Room for the tail, so that sealing under the lock does not reallocate.
        let mut content = Vec::with_capacity(len + TAIL_LEN);
        content.push(RECORD_V1);
        for s in who {
            put_str(&mut content, s);
        }
        put_str(&mut content, f.outcome);
        put_blob(&mut content, f.table.map(str::as_bytes));
        put_blob(&mut content, f.key);
        put_blob(&mut content, f.old);
        put_blob(&mut content, f.new);
        let mut hasher = Sha256::new();
        hasher.update(&content);
        Pending { content, hasher }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// The tail of a stored record: (seq, time, prev_hash, hash).
fn tail(value: &[u8]) -> Option<(u64, u64, Hash, Hash)> {
    if value.first() != Some(&RECORD_V1) || value.len() < 1 + TAIL_LEN {
        return None;
    }
    let t = &value[value.len() - TAIL_LEN..];
    Some((
        u64::from_be_bytes(t[0..8].try_into().ok()?),
        u64::from_be_bytes(t[8..16].try_into().ok()?),
        t[16..48].try_into().ok()?,
        t[48..80].try_into().ok()?,
    ))
}

fn encode_anchor(first_seq: u64, prev_hash: &Hash) -> Vec<u8> {
    let mut v = Vec::with_capacity(ANCHOR_LEN);
    v.push(ANCHOR_V1);
    v.extend_from_slice(&first_seq.to_be_bytes());
    v.extend_from_slice(prev_hash);
    v
}

pub(crate) fn decode_anchor(v: &[u8]) -> Option<(u64, Hash)> {
    if v.len() != ANCHOR_LEN || v[0] != ANCHOR_V1 {
        return None;
    }
    Some((
        u64::from_be_bytes(v[1..9].try_into().ok()?),
        v[9..41].try_into().ok()?,
    ))
}

/// Checks one stored record against the link it must continue (`expected` seq, `prev` hash).
/// Returns its (time, hash) when it verifies.
fn check_record(
    key: &[u8],
    value: &[u8],
    expected: u64,
    prev: &Hash,
) -> Result<(u64, Hash), AuditBreak> {
    let Some(seq) = seq_of_key(key) else {
        return Err(AuditBreak {
            seq: expected,
            reason: AuditBreakReason::Undecodable(format!("key of {} bytes", key.len())),
        });
    };
    let brk = |reason| Err(AuditBreak { seq, reason });
    if seq != expected {
        return brk(AuditBreakReason::Gap { expected });
    }
    let Some((stored_seq, time, prev_hash, hash)) = tail(value) else {
        return brk(AuditBreakReason::Undecodable(
            "not a format-1 record".into(),
        ));
    };
    if stored_seq != seq {
        return brk(AuditBreakReason::Undecodable(format!(
            "record {stored_seq} stored under {seq}"
        )));
    }
    let computed: Hash = Sha256::digest(&value[..value.len() - 32]).into();
    if computed != hash {
        return brk(AuditBreakReason::HashMismatch);
    }
    if prev_hash != *prev {
        return brk(AuditBreakReason::PrevHashMismatch);
    }
    Ok((time, hash))
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn blob(&mut self) -> Result<Option<&'a [u8]>, String> {
        let len = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or("truncated length")?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| "bad length")?);
        self.pos += 4;
        if len == u32::MAX {
            return Ok(None);
        }
        let end = self.pos + len as usize;
        let b = self.b.get(self.pos..end).ok_or("truncated field")?;
        self.pos = end;
        Ok(Some(b))
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let b = self.blob()?.ok_or("missing string")?;
        std::str::from_utf8(b).map_err(|_| "string is not UTF-8".to_string())
    }

    fn item(&mut self) -> Result<Option<Item>, String> {
        self.blob()?
            .map(|b| itemcodec::decode_item(b).map_err(|e| e.to_string()))
            .transpose()
    }
}

/// Decodes a stored record (key: its sequence number).
pub(crate) fn decode_record(key: &[u8], value: &[u8]) -> Result<AuditRecord, String> {
    let seq = seq_of_key(key).ok_or("bad key")?;
    let (stored_seq, time_ms, prev_hash, hash) = tail(value).ok_or("not a format-1 record")?;
    if stored_seq != seq {
        return Err(format!("record {stored_seq} stored under {seq}"));
    }
    let mut r = Reader {
        b: &value[1..value.len() - TAIL_LEN],
        pos: 0,
    };
    let principal = r.str()?.to_string();
    let principal_arn = r.str()?.to_string();
    let source = r.str()?.to_string();
    let operation = r.str()?.to_string();
    let request_id = r.str()?.to_string();
    let outcome = r.str()?.to_string();
    let table = r
        .blob()?
        .map(|b| String::from_utf8(b.to_vec()).map_err(|_| "table name is not UTF-8"))
        .transpose()?;
    let key = r.item()?.unwrap_or_default();
    let old_image = r.item()?;
    let new_image = r.item()?;
    if r.pos != r.b.len() {
        return Err("trailing bytes".into());
    }
    Ok(AuditRecord {
        seq,
        time_ms,
        principal,
        principal_arn,
        source,
        operation,
        table,
        key,
        outcome,
        request_id,
        old_image,
        new_image,
        prev_hash,
        hash,
    })
}

/// Keyspace of the chain head on shared storage: one row (`HEAD_KEY`), seq u64 BE ‖ hash ‖
/// time u64 BE, locked and rewritten by every transaction that appends records, so the chain
/// is one sequence across nodes. It lives apart from `audit` so scans of records never meet it.
const AUDIT_HEAD: &str = "audit-head";
const HEAD_KEY: &[u8] = b"head";

impl Head {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(48);
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(&self.hash);
        v.extend_from_slice(&self.time_ms.to_be_bytes());
        v
    }

    pub(crate) fn decode(raw: &[u8]) -> Option<Head> {
        Some(Head {
            seq: u64::from_be_bytes(raw.get(..8)?.try_into().ok()?),
            hash: raw.get(8..40)?.try_into().ok()?,
            time_ms: u64::from_be_bytes(raw.get(40..48)?.try_into().ok()?),
        })
    }
}

/// The chain head as the stored records say: the last record, or the anchor when retention
/// removed every record.
fn stored_head(storage: &dyn Storage) -> Result<Head, Error> {
    let mut last = None;
    storage
        .scan(
            AUDIT,
            Bound::Unbounded,
            Bound::Unbounded,
            true,
            &mut |k, v| {
                last = Some((k.to_vec(), v.to_vec()));
                false
            },
        )
        .map_err(storage_err)?;
    let head = match last {
        None => Head::default(),
        Some((k, v)) if k == ANCHOR_KEY => {
            let (first, prev) = decode_anchor(&v)
                .ok_or_else(|| Error::internal("audit log: undecodable anchor"))?;
            Head {
                seq: first.saturating_sub(1),
                hash: prev,
                time_ms: 0,
            }
        }
        Some((k, v)) => {
            let seq = seq_of_key(&k)
                .ok_or_else(|| Error::internal("audit log: a key is not a sequence number"))?;
            match tail(&v) {
                Some((_, time_ms, _, hash)) => Head { seq, hash, time_ms },
                None => {
                    // Continue after it all the same; verification reports the record.
                    tracing::warn!(seq, "the last audit record is undecodable");
                    Head {
                        seq,
                        hash: Sha256::digest(&v).into(),
                        time_ms: 0,
                    }
                }
            }
        }
    };
    Ok(head)
}

impl AuditLog {
    /// Opens the log (creating its keyspace) and recovers the chain head from its last record,
    /// or from the anchor when retention removed every record.
    pub(crate) fn open(
        storage: &dyn Storage,
        config: &AuditConfig,
    ) -> Result<Option<AuditLog>, Error> {
        if !config.enabled {
            return Ok(None);
        }
        storage.create_keyspace(AUDIT).map_err(storage_err)?;
        if storage.shared() {
            // The head is a row there (`Engine::seal_shared`), read by each writer.
            storage.create_keyspace(AUDIT_HEAD).map_err(storage_err)?;
        }
        let generation = storage.generation();
        let head = stored_head(storage)?;
        Ok(Some(AuditLog {
            head: Mutex::new(head),
            generation: std::sync::atomic::AtomicU64::new(generation),
            reads: config.reads,
            retention: config.retention,
            trim: Mutex::new(()),
        }))
    }

    /// Assigns the next sequence numbers to `pending`, completes their hashes and stages them
    /// into `batch`. Returns the head the chain has once `batch` is committed. Call with
    /// [`AuditLog::head`] locked and keep it locked until the commit.
    fn seal(head: Head, pending: Vec<Pending>, batch: &mut WriteBatch) -> Head {
        let time_ms = now_ms().max(head.time_ms);
        let mut head = head;
        for p in pending {
            let seq = head.seq + 1;
            let Pending {
                mut content,
                mut hasher,
            } = p;
            let start = content.len();
            content.extend_from_slice(&seq.to_be_bytes());
            content.extend_from_slice(&time_ms.to_be_bytes());
            content.extend_from_slice(&head.hash);
            hasher.update(&content[start..]);
            let hash: Hash = hasher.finalize().into();
            content.extend_from_slice(&hash);
            batch.put(AUDIT, seq_key(seq), content);
            head = Head { seq, hash, time_ms };
        }
        head
    }
}

impl Engine {
    /// Runs `f` (one synchronous engine call of a request) with `ctx` as the author of every
    /// change it records. Scopes are per thread and do not nest; the scope ends when `f`
    /// returns or panics. Changes made outside any scope are recorded with the system principal
    /// (TTL deletions with principal `ttl`, operation `TTL`).
    pub fn with_audit_context<R>(&self, ctx: &AuditContext, f: impl FnOnce() -> R) -> R {
        if self.audit.is_none() {
            return f();
        }
        let nested = CONTEXT.with(|c| c.borrow_mut().replace(ctx.clone()).is_some());
        debug_assert!(!nested, "audit context scopes do not nest");
        let _guard = ContextGuard;
        f()
    }

    /// True when the engine keeps an audit log.
    pub fn audits(&self) -> bool {
        self.audit.is_some()
    }

    /// Commits `batch` with the audit records staged for it: under the audit lock, the records
    /// get the next sequence numbers and their hashes, and the batch is committed (made
    /// visible, not waited for: the caller waits for the returned ticket outside the lock).
    /// The chain head moves only if the commit succeeds. Without records, just commits.
    pub(crate) fn commit_batch(
        &self,
        mut batch: WriteBatch,
        audit: Vec<Pending>,
    ) -> Result<CommitTicket, Error> {
        if self.shared {
            // A self-contained transaction: run again as a whole if it loses a conflict.
            self.retrying((batch, audit), |engine, (mut batch, audit)| {
                let mut txn = engine.storage.begin().map_err(crate::locks::txn_err)?;
                if engine.audit.is_some() && !audit.is_empty() {
                    engine.seal_shared(txn.as_mut(), audit, &mut batch)?;
                }
                txn.commit(batch).map_err(crate::locks::txn_err)
            })?;
            return Ok(CommitTicket::DURABLE);
        }
        let log = match &self.audit {
            Some(log) if !audit.is_empty() => log,
            _ => return self.commit_only(batch),
        };
        let mut head = log.head.lock();
        let now = self.storage.generation();
        if log.generation.load(std::sync::atomic::Ordering::Relaxed) != now {
            *head = stored_head(&*self.storage)?;
            log.generation
                .store(now, std::sync::atomic::Ordering::Relaxed);
        }
        if batch.generation().is_none() {
            batch.staged_at(now);
        }
        let next = AuditLog::seal(*head, audit, &mut batch);
        let ticket = self.commit_only(batch)?;
        *head = next;
        Ok(ticket)
    }

    /// Seals `pending` onto the chain inside `txn` (shared storage): locks the head row (after
    /// every other lock of the transaction), numbers and hashes the records from it, and stages
    /// them and the new head into `batch`. Commit order is then sequence order across nodes.
    pub(crate) fn seal_shared(
        &self,
        txn: &mut dyn Transaction,
        pending: Vec<Pending>,
        batch: &mut WriteBatch,
    ) -> Result<(), Error> {
        let row = txn
            .lock(&[(AUDIT_HEAD, HEAD_KEY)])
            .map_err(crate::locks::txn_err)?
            .pop()
            .flatten();
        let head = match row.as_deref().and_then(Head::decode) {
            Some(h) => h,
            // The first record on this storage: continue the stored chain.
            None => stored_head(&*self.storage)?,
        };
        let next = AuditLog::seal(head, pending, batch);
        batch.put(AUDIT_HEAD, HEAD_KEY, next.encode());
        Ok(())
    }

    /// Makes `batch` visible: a commit whose ticket the caller waits for (`Durability::Sync`),
    /// or a buffered write.
    fn commit_only(&self, batch: WriteBatch) -> Result<CommitTicket, Error> {
        match self.config.durability {
            Durability::Sync => self.storage.commit(batch).map_err(storage_err),
            d => {
                self.storage.write(batch, d).map_err(storage_err)?;
                Ok(CommitTicket::DURABLE)
            }
        }
    }

    /// Writes a control-plane batch (catalog, TTL settings) with the engine's durability and,
    /// when auditing, with the record of `operation` on `table` in the same batch.
    pub(crate) fn write_control(
        &self,
        batch: WriteBatch,
        operation: &str,
        table: &str,
    ) -> Result<(), Error> {
        if self.audit.is_none() {
            return self
                .storage
                .write(batch, self.config.durability)
                .map_err(storage_err);
        }
        let record = Pending::in_context(
            operation,
            &Fields {
                table: Some(table),
                key: None,
                outcome: SUCCESS,
                old: None,
                new: None,
            },
        );
        let ticket = self.commit_batch(batch, vec![record])?;
        self.storage.wait_durable(ticket).map_err(storage_err)
    }

    /// Appends the record of a failed request (outcome: `error_type`, e.g.
    /// `ConditionalCheckFailedException`). Nothing when auditing is disabled. `key` may be the
    /// request's Key or its whole Item: of an existing table, only the key attributes are kept.
    ///
    /// Returns once the record is committed; it is durable when the returned ticket is (await it
    /// with [`Engine::durable`] if the answer must wait for it), and at the latest with the
    /// next durable write.
    pub fn audit_failure(
        &self,
        ctx: &AuditContext,
        table: Option<&str>,
        key: Option<&Item>,
        error_type: &str,
    ) -> Result<CommitTicket, Error> {
        if self.audit.is_none() {
            return Ok(CommitTicket::DURABLE);
        }
        self.append_standalone(ctx, table, key, error_type)
    }

    /// Appends the record of a read (outcome `success`) when auditing of reads is enabled
    /// (`AuditConfig::reads`). Durability as for [`Engine::audit_failure`].
    pub fn audit_read(
        &self,
        ctx: &AuditContext,
        table: Option<&str>,
        key: Option<&Item>,
    ) -> Result<CommitTicket, Error> {
        if !self.audit.as_ref().is_some_and(|l| l.reads) {
            return Ok(CommitTicket::DURABLE);
        }
        self.append_standalone(ctx, table, key, SUCCESS)
    }

    fn append_standalone(
        &self,
        ctx: &AuditContext,
        table: Option<&str>,
        key: Option<&Item>,
        outcome: &str,
    ) -> Result<CommitTicket, Error> {
        // Only the key attributes, when the table is known (the caller may pass a whole item).
        let known = table.and_then(|t| self.tables.read().get(t).cloned());
        let key = key.map(|k| match &known {
            Some(t) => itemcodec::encode_item(&crate::keys::key_map(&t.def, k)),
            None => itemcodec::encode_item(k),
        });
        let record = Pending::new(
            ctx,
            &Fields {
                table,
                key: key.as_deref(),
                outcome,
                old: None,
                new: None,
            },
        );
        self.commit_batch(WriteBatch::default(), vec![record])
    }

    /// Records matching `filter`, in sequence order, after `after_seq` (exclusive), at most
    /// `limit`. The cursor is `Some(seq)` when more records may follow: pass it as `after_seq`
    /// to continue. One call examines at most 100 000 records, so a selective filter may
    /// return fewer than `limit` records (even none) together with a cursor.
    pub fn audit_records(
        &self,
        filter: &AuditFilter,
        limit: usize,
        after_seq: Option<u64>,
    ) -> Result<(Vec<AuditRecord>, Option<u64>), Error> {
        if limit == 0 || !self.storage.keyspace_exists(AUDIT) {
            return Ok((Vec::new(), after_seq));
        }
        let start = seq_key(after_seq.unwrap_or(0).saturating_add(1).max(1));
        let mut out = Vec::new();
        let mut examined = 0usize;
        let mut last_seen = None;
        let mut stopped = false;
        let mut failure = None;
        self.storage
            .scan(
                AUDIT,
                Bound::Included(&start[..]),
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    if examined >= QUERY_SCAN_LIMIT || out.len() >= limit {
                        stopped = true;
                        return false;
                    }
                    examined += 1;
                    let rec = match decode_record(k, v) {
                        Ok(r) => r,
                        Err(e) => {
                            failure = Some(format!(
                                "audit record {:?}: {e}",
                                seq_of_key(k).unwrap_or(0)
                            ));
                            return false;
                        }
                    };
                    last_seen = Some(rec.seq);
                    // Record times never decrease along the chain.
                    if filter.until_ms.is_some_and(|u| rec.time_ms > u) {
                        return false;
                    }
                    if matches(filter, &rec) {
                        out.push(rec);
                    }
                    true
                },
            )
            .map_err(storage_err)?;
        if let Some(e) = failure {
            return Err(Error::internal(e));
        }
        Ok((out, if stopped { last_seen } else { None }))
    }

    /// Checks the whole retained chain: every record's hash, every link, no gaps, and that it
    /// ends where the engine's chain head is. Reports the first broken record.
    pub fn audit_verify(&self) -> Result<AuditVerifyReport, Error> {
        // The head and the snapshot are taken together: commits happen under the same lock, so
        // the snapshot holds exactly the records up to the head.
        let (head, snapshot) = match &self.audit {
            Some(_) if self.shared => {
                // The head row is committed with the records it covers.
                let snapshot = self.storage.snapshot();
                let head = snapshot
                    .get(AUDIT_HEAD, HEAD_KEY)
                    .map_err(storage_err)?
                    .as_deref()
                    .and_then(Head::decode);
                (head, snapshot)
            }
            Some(log) => {
                let head = log.head.lock();
                (Some(*head), self.storage.snapshot())
            }
            None => (None, self.storage.snapshot()),
        };
        let mut report = AuditVerifyReport {
            checked: 0,
            first_seq: 1,
            last_seq: None,
            head_hash: [0; 32],
            broken: None,
        };
        if !self.storage.keyspace_exists(AUDIT) {
            return Ok(report);
        }
        if let Some(raw) = snapshot.get(AUDIT, &ANCHOR_KEY).map_err(storage_err)? {
            match decode_anchor(&raw) {
                Some((first, prev)) => {
                    report.first_seq = first;
                    report.head_hash = prev;
                }
                None => {
                    report.broken = Some(AuditBreak {
                        seq: 0,
                        reason: AuditBreakReason::Undecodable("anchor".into()),
                    });
                    return Ok(report);
                }
            }
        }
        let mut expected = report.first_seq;
        let mut prev = report.head_hash;
        let mut broken = None;
        snapshot
            .scan(
                AUDIT,
                Bound::Excluded(&ANCHOR_KEY[..]),
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    report.checked += 1;
                    match check_record(k, v, expected, &prev) {
                        Ok((_, hash)) => {
                            report.last_seq = Some(expected);
                            prev = hash;
                            expected += 1;
                            true
                        }
                        Err(b) => {
                            broken = Some(b);
                            false
                        }
                    }
                },
            )
            .map_err(storage_err)?;
        report.head_hash = prev;
        if broken.is_none() {
            if let Some(head) = head {
                let last = expected - 1;
                if head.seq != last {
                    broken = Some(AuditBreak {
                        seq: last,
                        reason: AuditBreakReason::Truncated {
                            expected_last: head.seq,
                        },
                    });
                } else if head.hash != prev {
                    // The last record was replaced by one with a valid hash of its own.
                    broken = Some(AuditBreak {
                        seq: last,
                        reason: AuditBreakReason::HashMismatch,
                    });
                }
            }
        }
        report.broken = broken;
        Ok(report)
    }

    /// Deletes records older than the retention period (background upkeep), oldest first, and
    /// moves the anchor past them in the same batch. Stops before a record that does not verify,
    /// so retention never erases the evidence of tampering. Returns the number deleted.
    pub fn trim_audit(&self) -> Result<u64, Error> {
        let Some(log) = &self.audit else {
            return Ok(0);
        };
        let retention = u64::try_from(log.retention.as_millis()).unwrap_or(u64::MAX);
        self.trim_audit_before(now_ms().saturating_sub(retention))
    }

    /// Deletes the records older than `cutoff` (UTC ms), as [`Engine::trim_audit`] does.
    pub(crate) fn trim_audit_before(&self, cutoff: u64) -> Result<u64, Error> {
        let Some(log) = &self.audit else {
            return Ok(0);
        };
        let _one = log.trim.lock();
        let (mut expected, mut prev) =
            match self.storage.get(AUDIT, &ANCHOR_KEY).map_err(storage_err)? {
                Some(raw) => decode_anchor(&raw)
                    .ok_or_else(|| Error::internal("audit log: undecodable anchor"))?,
                None => (1, [0; 32]),
            };
        let mut deleted = 0;
        loop {
            let mut doomed = Vec::new();
            let mut broken = None;
            let (mut next, mut link) = (expected, prev);
            self.storage
                .scan(
                    AUDIT,
                    Bound::Excluded(&ANCHOR_KEY[..]),
                    Bound::Unbounded,
                    false,
                    &mut |k, v| match check_record(k, v, next, &link) {
                        Ok((time, hash)) if time < cutoff => {
                            doomed.push(next);
                            link = hash;
                            next += 1;
                            doomed.len() < TRIM_CHUNK
                        }
                        Ok(_) => false,
                        Err(b) => {
                            broken = Some(b);
                            false
                        }
                    },
                )
                .map_err(storage_err)?;
            if let Some(b) = broken {
                tracing::warn!(seq = b.seq, reason = %b.reason, "audit log does not verify; retention stops before it");
            }
            if doomed.is_empty() {
                return Ok(deleted);
            }
            let n = doomed.len();
            let mut batch = WriteBatch::with_capacity(n + 1);
            for seq in doomed {
                batch.delete(AUDIT, seq_key(seq));
            }
            batch.put(AUDIT, ANCHOR_KEY, encode_anchor(next, &link));
            self.storage
                .write(batch, self.config.durability)
                .map_err(storage_err)?;
            deleted += n as u64;
            (expected, prev) = (next, link);
            if n < TRIM_CHUNK {
                return Ok(deleted);
            }
        }
    }
}

fn matches(filter: &AuditFilter, rec: &AuditRecord) -> bool {
    filter
        .table
        .as_ref()
        .is_none_or(|t| rec.table.as_ref() == Some(t))
        && filter
            .principal
            .as_ref()
            .is_none_or(|p| rec.principal == *p)
        && filter.since_ms.is_none_or(|s| rec.time_ms >= s)
        && filter.until_ms.is_none_or(|u| rec.time_ms <= u)
        && filter.key.as_ref().is_none_or(|k| rec.key == *k)
}

#[cfg(test)]
mod tests;
