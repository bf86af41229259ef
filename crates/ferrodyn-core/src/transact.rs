//! Multi-item transactions: TransactWriteItems and TransactGetItems.
//!
//! Owns: validation of transactional requests in the order DynamoDB reports problems,
//! serializable execution, cancellation reasons, and ClientRequestToken idempotency.
//!
//! Invariants:
//! - A write transaction is one atomic storage batch. Every item change goes through
//!   [`crate::write::stage_item_change`]; nothing is written when any action fails.
//! - Isolation: the lock stripes of all the items a transaction touches are taken at once (in
//!   stripe order, see [`Engine::lock_items`]) before any of them is read, and held until the
//!   batch is committed; the answer waits until it is durable (see `write.rs`: whoever reads the
//!   change later commits after it). Single-item writes take the same stripes, so transactions are serializable
//!   against each other and against single-item writes; a TransactGetItems holding its items'
//!   stripes sees every transaction entirely or not at all.
//! - Errors are reported in three tiers, as DynamoDB does: request-level problems (missing
//!   table, malformed expressions, placeholder misuse, duplicate targets, size limit) fail the
//!   whole request with a plain error; per-action validation problems (key schema, item size,
//!   updating a key attribute) cancel the transaction with one `ValidationError` reason for the
//!   first offending action only, before any condition is evaluated; conditions and update
//!   application produce one reason per action, in request order.
//! - A ClientRequestToken is claimed before the items are locked. A second request with the
//!   same token waits while the first runs; once the first has succeeded, identical requests
//!   within 10 minutes are answered without being applied again, different ones are rejected.
//!   Failed transactions release their token.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrodyn_expr::{CondKind, Condition, Path, Resolver, Update};
use ferrodyn_model::error::CancellationReason;
use ferrodyn_model::size::item_size;
use ferrodyn_model::{Error, Item};
use ferrodyn_storage::CommitTicket;
use parking_lot::Mutex;

use crate::capacity::{
    read_units, write_units, ConsumedCapacity, IndexUnits, ReturnConsumedCapacity, UnitKind,
};
use crate::items::{check_size, ExprParams, Usage, MAX_ITEM_BYTES};
use crate::keys::{key_of_item, key_of_key_param};
use crate::throttle::Access;
use crate::write::{stage_item_change, StatDelta};
use crate::{Engine, Table};

/// Largest number of actions in one transaction (also enforced by shape validation).
pub const MAX_ACTIONS: usize = 100;
/// Largest aggregate size of the items and keys a write transaction carries.
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// How long a successful transaction's ClientRequestToken is remembered.
pub const TOKEN_TTL: Duration = Duration::from_secs(600);

const CONDITION_FAILED: &str = "The conditional request failed";
const DUPLICATE_TARGET: &str = "Transaction request cannot include multiple operations on one item";

/// One action of a TransactWriteItems request.
#[derive(Debug, Clone)]
pub enum WriteAction {
    Put {
        item: Item,
        condition_expression: Option<String>,
    },
    Update {
        key: Item,
        update_expression: String,
        condition_expression: Option<String>,
    },
    Delete {
        key: Item,
        condition_expression: Option<String>,
    },
    ConditionCheck {
        key: Item,
        condition_expression: String,
    },
}

/// One element of `TransactItems`, with the members every action kind shares.
#[derive(Debug, Clone)]
pub struct TransactWriteItem {
    pub table: String,
    pub action: WriteAction,
    pub params: ExprParams,
    /// ReturnValuesOnConditionCheckFailure = ALL_OLD.
    pub return_old_on_condition_failure: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TransactWriteInput {
    pub items: Vec<TransactWriteItem>,
    pub client_request_token: Option<String>,
    pub return_consumed: ReturnConsumedCapacity,
    pub return_item_collection_metrics: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TransactWriteOutput {
    /// One entry per table, in order of first appearance (empty unless requested).
    pub consumed: Vec<ConsumedCapacity>,
    /// Per table with local secondary indexes: the ItemCollectionKey of each item written.
    pub item_collection_metrics: Vec<(String, Vec<Item>)>,
}

/// One `Get` of a TransactGetItems request.
#[derive(Debug, Clone, Default)]
pub struct TransactGetItem {
    pub table: String,
    pub key: Item,
    pub projection_expression: Option<String>,
    pub names: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Default)]
pub struct TransactGetInput {
    pub items: Vec<TransactGetItem>,
    pub return_consumed: ReturnConsumedCapacity,
}

#[derive(Debug, Clone, Default)]
pub struct TransactGetOutput {
    /// One entry per requested item, in request order (`None`: no such item).
    pub items: Vec<Option<Item>>,
    pub consumed: Vec<ConsumedCapacity>,
}

// ---------------------------------------------------------------------------------------------
// ClientRequestToken records
// ---------------------------------------------------------------------------------------------

/// The engine's memory of recent ClientRequestTokens (not persisted: a restart forgets them,
/// which only shortens the idempotency window).
#[derive(Default)]
pub struct TokenTable {
    state: Mutex<TokenState>,
    /// The storage generation the records were made in: a reopen of the store may have lost
    /// a recorded transaction (its ticket is never durable), so the records are forgotten
    /// and a retry runs again.
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct TokenState {
    entries: HashMap<String, TokenEntry>,
    /// Completed tokens in completion order, for expiry.
    completed: VecDeque<(Instant, String)>,
}

/// Read units per table, the answer a replay repeats.
type ReplayUnits = Vec<(String, f64)>;

struct TokenEntry {
    fingerprint: u64,
    /// Completion time, the replay answer (read units per table) and the ticket of the
    /// transaction's batch, which a replay must await too; `None` while running.
    done: Option<(Instant, ReplayUnits, CommitTicket)>,
}

enum TokenBegin<'a> {
    /// The caller runs the transaction and must complete or drop the claim.
    Run(TokenClaim<'a>),
    /// Already applied: answer with these read units per table once the ticket is durable.
    Replay(Vec<(String, f64)>, CommitTicket),
}

/// A running transaction's hold on its token. Dropping it without [`TokenClaim::complete`]
/// (failure, cancellation, panic) forgets the token, so a retry runs again.
struct TokenClaim<'a> {
    table: &'a TokenTable,
    token: String,
    completed: bool,
}

impl TokenClaim<'_> {
    fn complete(mut self, replay: Vec<(String, f64)>, ticket: CommitTicket) {
        let now = Instant::now();
        let mut st = self.table.state.lock();
        if let Some(e) = st.entries.get_mut(&self.token) {
            e.done = Some((now, replay, ticket));
        }
        st.completed.push_back((now, self.token.clone()));
        self.completed = true;
    }
}

impl Drop for TokenClaim<'_> {
    fn drop(&mut self) {
        if !self.completed {
            self.table.state.lock().entries.remove(&self.token);
        }
    }
}

impl TokenTable {
    /// Forgets every record if the storage reopened its store since they were made.
    fn sync_generation(&self, generation: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.generation.load(Relaxed) != generation {
            let mut st = self.state.lock();
            st.entries.clear();
            st.completed.clear();
            self.generation.store(generation, Relaxed);
        }
    }

    fn begin(&self, token: &str, fingerprint: u64) -> Result<TokenBegin<'_>, Error> {
        let mut st = self.state.lock();
        st.expire(Instant::now());
        match st.entries.get(token) {
            None => {
                st.entries.insert(
                    token.to_string(),
                    TokenEntry {
                        fingerprint,
                        done: None,
                    },
                );
                Ok(TokenBegin::Run(TokenClaim {
                    table: self,
                    token: token.to_string(),
                    completed: false,
                }))
            }
            Some(e) if e.fingerprint != fingerprint => Err(Error::IdempotentParameterMismatch(
                "The request uses the same ClientRequestToken as a previous, different request within the idempotency window".into(),
            )),
            Some(TokenEntry {
                done: Some((_, replay, ticket)),
                ..
            }) => Ok(TokenBegin::Replay(replay.clone(), *ticket)),
            // The same request is still running: DynamoDB refuses the second one, and the
            // client's retry finds the first one's outcome.
            Some(_) => Err(Error::TransactionInProgress(
                "The transaction with the given request token is already in progress.".into(),
            )),
        }
    }
}

/// Keyspace of ClientRequestToken records on shared storage (key: the token; value:
/// fingerprint u64 BE ‖ completion time in ms since the epoch u64 BE ‖ the replay's read units
/// per table as JSON), written in the transaction's own commit, so a record exists iff its
/// transaction was applied. Records older than [`TOKEN_TTL`] are ignored and trimmed.
pub(crate) const TOKENS: &str = "tokens";

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn token_record(fingerprint: u64, units: &[(String, f64)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&fingerprint.to_be_bytes());
    v.extend_from_slice(&epoch_ms().to_be_bytes());
    v.extend_from_slice(&serde_json::to_vec(units).unwrap_or_default());
    v
}

/// Completion time of a stored token record (`None`: unreadable).
fn token_time(record: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(record.get(8..16)?.try_into().ok()?))
}

/// What a stored token record means for a request with `fingerprint`: `Some(units)` to replay,
/// `None` when it has expired (the request runs), or IdempotentParameterMismatch.
fn replay_of(record: &[u8], fingerprint: u64) -> Result<Option<ReplayUnits>, Error> {
    let (Some(fp), Some(at)) = (
        record
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes),
        token_time(record),
    ) else {
        return Ok(None);
    };
    if epoch_ms().saturating_sub(at) >= TOKEN_TTL.as_millis() as u64 {
        return Ok(None);
    }
    if fp != fingerprint {
        return Err(Error::IdempotentParameterMismatch(
            "The request uses the same ClientRequestToken as a previous, different request within the idempotency window".into(),
        ));
    }
    Ok(Some(
        serde_json::from_slice(record.get(16..).unwrap_or_default()).unwrap_or_default(),
    ))
}

impl Engine {
    /// Deletes token records past the idempotency window (shared storage; leased upkeep).
    pub(crate) fn trim_tokens(&self) -> Result<(), Error> {
        let now = epoch_ms();
        let mut doomed = Vec::new();
        self.storage
            .scan(
                TOKENS,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
                &mut |k, v| {
                    if token_time(v)
                        .is_none_or(|at| now.saturating_sub(at) >= TOKEN_TTL.as_millis() as u64)
                    {
                        doomed.push(k.to_vec());
                    }
                    doomed.len() < 10_000
                },
            )
            .map_err(crate::storage_err)?;
        if doomed.is_empty() {
            return Ok(());
        }
        let mut batch = ferrodyn_storage::WriteBatch::default();
        for k in doomed {
            batch.delete(TOKENS, k);
        }
        self.storage
            .write(batch, self.config.durability)
            .map_err(crate::storage_err)
    }
}

impl TokenState {
    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.completed.front() {
            if now.duration_since(*at) < TOKEN_TTL {
                break;
            }
            let Some((at, token)) = self.completed.pop_front() else {
                break;
            };
            // The token may have been reused after an earlier expiry: only drop this record.
            if self
                .entries
                .get(&token)
                .and_then(|e| e.done.as_ref())
                .is_some_and(|(t, _, _)| *t == at)
            {
                self.entries.remove(&token);
            }
        }
    }
}

/// A stable digest of a request's actions, for IdempotentParameterMismatch. Member order in
/// the request JSON does not matter (items are sorted maps; placeholder maps are sorted here).
fn fingerprint(items: &[TransactWriteItem]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut put = |s: &str| {
        h.write_usize(s.len());
        h.write(s.as_bytes());
    };
    for it in items {
        put(&it.table);
        put(&format!("{:?}", it.action));
        put(if it.return_old_on_condition_failure {
            "ALL_OLD"
        } else {
            "NONE"
        });
        let mut names: Vec<_> = it.params.names.iter().flatten().collect();
        names.sort();
        put(&format!("{:?}", (it.params.names.is_some(), names)));
        let mut values: Vec<_> = it.params.values.iter().flatten().collect();
        values.sort_by(|a, b| a.0.cmp(b.0));
        put(&format!("{:?}", (it.params.values.is_some(), values)));
    }
    h.finish()
}

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

enum Change {
    Put(Item),
    Update(Update),
    Delete,
    Check,
}

/// An action after request-level validation.
struct Prepared<'a> {
    table: Arc<Table>,
    change: Change,
    condition: Option<Condition>,
    /// The Key parameter, or the Put item.
    key_source: &'a Item,
    is_put: bool,
    return_old: bool,
}

/// One action's figures for its table's activity: the table, the size of an item a check read,
/// the bytes written, the table's units and the indexes' shares.
type ActionActivity<'a> = (
    &'a Table,
    Option<usize>,
    Option<usize>,
    f64,
    Vec<IndexUnits>,
);

/// Per-table capacity totals in order of first appearance.
fn add_units(acc: &mut Vec<(String, f64)>, table: &str, units: f64) {
    match acc.iter_mut().find(|(t, _)| t == table) {
        Some((_, u)) => *u += units,
        None => acc.push((table.to_string(), units)),
    }
}

/// Transactional capacity as DynamoDB reports it: per table (with each index's share under
/// INDEXES), and every figure also as read or write units.
fn consumed_of(
    mode: ReturnConsumedCapacity,
    kind: UnitKind,
    units: Vec<(String, f64, Vec<IndexUnits>)>,
) -> Vec<ConsumedCapacity> {
    units
        .into_iter()
        .filter_map(|(t, u, ix)| ConsumedCapacity::with_indexes(mode, &t, Some(u), &ix))
        .map(|c| ConsumedCapacity {
            split: Some(kind),
            ..c
        })
        .collect()
}

/// [`consumed_of`] for figures without index shares.
fn consumed_list(
    mode: ReturnConsumedCapacity,
    units: Vec<(String, f64)>,
    kind: UnitKind,
) -> Vec<ConsumedCapacity> {
    let units = units.into_iter().map(|(t, u)| (t, u, Vec::new())).collect();
    consumed_of(mode, kind, units)
}

/// Cancellation with `reason` at `index` and "None" for every other action.
fn cancel_one(n: usize, index: usize, reason: CancellationReason) -> Error {
    let mut reasons = vec![none_reason(); n];
    if let Some(slot) = reasons.get_mut(index) {
        *slot = reason;
    }
    Error::TransactionCanceled { reasons }
}

fn none_reason() -> CancellationReason {
    CancellationReason {
        code: None,
        message: None,
        item: None,
    }
}

/// The cancellation reason of an action that cannot be applied: `ItemCollectionSizeLimitExceeded`
/// for a full item collection, `ValidationError` otherwise.
fn validation_reason(e: Error) -> CancellationReason {
    let (code, message) = match e {
        Error::Validation(m) => ("ValidationError", m),
        Error::ItemCollectionSizeLimitExceeded(m) => ("ItemCollectionSizeLimitExceeded", m),
        other => ("ValidationError", other.to_string()),
    };
    CancellationReason {
        code: Some(code.into()),
        message: Some(message),
        item: None,
    }
}

impl Engine {
    /// Request-level validation of one write action: table, expressions, placeholders.
    fn prepare_write<'a>(&self, it: &'a TransactWriteItem) -> Result<Prepared<'a>, Error> {
        let (update_text, cond_text, key_source, is_put): (
            Option<&str>,
            Option<&str>,
            &Item,
            bool,
        ) = match &it.action {
            WriteAction::Put {
                item,
                condition_expression,
            } => (None, condition_expression.as_deref(), item, true),
            WriteAction::Update {
                key,
                update_expression,
                condition_expression,
            } => (
                Some(update_expression.as_str()),
                condition_expression.as_deref(),
                key,
                false,
            ),
            WriteAction::Delete {
                key,
                condition_expression,
            } => (None, condition_expression.as_deref(), key, false),
            WriteAction::ConditionCheck {
                key,
                condition_expression,
            } => (None, Some(condition_expression.as_str()), key, false),
        };
        let table = self.table(&it.table)?;
        let mut expressions = Vec::new();
        if update_text.is_some() {
            expressions.push("UpdateExpression");
        }
        if cond_text.is_some() {
            expressions.push("ConditionExpression");
        }
        let usage = Usage {
            legacy: Vec::new(),
            expressions,
            params: &it.params,
        };
        usage.check()?;
        let all: &[&str] = if matches!(it.action, WriteAction::Update { .. }) {
            &["UpdateExpression", "ConditionExpression"]
        } else {
            &["ConditionExpression"]
        };
        usage.check_placeholders_need(all)?;
        let mut resolver = Resolver::new(it.params.names.as_ref(), it.params.values.as_ref());
        let update = update_text.map(|t| resolver.update(t)).transpose()?;
        let condition = cond_text
            .map(|t| resolver.condition(t, CondKind::Condition))
            .transpose()?;
        resolver.finish()?;
        let change = match (&it.action, update) {
            (WriteAction::Put { item, .. }, _) => Change::Put(item.clone()),
            (WriteAction::Update { .. }, Some(u)) => Change::Update(u),
            (WriteAction::Delete { .. }, _) => Change::Delete,
            _ => Change::Check,
        };
        Ok(Prepared {
            table,
            change,
            condition,
            key_source,
            is_put,
            return_old: it.return_old_on_condition_failure,
        })
    }

    /// Per-action validation: the storage key, the item size, key attributes left alone.
    fn validate_action(p: &Prepared<'_>) -> Result<Vec<u8>, Error> {
        let def = &p.table.def;
        let key = if p.is_put {
            key_of_item(def, p.key_source)?
        } else {
            key_of_key_param(def, p.key_source)?
        };
        match &p.change {
            Change::Put(item) => {
                check_size(item)?;
                crate::index::validate_index_keys(def, item)?;
            }
            Change::Update(u) => {
                for name in u.top_level_attributes() {
                    if def.is_key(name) {
                        return Err(Error::validation(format!(
                            "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
                        )));
                    }
                }
            }
            Change::Delete | Change::Check => {}
        }
        Ok(key)
    }

    /// TransactWriteItems: all actions succeed together, or none is applied.
    pub fn transact_write(
        &self,
        mut input: TransactWriteInput,
    ) -> Result<TransactWriteOutput, Error> {
        if !self.enforcing() {
            return self.retrying(input, Self::transact_write_now);
        }
        let tables: Vec<&str> = input.items.iter().map(|i| i.table.as_str()).collect();
        self.admit_transaction(&tables, Access::Write)?;
        let wanted = std::mem::replace(&mut input.return_consumed, ReturnConsumedCapacity::Indexes);
        let mut out = self.retrying(input, Self::transact_write_now)?;
        self.charge_all(Access::Write, &mut out.consumed, wanted);
        Ok(out)
    }

    /// Cancels a transaction touching a table whose capacity is exhausted: that action's
    /// reason says so (`ProvisionedThroughputExceeded` for provisioned capacity,
    /// `ThrottlingError` for on-demand limits), every other action's is `None`.
    fn admit_transaction(&self, tables: &[&str], access: Access) -> Result<(), Error> {
        let mut reasons = Vec::new();
        let mut refused = false;
        for (i, t) in tables.iter().enumerate() {
            let seen = tables[..i].iter().position(|x| x == t);
            let reason = match seen {
                Some(j) => reasons.get(j).cloned().unwrap_or_else(none_reason),
                None => match self.admit(t, access) {
                    Ok(()) => none_reason(),
                    Err(Error::Throttled { kind, message, .. }) => CancellationReason {
                        code: Some(
                            match kind {
                                ferrodyn_model::error::ThrottleKind::ProvisionedThroughputExceeded => {
                                    "ProvisionedThroughputExceeded"
                                }
                                ferrodyn_model::error::ThrottleKind::Throttling => "ThrottlingError",
                            }
                            .into(),
                        ),
                        message: Some(message),
                        item: None,
                    },
                    Err(e) => return Err(e),
                },
            };
            refused |= reason.code.is_some();
            reasons.push(reason);
        }
        if refused {
            return Err(Error::TransactionCanceled { reasons });
        }
        Ok(())
    }

    fn transact_write_now(&self, input: TransactWriteInput) -> Result<TransactWriteOutput, Error> {
        let n = input.items.len();
        if n == 0 || n > MAX_ACTIONS {
            return Err(Error::validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {}",
                if n == 0 { "greater than or equal to 1" } else { "less than or equal to 100" }
            )));
        }
        // Tier 1: request-level problems, in request order.
        let prepared = input
            .items
            .iter()
            .map(|it| self.prepare_write(it))
            .collect::<Result<Vec<_>, Error>>()?;
        let payload: usize = prepared.iter().map(|p| item_size(p.key_source)).sum();
        if payload > MAX_TRANSACTION_BYTES {
            return Err(Error::validation(
                "Transaction request size cannot exceed 4 MB (the aggregate size of its items)",
            ));
        }
        // Tier 2: per-action validation; only the first failing action is reported.
        let mut keys = Vec::with_capacity(n);
        for (i, p) in prepared.iter().enumerate() {
            match Self::validate_action(p) {
                Ok(k) => keys.push(k),
                Err(e) => return Err(cancel_one(n, i, validation_reason(e))),
            }
        }
        let mut seen = HashSet::with_capacity(n);
        for (p, k) in prepared.iter().zip(&keys) {
            if !seen.insert((p.table.def.id.as_str(), k.as_slice())) {
                return Err(Error::validation(DUPLICATE_TARGET));
            }
        }

        let claim = match &input.client_request_token {
            Some(token) => {
                self.tx_tokens.sync_generation(self.storage.generation());
                match self.tx_tokens.begin(token, fingerprint(&input.items))? {
                    TokenBegin::Run(claim) => Some(claim),
                    TokenBegin::Replay(units, ticket) => {
                        self.after_commit(ticket)?;
                        return Ok(TransactWriteOutput {
                            consumed: consumed_list(input.return_consumed, units, UnitKind::Read),
                            item_collection_metrics: Vec::new(),
                        });
                    }
                }
            }
            None => None,
        };

        let targets: Vec<(&Table, &[u8])> = prepared
            .iter()
            .zip(&keys)
            .map(|(p, k)| (&*p.table, k.as_slice()))
            .collect();
        // On shared storage the token's record is locked with the items: the same request
        // through another node waits, then finds it and replays.
        let shared_token = input
            .client_request_token
            .as_deref()
            .filter(|_| self.shared)
            .map(|t| (TOKENS, t.as_bytes()));
        let locks = self.locks.lock_with(&targets, shared_token)?;
        if let Some((_, token)) = shared_token {
            if let Some(record) = locks.get(TOKENS, token)? {
                if let Some(units) = replay_of(&record, fingerprint(&input.items))? {
                    return Ok(TransactWriteOutput {
                        consumed: consumed_list(input.return_consumed, units, UnitKind::Read),
                        item_collection_metrics: Vec::new(),
                    });
                }
            }
        }
        let mut olds = Vec::with_capacity(n);
        for (p, k) in prepared.iter().zip(&keys) {
            olds.push(locks.item(&p.table.def, k)?);
        }

        // Tier 3: conditions and new items, one reason per action.
        let empty = Item::new();
        let mut reasons = vec![none_reason(); n];
        let mut failed = false;
        let mut news: Vec<Option<Option<Item>>> = Vec::with_capacity(n);
        for (i, p) in prepared.iter().enumerate() {
            let old = olds[i].as_ref();
            let passed = match &p.condition {
                Some(c) => c.eval(old.unwrap_or(&empty)),
                None => Ok(true),
            };
            let new = match passed {
                Ok(true) => Self::new_item(p, old),
                Ok(false) => {
                    reasons[i] = CancellationReason {
                        code: Some("ConditionalCheckFailed".into()),
                        message: Some(CONDITION_FAILED.into()),
                        item: if p.return_old { old.cloned() } else { None },
                    };
                    failed = true;
                    news.push(None);
                    continue;
                }
                Err(e) => Err(e),
            };
            // A write that would grow a full item collection (tables with LSIs) fails as a
            // single PutItem or UpdateItem would, as this action's cancellation reason.
            let new = new.and_then(|change| {
                if let Some(item) = &change {
                    self.check_collection(&p.table, old, item.as_ref())?;
                }
                Ok(change)
            });
            match new {
                Ok(change) => news.push(change),
                Err(e) => {
                    reasons[i] = validation_reason(e);
                    failed = true;
                    news.push(None);
                }
            }
        }
        if failed {
            return Err(Error::TransactionCanceled { reasons });
        }

        let mut batch = self.item_batch("TransactWriteItems");
        let mut deltas: Vec<(usize, StatDelta)> = Vec::new();
        let mut write_units_by_table: Vec<(String, f64, Vec<IndexUnits>)> = Vec::new();
        let mut read_units_by_table = Vec::new();
        // Per action, for the tables' activity once committed: (item read by a check, bytes
        // written, table units, index shares).
        let mut done: Vec<ActionActivity<'_>> = Vec::with_capacity(prepared.len());
        for (i, p) in prepared.iter().enumerate() {
            let old = olds[i].as_ref();
            let old_size = old.map(item_size).unwrap_or(0);
            let name = &p.table.def.name;
            match &news[i] {
                // A condition check reads, as a transactional read.
                None if matches!(p.change, Change::Check) => {
                    let u = 2.0 * read_units(old_size, true);
                    crate::batch::add_units(&mut write_units_by_table, name, u, Vec::new());
                    let checked = old.map(|_| old_size);
                    done.push((&p.table, checked, None, u, Vec::new()));
                }
                None => {
                    // Nothing to write (deleting a missing item, removing from a missing one).
                    let u = 2.0 * write_units(old_size);
                    crate::batch::add_units(&mut write_units_by_table, name, u, Vec::new());
                    done.push((&p.table, None, None, u, Vec::new()));
                }
                Some(new) => {
                    let new_size = new.as_ref().map(item_size);
                    // Each index the write updates is charged its share, doubled too.
                    let index_units: Vec<IndexUnits> =
                        crate::index::write_units(&p.table.def, old, new.as_ref())
                            .into_iter()
                            .map(|i| IndexUnits {
                                units: 2.0 * i.units,
                                ..i
                            })
                            .collect();
                    let u = 2.0 * write_units(old_size.max(new_size.unwrap_or(0)));
                    done.push((
                        &p.table,
                        None,
                        Some(new_size.unwrap_or(old_size)),
                        u,
                        index_units.clone(),
                    ));
                    crate::batch::add_units(&mut write_units_by_table, name, u, index_units);
                    let d =
                        stage_item_change(&p.table, &keys[i], old.into(), new.as_ref(), &mut batch);
                    deltas.push((i, d));
                }
            }
            add_units(
                &mut read_units_by_table,
                name,
                read_units(
                    news[i]
                        .as_ref()
                        .and_then(|x| x.as_ref())
                        .map(item_size)
                        .unwrap_or(old_size),
                    true,
                ),
            );
        }
        if let Some((_, token)) = shared_token {
            batch.batch.put(
                TOKENS,
                token,
                token_record(fingerprint(&input.items), &read_units_by_table),
            );
        }
        let deltas = deltas.into_iter().map(|(i, d)| (&*prepared[i].table, d));
        let ticket = self.commit_locked(locks, batch, deltas)?;
        for (table, checked, written, u, ix) in done {
            let activity = &table.counters.activity;
            if let Some(b) = checked {
                activity.read(1, b as u64);
            }
            if let Some(b) = written {
                activity.wrote(b);
            }
            activity.write_units(u, &ix);
        }
        if let Some(claim) = claim {
            claim.complete(read_units_by_table, ticket);
        }

        let mut icm: Vec<(String, Vec<Item>)> = Vec::new();
        if input.return_item_collection_metrics {
            for p in &prepared {
                if matches!(p.change, Change::Check) {
                    continue;
                }
                let def = &p.table.def;
                if let Some(k) = self.icm(def, true, p.key_source) {
                    match icm.iter_mut().find(|(t, _)| *t == def.name) {
                        Some((_, v)) => v.push(k),
                        None => icm.push((def.name.clone(), vec![k])),
                    }
                }
            }
        }
        Ok(TransactWriteOutput {
            consumed: consumed_of(input.return_consumed, UnitKind::Write, write_units_by_table),
            item_collection_metrics: icm,
        })
    }

    /// The item an action leaves behind: `Ok(None)` writes nothing, `Ok(Some(None))` deletes.
    fn new_item(p: &Prepared<'_>, old: Option<&Item>) -> Result<Option<Option<Item>>, Error> {
        match &p.change {
            Change::Check => Ok(None),
            Change::Put(item) => Ok(Some(Some(item.clone()))),
            Change::Delete => Ok(old.map(|_| None)),
            Change::Update(u) => {
                if old.is_none() && u.only_removes() {
                    return Ok(None);
                }
                let mut new = old.cloned().unwrap_or_else(|| p.key_source.clone());
                u.apply(&mut new)?;
                if item_size(&new) > MAX_ITEM_BYTES {
                    return Err(Error::validation(
                        "Item size to update has exceeded the maximum allowed size",
                    ));
                }
                crate::index::validate_index_keys(&p.table.def, &new)?;
                Ok(Some(Some(new)))
            }
        }
    }

    /// TransactGetItems: reads the items as one consistent view.
    pub fn transact_get(&self, mut input: TransactGetInput) -> Result<TransactGetOutput, Error> {
        if !self.enforcing() {
            return self.retrying(input, Self::transact_get_now);
        }
        let tables: Vec<&str> = input.items.iter().map(|i| i.table.as_str()).collect();
        self.admit_transaction(&tables, Access::Read)?;
        let wanted = std::mem::replace(&mut input.return_consumed, ReturnConsumedCapacity::Indexes);
        let mut out = self.retrying(input, Self::transact_get_now)?;
        self.charge_all(Access::Read, &mut out.consumed, wanted);
        Ok(out)
    }

    fn transact_get_now(&self, input: TransactGetInput) -> Result<TransactGetOutput, Error> {
        let n = input.items.len();
        if n == 0 || n > MAX_ACTIONS {
            return Err(Error::validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {}",
                if n == 0 { "greater than or equal to 1" } else { "less than or equal to 100" }
            )));
        }
        // Tier 1: tables, projections, placeholders.
        let mut prepared: Vec<(Arc<Table>, Option<Vec<Path>>)> = Vec::with_capacity(n);
        for it in &input.items {
            let table = self.table(&it.table)?;
            let params = ExprParams {
                names: it.names.clone(),
                values: None,
            };
            let usage = Usage {
                legacy: Vec::new(),
                expressions: it
                    .projection_expression
                    .as_ref()
                    .map(|_| "ProjectionExpression")
                    .into_iter()
                    .collect(),
                params: &params,
            };
            usage.check()?;
            usage.check_placeholders_need(&["ProjectionExpression"])?;
            let mut resolver = Resolver::new(it.names.as_ref(), None);
            let projection = it
                .projection_expression
                .as_deref()
                .map(|t| resolver.projection(t))
                .transpose()?;
            resolver.finish()?;
            prepared.push((table, projection));
        }
        // Tier 2: keys; the first bad one cancels the transaction.
        let mut keys = Vec::with_capacity(n);
        for (i, ((table, _), it)) in prepared.iter().zip(&input.items).enumerate() {
            match key_of_key_param(&table.def, &it.key) {
                Ok(k) => keys.push(k),
                Err(e) => return Err(cancel_one(n, i, validation_reason(e))),
            }
        }
        let mut seen = HashSet::with_capacity(n);
        for ((table, _), k) in prepared.iter().zip(&keys) {
            if !seen.insert((table.def.id.as_str(), k.as_slice())) {
                return Err(Error::validation(DUPLICATE_TARGET));
            }
        }

        let raw = {
            let targets: Vec<(&Table, &[u8])> = prepared
                .iter()
                .zip(&keys)
                .map(|((t, _), k)| (&**t, k.as_slice()))
                .collect();
            let locks = self.lock_items(&targets)?;
            let mut raw = Vec::with_capacity(n);
            for ((table, _), k) in prepared.iter().zip(&keys) {
                raw.push(locks.item(&table.def, k)?);
            }
            raw
        };
        let mut units = Vec::new();
        let mut items = Vec::with_capacity(n);
        for ((table, projection), item) in prepared.iter().zip(raw) {
            let size = item.as_ref().map(item_size).unwrap_or(0);
            let u = 2.0 * read_units(size, true);
            add_units(&mut units, &table.def.name, u);
            let activity = &table.counters.activity;
            activity.read(u64::from(item.is_some()), size as u64);
            activity.read_units(None, u);
            items.push(match (item, projection) {
                (Some(i), Some(p)) => Some(ferrodyn_expr::project(&i, p)),
                (i, _) => i,
            });
        }
        Ok(TransactGetOutput {
            items,
            consumed: consumed_list(input.return_consumed, units, UnitKind::Read),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_placeholder_order() {
        let mk = |names: Vec<(&str, &str)>| TransactWriteItem {
            table: "t".into(),
            action: WriteAction::Delete {
                key: Item::new(),
                condition_expression: Some("#a = #b".into()),
            },
            params: ExprParams {
                names: Some(
                    names
                        .into_iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect(),
                ),
                values: None,
            },
            return_old_on_condition_failure: false,
        };
        let a = mk(vec![("#a", "x"), ("#b", "y")]);
        let b = mk(vec![("#b", "y"), ("#a", "x")]);
        let c = mk(vec![("#a", "x"), ("#b", "z")]);
        assert_eq!(fingerprint(std::slice::from_ref(&a)), fingerprint(&[b]));
        assert_ne!(fingerprint(&[a]), fingerprint(&[c]));
    }

    #[test]
    fn a_token_in_use_by_a_running_transaction_is_refused_then_replayed() {
        let tokens = TokenTable::default();
        let Ok(TokenBegin::Run(claim)) = tokens.begin("tok", 7) else {
            panic!("a new token runs");
        };
        // While the first request runs, the same request is refused, a different one too.
        assert!(matches!(
            tokens.begin("tok", 7),
            Err(Error::TransactionInProgress(m)) if m == "The transaction with the given request token is already in progress."
        ));
        assert!(matches!(
            tokens.begin("tok", 8),
            Err(Error::IdempotentParameterMismatch(_))
        ));
        claim.complete(vec![("t".into(), 1.0)], CommitTicket::DURABLE);
        assert!(matches!(
            tokens.begin("tok", 7),
            Ok(TokenBegin::Replay(units, _)) if units == vec![("t".to_string(), 1.0)]
        ));
        // A claim dropped without completing (a failed transaction) frees the token.
        let Ok(TokenBegin::Run(claim)) = tokens.begin("other", 1) else {
            panic!("a new token runs");
        };
        drop(claim);
        assert!(matches!(tokens.begin("other", 1), Ok(TokenBegin::Run(_))));
    }

    /// Transfers between accounts in tight loops while readers check the total: with the
    /// engine called directly, reads overlap commits far more often than over HTTP.
    #[test]
    fn concurrent_transfers_and_reads_are_serializable() {
        use ferrodyn_model::{AttributeValue as AV, Number};

        const ACCOUNTS: usize = 6;
        let storage = Arc::new(ferrodyn_storage::MemoryStorage::new());
        let config = crate::EngineConfig {
            durability: ferrodyn_storage::Durability::Buffered,
            ..Default::default()
        };
        let engine = Arc::new(Engine::open(storage, config).unwrap());
        crate::create_hash_table(&engine, "bank");
        let key = |i: usize| Item::from([("pk".to_string(), AV::S(format!("a{i}")))]);
        let num = |n: i64| AV::N(Number::parse(&n.to_string()).unwrap());
        let put = |i: usize| TransactWriteItem {
            table: "bank".into(),
            action: WriteAction::Put {
                item: Item::from([
                    ("pk".to_string(), AV::S(format!("a{i}"))),
                    ("bal".to_string(), num(100)),
                ]),
                condition_expression: None,
            },
            params: ExprParams::default(),
            return_old_on_condition_failure: false,
        };
        engine
            .transact_write(TransactWriteInput {
                items: (0..ACCOUNTS).map(put).collect(),
                ..Default::default()
            })
            .unwrap();
        let update = |i: usize, expr: &str, cond: Option<&str>, amount: i64| TransactWriteItem {
            table: "bank".into(),
            action: WriteAction::Update {
                key: key(i),
                update_expression: expr.into(),
                condition_expression: cond.map(str::to_string),
            },
            params: ExprParams {
                names: None,
                values: Some(HashMap::from([(":a".to_string(), num(amount))])),
            },
            return_old_on_condition_failure: false,
        };
        std::thread::scope(|s| {
            for w in 0..3u64 {
                let engine = &engine;
                s.spawn(move || {
                    let mut x = 0x2545_f491_4f6c_dd1d_u64 ^ (w + 1);
                    for _ in 0..1500 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let from = (x % ACCOUNTS as u64) as usize;
                        let to =
                            (from + 1 + ((x >> 8) % (ACCOUNTS as u64 - 1)) as usize) % ACCOUNTS;
                        let amount = ((x >> 16) % 60 + 1) as i64;
                        let r = engine.transact_write(TransactWriteInput {
                            items: vec![
                                update(from, "SET bal = bal - :a", Some("bal >= :a"), amount),
                                update(to, "SET bal = bal + :a", None, amount),
                            ],
                            ..Default::default()
                        });
                        match r {
                            Ok(_) | Err(Error::TransactionCanceled { .. }) => {}
                            Err(e) => panic!("unexpected {e:?}"),
                        }
                    }
                });
            }
            for _ in 0..2 {
                let engine = &engine;
                s.spawn(move || {
                    for _ in 0..1500 {
                        let out = engine
                            .transact_get(TransactGetInput {
                                items: (0..ACCOUNTS)
                                    .map(|i| TransactGetItem {
                                        table: "bank".into(),
                                        key: key(i),
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .unwrap();
                        let total: i64 = out
                            .items
                            .iter()
                            .map(|it| match it.as_ref().and_then(|i| i.get("bal")) {
                                Some(AV::N(n)) => n.to_i64().unwrap(),
                                other => panic!("bad balance {other:?}"),
                            })
                            .sum();
                        assert_eq!(total, 100 * ACCOUNTS as i64);
                    }
                });
            }
        });
    }

    #[test]
    fn token_table_claims_replays_and_expires() {
        let t = TokenTable::default();
        match t.begin("tok", 1) {
            Ok(TokenBegin::Run(c)) => c.complete(vec![("t".into(), 1.0)], CommitTicket::DURABLE),
            _ => panic!("first use must run"),
        }
        assert!(matches!(t.begin("tok", 1), Ok(TokenBegin::Replay(..))));
        assert!(matches!(
            t.begin("tok", 2),
            Err(Error::IdempotentParameterMismatch(_))
        ));
        // A failed run releases its token.
        match t.begin("other", 1) {
            Ok(TokenBegin::Run(c)) => drop(c),
            _ => panic!("first use must run"),
        }
        assert!(matches!(t.begin("other", 2), Ok(TokenBegin::Run(_))));
        // Expiry forgets completed tokens.
        t.state.lock().expire(Instant::now() + TOKEN_TTL);
        assert!(matches!(t.begin("tok", 2), Ok(TokenBegin::Run(_))));
    }

    /// A reopen of the store may have lost a recorded transaction (its ticket never becomes
    /// durable): the records of the older store are forgotten and a retry runs again.
    #[test]
    fn a_reopen_of_the_store_forgets_the_tokens() {
        let t = TokenTable::default();
        t.sync_generation(0);
        match t.begin("tok", 1) {
            Ok(TokenBegin::Run(c)) => c.complete(vec![], CommitTicket::DURABLE),
            _ => panic!("first use must run"),
        }
        t.sync_generation(0);
        assert!(matches!(t.begin("tok", 1), Ok(TokenBegin::Replay(..))));
        t.sync_generation(1);
        assert!(matches!(t.begin("tok", 1), Ok(TokenBegin::Run(_))));
    }
}
