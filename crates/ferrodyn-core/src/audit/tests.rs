use std::collections::HashMap;
use std::sync::Arc;

use ferrodyn_model::{AttributeValue as AV, Error, Item, Number};
use ferrodyn_storage::{
    CachedStorage, Durability, FjallStorage, MemoryStorage, Storage, WriteBatch,
};

use super::*;
use crate::batch::{BatchWriteInput, WriteRequest};
use crate::control::UpdateTableInput;
use crate::items::{DeleteItemInput, ExprParams, PutItemInput, UpdateItemInput};
use crate::transact::{TransactWriteInput, TransactWriteItem, WriteAction};
use crate::{Engine, EngineConfig};

fn audited() -> EngineConfig {
    EngineConfig {
        audit: AuditConfig {
            enabled: true,
            reads: true,
            ..AuditConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// The storage engines the log must work on: memory, fjall, and fjall behind the read cache.
/// The directory (if any) lives as long as the storage is used.
fn storages() -> Vec<(&'static str, Arc<dyn Storage>, Option<tempfile::TempDir>)> {
    let fjall_dir = tempfile::tempdir().unwrap();
    let cached_dir = tempfile::tempdir().unwrap();
    let fjall = FjallStorage::open(fjall_dir.path()).unwrap();
    let cached = CachedStorage::new(FjallStorage::open(cached_dir.path()).unwrap(), 1 << 20);
    vec![
        ("memory", Arc::new(MemoryStorage::new()), None),
        ("fjall", Arc::new(fjall), Some(fjall_dir)),
        ("cached", Arc::new(cached), Some(cached_dir)),
    ]
}

fn ctx(principal: &str, operation: &str) -> AuditContext {
    AuditContext {
        principal: principal.into(),
        principal_arn: format!("arn:aws:iam::000000000000:user/{principal}"),
        source: "127.0.0.1:4242".into(),
        request_id: format!("req-{principal}-{operation}"),
        operation: operation.into(),
    }
}

fn key(pk: &str) -> Item {
    Item::from([("pk".to_string(), AV::S(pk.into()))])
}

fn item(pk: &str, v: &str) -> Item {
    let mut i = key(pk);
    i.insert("v".into(), AV::S(v.into()));
    i
}

fn pk_of(it: &Item) -> String {
    match it.get("pk") {
        Some(AV::S(s)) => s.clone(),
        other => panic!("no string key: {other:?}"),
    }
}

fn put(table: &str, it: Item) -> PutItemInput {
    PutItemInput {
        table: table.into(),
        item: it,
        ..Default::default()
    }
}

fn values(v: &str) -> ExprParams {
    ExprParams {
        names: None,
        values: Some(HashMap::from([(":v".to_string(), AV::S(v.into()))])),
    }
}

fn all_records(engine: &Engine) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = engine
            .audit_records(&AuditFilter::default(), 7, after)
            .unwrap();
        out.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

fn assert_verifies(engine: &Engine) -> AuditVerifyReport {
    let report = engine.audit_verify().unwrap();
    assert_eq!(report.broken, None, "{report:?}");
    report
}

/// (principal, operation, table, key, old image, new image) of a record.
type Summary = (
    String,
    String,
    Option<String>,
    Item,
    Option<Item>,
    Option<Item>,
);

fn summary(r: &AuditRecord) -> Summary {
    (
        r.principal.clone(),
        r.operation.clone(),
        r.table.clone(),
        r.key.clone(),
        r.old_image.clone(),
        r.new_image.clone(),
    )
}

fn expect(
    principal: &str,
    operation: &str,
    table: &str,
    key: Item,
    old: Option<Item>,
    new: Option<Item>,
) -> Summary {
    (
        principal.into(),
        operation.into(),
        Some(table.into()),
        key,
        old,
        new,
    )
}

#[test]
fn every_write_kind_is_recorded_with_its_images() {
    for (name, storage, _dir) in storages() {
        let engine = Engine::open(storage, audited()).unwrap();
        crate::create_hash_table(&engine, "t");
        let as_alice = |op: &str, f: &dyn Fn() -> Result<(), Error>| {
            engine.with_audit_context(&ctx("alice", op), f).unwrap();
        };
        as_alice("PutItem", &|| {
            engine.put_item(put("t", item("a", "1"))).map(drop)
        });
        as_alice("PutItem", &|| {
            engine.put_item(put("t", item("a", "2"))).map(drop)
        });
        as_alice("UpdateItem", &|| {
            engine
                .update_item(UpdateItemInput {
                    table: "t".into(),
                    key: key("a"),
                    update_expression: Some("SET v = :v".into()),
                    params: values("3"),
                    ..Default::default()
                })
                .map(drop)
        });
        as_alice("DeleteItem", &|| {
            engine
                .delete_item(DeleteItemInput {
                    table: "t".into(),
                    key: key("a"),
                    ..Default::default()
                })
                .map(drop)
        });
        // A delete of a missing item changes nothing and records nothing.
        as_alice("BatchWriteItem", &|| {
            engine
                .batch_write_item(BatchWriteInput {
                    tables: vec![(
                        "t".into(),
                        vec![
                            WriteRequest::Put(item("b", "1")),
                            WriteRequest::Put(item("c", "1")),
                            WriteRequest::Delete(key("zz")),
                        ],
                    )],
                    ..Default::default()
                })
                .map(drop)
        });
        let tx_item = |action| TransactWriteItem {
            table: "t".into(),
            action,
            params: ExprParams::default(),
            return_old_on_condition_failure: false,
        };
        as_alice("TransactWriteItems", &|| {
            let mut update = tx_item(WriteAction::Update {
                key: key("b"),
                update_expression: "SET v = :v".into(),
                condition_expression: None,
            });
            update.params = values("2");
            engine
                .transact_write(TransactWriteInput {
                    items: vec![
                        tx_item(WriteAction::Put {
                            item: item("d", "1"),
                            condition_expression: None,
                        }),
                        update,
                        tx_item(WriteAction::Delete {
                            key: key("c"),
                            condition_expression: None,
                        }),
                        tx_item(WriteAction::ConditionCheck {
                            key: key("zz"),
                            condition_expression: "attribute_not_exists(pk)".into(),
                        }),
                    ],
                    ..Default::default()
                })
                .map(drop)
        });
        // TTL: the setting, then an expired item deleted by the sweeper.
        as_alice("UpdateTimeToLive", &|| {
            engine.update_time_to_live("t", "exp", true)
        });
        let mut expiring = item("e", "1");
        let past = crate::now_epoch() as i64 - 10;
        expiring.insert("exp".into(), AV::N(Number::from_i64(past)));
        as_alice("PutItem", &|| {
            engine.put_item(put("t", expiring.clone())).map(drop)
        });
        assert_eq!(engine.sweep_expired().unwrap(), 1);
        // Schema changes outside a request context: the system principal.
        engine
            .update_table(UpdateTableInput {
                name: "t".into(),
                deletion_protection: Some(false),
                ..Default::default()
            })
            .unwrap();
        let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/t";
        as_alice("TagResource", &|| {
            engine.tag_resource(arn, vec![("k".into(), "v".into())])
        });
        as_alice("UntagResource", &|| {
            engine.untag_resource(arn, &["k".into()])
        });
        as_alice("DeleteTable", &|| engine.delete_table("t").map(drop));

        let records = all_records(&engine);
        let got: Vec<Summary> = records.iter().map(summary).collect();
        let none = Item::new();
        let want = vec![
            expect("system", "CreateTable", "t", none.clone(), None, None),
            expect(
                "alice",
                "PutItem",
                "t",
                key("a"),
                None,
                Some(item("a", "1")),
            ),
            expect(
                "alice",
                "PutItem",
                "t",
                key("a"),
                Some(item("a", "1")),
                Some(item("a", "2")),
            ),
            expect(
                "alice",
                "UpdateItem",
                "t",
                key("a"),
                Some(item("a", "2")),
                Some(item("a", "3")),
            ),
            expect(
                "alice",
                "DeleteItem",
                "t",
                key("a"),
                Some(item("a", "3")),
                None,
            ),
            expect(
                "alice",
                "BatchWriteItem",
                "t",
                key("b"),
                None,
                Some(item("b", "1")),
            ),
            expect(
                "alice",
                "BatchWriteItem",
                "t",
                key("c"),
                None,
                Some(item("c", "1")),
            ),
            expect(
                "alice",
                "TransactWriteItems",
                "t",
                key("d"),
                None,
                Some(item("d", "1")),
            ),
            expect(
                "alice",
                "TransactWriteItems",
                "t",
                key("b"),
                Some(item("b", "1")),
                Some(item("b", "2")),
            ),
            expect(
                "alice",
                "TransactWriteItems",
                "t",
                key("c"),
                Some(item("c", "1")),
                None,
            ),
            expect("alice", "UpdateTimeToLive", "t", none.clone(), None, None),
            expect(
                "alice",
                "PutItem",
                "t",
                key("e"),
                None,
                Some(expiring.clone()),
            ),
            expect("ttl", "TTL", "t", key("e"), Some(expiring.clone()), None),
            expect("system", "UpdateTable", "t", none.clone(), None, None),
            expect("alice", "TagResource", "t", none.clone(), None, None),
            expect("alice", "UntagResource", "t", none.clone(), None, None),
            expect("alice", "DeleteTable", "t", none.clone(), None, None),
        ];
        assert_eq!(got, want, "{name}");

        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1, "{name}");
            assert_eq!(r.outcome, SUCCESS);
            let prev = if i == 0 { [0; 32] } else { records[i - 1].hash };
            assert_eq!(r.prev_hash, prev, "{name}: record {} links back", r.seq);
            if r.principal == "alice" {
                assert_eq!(r.source, "127.0.0.1:4242");
                assert_eq!(r.principal_arn, "arn:aws:iam::000000000000:user/alice");
                assert_eq!(r.request_id, format!("req-alice-{}", r.operation));
            }
            if i > 0 {
                assert!(r.time_ms >= records[i - 1].time_ms);
            }
        }
        let report = assert_verifies(&engine);
        assert_eq!(
            (report.checked, report.first_seq, report.last_seq),
            (17, 1, Some(17))
        );
        assert_eq!(report.head_hash, records[16].hash);
    }
}

#[test]
fn a_failed_write_records_only_its_failure() {
    let engine = Engine::open(Arc::new(MemoryStorage::new()), audited()).unwrap();
    crate::create_hash_table(&engine, "t");
    let bob = ctx("bob", "PutItem");
    engine
        .with_audit_context(&bob, || engine.put_item(put("t", item("a", "1"))))
        .unwrap();
    let before = all_records(&engine).len();

    // A failed condition changes nothing and stages no record ...
    let err = engine.with_audit_context(&bob, || {
        engine.put_item(PutItemInput {
            condition_expression: Some("attribute_not_exists(pk)".into()),
            ..put("t", item("a", "2"))
        })
    });
    assert!(matches!(err, Err(Error::ConditionalCheckFailed { .. })));
    // ... nor does a cancelled transaction.
    let cancelled = engine.with_audit_context(&ctx("bob", "TransactWriteItems"), || {
        engine.transact_write(TransactWriteInput {
            items: vec![TransactWriteItem {
                table: "t".into(),
                action: WriteAction::Put {
                    item: item("a", "3"),
                    condition_expression: Some("attribute_not_exists(pk)".into()),
                },
                params: ExprParams::default(),
                return_old_on_condition_failure: false,
            }],
            ..Default::default()
        })
    });
    assert!(matches!(cancelled, Err(Error::TransactionCanceled { .. })));
    assert_eq!(all_records(&engine).len(), before);

    // The server reports the failure.
    // (PutItem passes its whole item: the record keeps the key attributes.)
    let ticket = engine
        .audit_failure(
            &bob,
            Some("t"),
            Some(&item("a", "2")),
            "ConditionalCheckFailedException",
        )
        .unwrap();
    engine.storage.wait_durable(ticket).unwrap();
    engine
        .audit_failure(
            &ctx("eve", "ListTables"),
            None,
            None,
            "AccessDeniedException",
        )
        .unwrap();
    engine
        .audit_read(&ctx("bob", "GetItem"), Some("t"), Some(&key("a")))
        .unwrap();
    let records = all_records(&engine);
    assert_eq!(records.len(), before + 3);
    let failure = &records[before];
    assert_eq!(failure.outcome, "ConditionalCheckFailedException");
    assert_eq!(
        (failure.principal.as_str(), failure.operation.as_str()),
        ("bob", "PutItem")
    );
    assert_eq!(failure.table.as_deref(), Some("t"));
    assert_eq!(failure.key, key("a"));
    assert_eq!((&failure.old_image, &failure.new_image), (&None, &None));
    let denied = &records[before + 1];
    assert_eq!((denied.table.as_ref(), denied.key.is_empty()), (None, true));
    assert_eq!(denied.outcome, "AccessDeniedException");
    let read = &records[before + 2];
    assert_eq!(
        (read.operation.as_str(), read.outcome.as_str()),
        ("GetItem", SUCCESS)
    );
    // The item still holds its first value.
    assert_verifies(&engine);

    // Filters.
    let by = |f: AuditFilter| -> Vec<u64> {
        let (recs, next) = engine.audit_records(&f, 100, None).unwrap();
        assert_eq!(next, None);
        recs.iter().map(|r| r.seq).collect()
    };
    let all: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(by(AuditFilter::default()), all);
    assert_eq!(
        by(AuditFilter {
            principal: Some("eve".into()),
            ..Default::default()
        }),
        vec![records[before + 1].seq]
    );
    assert_eq!(
        by(AuditFilter {
            principal: Some("bob".into()),
            key: Some(key("a")),
            table: Some("t".into()),
            ..Default::default()
        }),
        vec![records[1].seq, records[before].seq, records[before + 2].seq]
    );
    assert_eq!(
        by(AuditFilter {
            since_ms: Some(records[before + 2].time_ms),
            ..Default::default()
        })
        .last(),
        Some(&records[before + 2].seq)
    );
    assert_eq!(
        by(AuditFilter {
            until_ms: Some(records[0].time_ms.saturating_sub(1)),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
    // Paging: a cursor after each full page, none after the last.
    let (page, next) = engine
        .audit_records(&AuditFilter::default(), 2, None)
        .unwrap();
    assert_eq!((page.len(), next), (2, Some(2)));
    let (page, _) = engine
        .audit_records(&AuditFilter::default(), 2, next)
        .unwrap();
    assert_eq!(page[0].seq, 3);
}

#[test]
fn concurrent_writers_make_one_gapless_chain() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FjallStorage::open(dir.path()).unwrap());
    let engine = Engine::open(storage.clone(), audited()).unwrap();
    crate::create_hash_table(&engine, "t");
    const THREADS: usize = 4;
    const ROUNDS: usize = 60;
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let engine = &engine;
                let storage = &storage;
                s.spawn(move || {
                    let mut changes = 0;
                    for r in 0..ROUNDS {
                        let pk = |n: usize| format!("t{t}-r{r}-{n}");
                        let c = ctx(&format!("writer{t}"), "mixed");
                        let work = || -> Result<usize, Error> {
                            match r % 3 {
                                0 => {
                                    engine.put_item(put("t", item(&pk(0), "x")))?;
                                    Ok(1)
                                }
                                1 => {
                                    engine.batch_write_item(BatchWriteInput {
                                        tables: vec![(
                                            "t".into(),
                                            (0..3)
                                                .map(|n| WriteRequest::Put(item(&pk(n), "x")))
                                                .collect(),
                                        )],
                                        ..Default::default()
                                    })?;
                                    Ok(3)
                                }
                                _ => {
                                    engine.transact_write(TransactWriteInput {
                                        items: (0..2)
                                            .map(|n| TransactWriteItem {
                                                table: "t".into(),
                                                action: WriteAction::Put {
                                                    item: item(&pk(n), "x"),
                                                    condition_expression: None,
                                                },
                                                params: ExprParams::default(),
                                                return_old_on_condition_failure: false,
                                            })
                                            .collect(),
                                        ..Default::default()
                                    })?;
                                    Ok(2)
                                }
                            }
                        };
                        // Half the writers run like the server: durability deferred.
                        let n = if t % 2 == 0 {
                            engine.with_audit_context(&c, work).unwrap()
                        } else {
                            let (n, ticket) =
                                engine.deferring_durability(|| engine.with_audit_context(&c, work));
                            storage.wait_durable(ticket).unwrap();
                            n.unwrap()
                        };
                        changes += n;
                    }
                    changes
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let records = all_records(&engine);
    // The CreateTable record, then one per item change.
    assert_eq!(records.len(), total + 1);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
    }
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in &records[1..] {
        let pk = pk_of(&r.key);
        *per_key.entry(pk.clone()).or_default() += 1;
        assert!(pk.starts_with(&format!("t{}-", &r.principal["writer".len()..])));
        assert_eq!(r.new_image.as_ref(), Some(&item(&pk, "x")));
    }
    assert_eq!(per_key.len(), total);
    assert!(per_key.values().all(|&n| n == 1));
    let report = assert_verifies(&engine);
    assert_eq!(report.checked, total as u64 + 1);
}

fn raw(storage: &dyn Storage, seq: u64) -> Vec<u8> {
    storage.get(AUDIT, &seq_key(seq)).unwrap().unwrap()
}

fn store(storage: &dyn Storage, seq: u64, value: Option<Vec<u8>>) {
    let mut b = WriteBatch::default();
    match value {
        Some(v) => b.put(AUDIT, seq_key(seq), v),
        None => b.delete(AUDIT, seq_key(seq)),
    }
    storage.write(b, Durability::Sync).unwrap();
}

fn broken(engine: &Engine) -> Option<AuditBreak> {
    engine.audit_verify().unwrap().broken
}

#[test]
fn tampering_is_detected_at_the_right_record() {
    for (name, storage, _dir) in storages() {
        let engine = Engine::open(storage.clone(), audited()).unwrap();
        crate::create_hash_table(&engine, "t");
        for i in 0..9 {
            engine
                .put_item(put("t", item(&format!("k{i}"), "v")))
                .unwrap();
        }
        assert_verifies(&engine);
        let s = &*storage;
        let original = raw(s, 4);

        // A byte of the content changed.
        let mut altered = original.clone();
        let at = altered.len() - TAIL_LEN - 3;
        altered[at] ^= 1;
        store(s, 4, Some(altered.clone()));
        let b = broken(&engine).unwrap();
        assert_eq!(
            (b.seq, b.reason),
            (4, AuditBreakReason::HashMismatch),
            "{name}"
        );

        // The same change with the record's hash recomputed: the next link breaks.
        let n = altered.len();
        let rehashed: Hash = Sha256::digest(&altered[..n - 32]).into();
        altered[n - 32..].copy_from_slice(&rehashed);
        store(s, 4, Some(altered));
        let b = broken(&engine).unwrap();
        assert_eq!(
            (b.seq, b.reason),
            (5, AuditBreakReason::PrevHashMismatch),
            "{name}"
        );
        store(s, 4, Some(original.clone()));
        assert_verifies(&engine);

        // A record deleted.
        let sixth = raw(s, 6);
        store(s, 6, None);
        let b = broken(&engine).unwrap();
        assert_eq!(
            (b.seq, b.reason),
            (7, AuditBreakReason::Gap { expected: 6 }),
            "{name}"
        );
        store(s, 6, Some(sixth));

        // A record copied over another one.
        let fifth = raw(s, 5);
        store(s, 5, Some(original.clone()));
        let b = broken(&engine).unwrap();
        assert_eq!(b.seq, 5, "{name}");
        assert!(matches!(b.reason, AuditBreakReason::Undecodable(_)));
        store(s, 5, Some(fifth));

        // The last record deleted: only the engine's head tells.
        let tenth = raw(s, 10);
        store(s, 10, None);
        let b = broken(&engine).unwrap();
        assert_eq!(
            (b.seq, b.reason),
            (9, AuditBreakReason::Truncated { expected_last: 10 }),
            "{name}"
        );
        // The last record replaced by a validly hashed one: the head's hash tells.
        let mut forged = tenth.clone();
        forged[3] ^= 1;
        let n = forged.len();
        let rehashed: Hash = Sha256::digest(&forged[..n - 32]).into();
        forged[n - 32..].copy_from_slice(&rehashed);
        store(s, 10, Some(forged));
        let b = broken(&engine).unwrap();
        assert_eq!(
            (b.seq, b.reason),
            (10, AuditBreakReason::HashMismatch),
            "{name}"
        );
        store(s, 10, Some(tenth));
        assert_verifies(&engine);
    }
}

#[test]
fn retention_trims_the_oldest_and_verification_still_passes() {
    for (name, storage, _dir) in storages() {
        let engine = Engine::open(storage.clone(), audited()).unwrap();
        crate::create_hash_table(&engine, "t");
        for i in 0..5 {
            engine
                .put_item(put("t", item(&format!("a{i}"), "v")))
                .unwrap();
        }
        let first = all_records(&engine);
        let cutoff = first.last().unwrap().time_ms + 1;
        std::thread::sleep(std::time::Duration::from_millis(3));
        for i in 0..4 {
            engine
                .put_item(put("t", item(&format!("b{i}"), "v")))
                .unwrap();
        }
        assert_eq!(engine.trim_audit_before(cutoff).unwrap(), 6, "{name}");
        let report = assert_verifies(&engine);
        assert_eq!(
            (report.first_seq, report.checked, report.last_seq),
            (7, 4, Some(10))
        );
        assert_eq!(all_records(&engine)[0].seq, 7);
        assert_eq!(all_records(&engine)[0].prev_hash, first[5].hash);

        // Nothing left: the anchor carries the chain on.
        assert_eq!(engine.trim_audit_before(u64::MAX).unwrap(), 4);
        let report = assert_verifies(&engine);
        assert_eq!(
            (report.first_seq, report.checked, report.last_seq),
            (11, 0, None)
        );
        engine.put_item(put("t", item("c", "v"))).unwrap();
        let report = assert_verifies(&engine);
        assert_eq!((report.first_seq, report.last_seq), (11, Some(11)));

        // Retention stops before a record that does not verify.
        for i in 0..3 {
            engine
                .put_item(put("t", item(&format!("d{i}"), "v")))
                .unwrap();
        }
        let mut bad = raw(&*storage, 13);
        bad[3] ^= 1;
        store(&*storage, 13, Some(bad));
        assert_eq!(engine.trim_audit_before(u64::MAX).unwrap(), 2);
        let b = broken(&engine).unwrap();
        assert_eq!((b.seq, b.reason), (13, AuditBreakReason::HashMismatch));
    }
}

#[test]
fn the_background_worker_applies_retention() {
    let config = EngineConfig {
        ttl_interval: std::time::Duration::from_millis(20),
        audit: AuditConfig {
            enabled: true,
            reads: false,
            retention: std::time::Duration::ZERO,
        },
        ..EngineConfig::default()
    };
    let engine = Arc::new(Engine::open(Arc::new(MemoryStorage::new()), config).unwrap());
    crate::create_hash_table(&engine, "t");
    engine.put_item(put("t", item("a", "v"))).unwrap();
    engine.start_background();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !all_records(&engine).is_empty() {
        assert!(std::time::Instant::now() < deadline, "records not trimmed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let report = assert_verifies(&engine);
    assert_eq!(report.first_seq, 3);
}

#[test]
fn disabled_audit_writes_nothing() {
    let storage = Arc::new(MemoryStorage::new());
    let engine = Engine::open(storage.clone(), EngineConfig::default()).unwrap();
    crate::create_hash_table(&engine, "t");
    let c = ctx("alice", "PutItem");
    engine
        .with_audit_context(&c, || engine.put_item(put("t", item("a", "1"))))
        .unwrap();
    engine.delete_table("t").unwrap();
    let ticket = engine
        .audit_failure(&c, Some("t"), None, "ResourceNotFoundException")
        .unwrap();
    assert!(ticket.is_durable_already());
    engine.audit_read(&c, Some("t"), None).unwrap();
    assert!(!engine.audits());
    assert!(!storage.keyspace_exists(AUDIT));
    assert!(all_records(&engine).is_empty());
    let report = engine.audit_verify().unwrap();
    assert_eq!((report.checked, report.broken), (0, None));
    assert_eq!(engine.trim_audit().unwrap(), 0);
}

#[test]
fn reads_are_recorded_only_when_asked() {
    let config = EngineConfig {
        audit: AuditConfig {
            enabled: true,
            reads: false,
            ..AuditConfig::default()
        },
        ..EngineConfig::default()
    };
    let engine = Engine::open(Arc::new(MemoryStorage::new()), config).unwrap();
    engine
        .audit_read(&ctx("a", "GetItem"), Some("t"), None)
        .unwrap();
    assert!(all_records(&engine).is_empty());
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let storage = Arc::new(FjallStorage::open(dir.path()).unwrap());
        Engine::open(storage, audited()).unwrap()
    };
    {
        let engine = open();
        crate::create_hash_table(&engine, "t");
        engine.put_item(put("t", item("a", "1"))).unwrap();
        engine.close().unwrap();
    }
    {
        // Dropped without a clean close (the writes were durable when acknowledged).
        let engine = open();
        engine.put_item(put("t", item("b", "1"))).unwrap();
        assert_eq!(assert_verifies(&engine).last_seq, Some(3));
    }
    {
        let engine = open();
        engine.put_item(put("t", item("c", "1"))).unwrap();
        assert_eq!(assert_verifies(&engine).last_seq, Some(4));
        // Everything trimmed: the next open resumes from the anchor.
        engine.trim_audit_before(u64::MAX).unwrap();
    }
    let engine = open();
    engine.put_item(put("t", item("d", "1"))).unwrap();
    let report = assert_verifies(&engine);
    assert_eq!((report.first_seq, report.last_seq), (5, Some(5)));
    let records = all_records(&engine);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].new_image, Some(item("d", "1")));
}

// ---- kill -9 --------------------------------------------------------------------------------

const CRASH_DIR_ENV: &str = "FERRODYN_AUDIT_CRASH_DIR";
const CRASH_ROUND_ENV: &str = "FERRODYN_AUDIT_CRASH_ROUND";

/// Child of `audit_chain_survives_kill_9`: concurrent audited puts of distinct items, each
/// acknowledged on stdout once durable, until killed.
#[test]
fn crash_child() {
    use std::io::Write;
    let Ok(dir) = std::env::var(CRASH_DIR_ENV) else {
        return; // only meaningful when spawned by the crash test
    };
    let round = std::env::var(CRASH_ROUND_ENV).unwrap_or_default();
    let storage = Arc::new(FjallStorage::open(std::path::Path::new(&dir)).unwrap());
    let engine = Engine::open(storage.clone(), audited()).unwrap();
    if engine.table("t").is_err() {
        crate::create_hash_table(&engine, "t");
    }
    std::thread::scope(|s| {
        for t in 0..3 {
            let (engine, storage, round) = (&engine, &storage, &round);
            s.spawn(move || {
                let c = ctx(&format!("w{t}"), "PutItem");
                for i in 0u64.. {
                    let pk = format!("r{round}-t{t}-{i:06}");
                    // Sizes vary so that batches straddle journal buffer boundaries.
                    let v = "x".repeat((i % 500) as usize);
                    let (out, ticket) = engine.deferring_durability(|| {
                        engine.with_audit_context(&c, || engine.put_item(put("t", item(&pk, &v))))
                    });
                    out.unwrap();
                    storage.wait_durable(ticket).unwrap();
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "ACK {pk}").unwrap();
                    stdout.flush().unwrap();
                }
            });
        }
    });
}

#[test]
fn audit_chain_survives_kill_9() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    for round in 0..2 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "audit::tests::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, dir.path())
            .env(CRASH_ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(pk) = line.strip_prefix("ACK ") {
                    let _ = tx.send(pk.to_string());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = 0;
        while Instant::now() < deadline && seen < 300 {
            if let Ok(pk) = rx.recv_timeout(Duration::from_millis(50)) {
                acked.push(pk);
                seen += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(rx.try_iter());
        assert!(seen > 0, "the child acknowledged nothing in round {round}");

        let storage = Arc::new(FjallStorage::open(dir.path()).unwrap());
        let engine = Engine::open(storage.clone(), audited()).unwrap();
        let report = assert_verifies(&engine);
        let records = all_records(&engine);
        assert_eq!(report.last_seq, records.last().map(|r| r.seq));
        // Every record of a put has its item, every item has exactly one record.
        let table = engine.table("t").unwrap();
        let mut items = HashMap::new();
        storage
            .scan(
                &table.def.keyspace,
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |_, v| {
                    let it = itemcodec::decode_item(v).unwrap();
                    items.insert(pk_of(&it), it);
                    true
                },
            )
            .unwrap();
        let puts: Vec<&AuditRecord> = records
            .iter()
            .filter(|r| r.operation == "PutItem")
            .collect();
        assert_eq!(puts.len(), items.len(), "round {round}");
        for r in puts {
            let stored = &items[&pk_of(&r.key)];
            assert_eq!(r.new_image.as_ref(), Some(stored));
        }
        for pk in &acked {
            assert!(items.contains_key(pk), "acknowledged item {pk} lost");
        }
        eprintln!(
            "round {round}: {} acknowledged, {} items, {} records",
            acked.len(),
            items.len(),
            records.len()
        );
    }
}

/// A reopen of the store lost the last audited write (its record is gone from the new
/// store): the next record continues the chain the store holds, not the head in memory.
#[test]
fn after_a_reopen_the_chain_continues_from_the_stored_head() {
    let storage = Arc::new(MemoryStorage::new());
    let engine = Engine::open(storage.clone(), audited()).unwrap();
    crate::create_hash_table(&engine, "t");
    for i in 0..3 {
        engine
            .put_item(put("t", item(&format!("k{i}"), "v")))
            .unwrap();
    }
    let lost = assert_verifies(&engine).last_seq.unwrap();
    store(&*storage, lost, None);
    storage.mark_reopened();
    engine.put_item(put("t", item("after", "v"))).unwrap();
    let report = assert_verifies(&engine);
    assert_eq!(
        report.last_seq,
        Some(lost),
        "the new record took the lost number"
    );
    let records = all_records(&engine);
    assert_eq!(
        records.last().map(|r| r.key.clone()),
        Some(key("after")),
        "{records:?}"
    );
}
