//! Corruption with the real binary: `ferrodyn check` and `ferrodyn repair` on data directories
//! a server wrote, damaged files (a sealed table file, the middle of the journal, a torn
//! journal tail), and random bit flips that must never make the server answer wrong data.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ferrodyn_storage::{Durability, FjallStorage, Storage, WriteBatch};
use ferrodyn_testkit::{call_json, ServerProcess};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ferrodyn");
/// Small memtables, so a few MB of items reach sealed table files.
const SMALL: &[&str] = &["--memtable-mb", "1"];

fn start(dir: &Path) -> ServerProcess {
    ServerProcess::start_with(Path::new(BIN), dir, SMALL)
}

/// `ferrodyn <args>`: exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("FERRODYN_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("run ferrodyn");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_json(dir: &Path) -> (i32, Value) {
    let (code, out, err) = run(&["check", "--data-dir", dir.to_str().unwrap(), "--json"]);
    let v = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}): {out} {err}"));
    (code, v)
}

fn create_table(url: &str) {
    let (st, body) = call_json(
        url,
        "CreateTable",
        json!({
            "TableName": "tab",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}
            ],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"}
            }],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    assert_eq!(st, 200, "{body}");
}

fn value_of(i: usize) -> String {
    format!("value-{i:06}-{}", "v".repeat(200))
}

/// Writes items `from..to` (`pk` = `k{i}`, `g` = `g{i % 10}`) with BatchWriteItem.
fn put_items(url: &str, from: usize, to: usize) {
    for chunk in (from..to).collect::<Vec<_>>().chunks(25) {
        let requests: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"PutRequest": {"Item": {
                    "pk": {"S": format!("k{i:06}")},
                    "g": {"S": format!("g{}", i % 10)},
                    "v": {"S": value_of(*i)}
                }}})
            })
            .collect();
        let (st, body) = call_json(
            url,
            "BatchWriteItem",
            json!({"RequestItems": {"tab": requests}}),
        );
        assert_eq!(st, 200, "{body}");
        assert_eq!(body["UnprocessedItems"], json!({}), "{body}");
    }
}

/// Every item of `tab` by a paged Scan, or the first error (status, body).
fn scan_all(url: &str) -> Result<Vec<Value>, (u16, Value)> {
    let mut items = Vec::new();
    let mut start: Option<Value> = None;
    loop {
        let mut req = json!({"TableName": "tab"});
        if let Some(s) = &start {
            req["ExclusiveStartKey"] = s.clone();
        }
        let (st, body) = call_json(url, "Scan", req);
        if st != 200 {
            return Err((st, body));
        }
        items.extend(body["Items"].as_array().cloned().unwrap_or_default());
        match body.get("LastEvaluatedKey") {
            Some(k) => start = Some(k.clone()),
            None => return Ok(items),
        }
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Table (segment) files of the directory: files under a `tables` folder.
fn table_files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files_under(&dir.join("keyspaces"), &mut all);
    all.retain(|p| {
        p.parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "tables")
    });
    all
}

fn journals(dir: &Path) -> Vec<PathBuf> {
    let mut j: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.strip_suffix(".jnl")?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    j.sort();
    j.into_iter().map(|(_, p)| p).collect()
}

fn flip(path: &Path, offset: usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Starts a server that may refuse to open the directory: `Ok(child, url)` once it listens,
/// `Err(stderr)` if it exits first.
fn try_start(dir: &Path) -> Result<(Child, String), String> {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--data-dir", dir.to_str().unwrap()])
        .args(SMALL)
        .env("FERRODYN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    match line.trim().strip_prefix("listening on ") {
        Some(url) => Ok((child, url.to_string())),
        None => {
            let out = child.wait_with_output().unwrap();
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// A directory with table `tab` (items `0..n`) and its index, the server killed (-9).
fn written_dir(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    create_table(&server.url);
    put_items(&server.url, 0, n);
    server.kill9();
    dir
}

#[test]
fn a_clean_directory_checks_clean_and_check_refuses_a_running_servers_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    create_table(&server.url);
    put_items(&server.url, 0, 300);
    let (code, _, err) = run(&["check", "--data-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "check must refuse a directory in use: {err}");
    assert!(err.contains("locked"), "{err}");
    drop(server);

    let (code, report) = check_json(dir.path());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["clean"], true);
    let t = &report["tables"][0];
    assert_eq!(t["name"], "tab");
    assert_eq!(t["items"], 300);
    assert_eq!(t["index_entries"]["by_g"], 300);
    // The human summary says so too.
    let (code, out, _) = run(&["check", "--data-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("clean: no problems found"), "{out}");
    // A directory that does not exist is not created.
    let missing = dir.path().join("nope");
    let (code, _, err) = run(&["check", "--data-dir", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(!missing.exists());
}

#[test]
fn a_flipped_byte_in_a_sealed_table_file_is_named_by_check_and_answered_with_a_500() {
    let dir = written_dir(12_000);
    // The largest table file holds the table's items (values of ~220 bytes).
    let table = table_files(dir.path())
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a sealed table file");
    let bytes = std::fs::read(&table).unwrap();
    let at = find(&bytes, b"value-").expect("an item in the table file");
    flip(&table, at + 3, 0x20);

    let (code, report) = check_json(dir.path());
    assert_eq!(code, 1, "{report:#}");
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "damaged_file" && p["file"] == table.display().to_string()),
        "{report:#}"
    );
    assert!(
        problems.iter().any(|p| p["kind"] == "unreadable_keyspace"),
        "{report:#}"
    );
    // The text form names the file as well.
    let (code, out, _) = run(&["check", "--data-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains(&table.display().to_string()), "{out}");

    // The server opens (the damage is in a data block) and refuses the damaged read.
    let server = start(dir.path());
    let (status, body) = scan_all(&server.url).expect_err("a scan over the damaged block");
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#InternalServerError"
    );
    assert!(
        body["message"].as_str().unwrap().contains("corrupt"),
        "{body}"
    );
}

#[test]
fn damage_in_the_middle_of_the_journal_fails_the_open_and_check_names_the_file() {
    let dir = written_dir(200);
    let journal = journals(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&journal).unwrap();
    let at = find(&bytes, format!("value-{:06}", 100).as_bytes()).unwrap();
    flip(&journal, at + 2, 0x01);

    let (code, report) = check_json(dir.path());
    assert_eq!(code, 2, "{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains(&journal.display().to_string()), "{error}");
    assert!(error.contains("offset"), "{error}");

    let stderr = try_start(dir.path())
        .map(|_| ())
        .expect_err("the server must not open");
    assert!(stderr.contains("journal"), "{stderr}");
    // Nothing was truncated: the damaged journal is left for the operator.
    assert_eq!(std::fs::read(&journal).unwrap().len(), bytes.len());
}

#[test]
fn a_torn_journal_tail_recovers_to_the_last_whole_write() {
    let dir = written_dir(200);
    let journal = journals(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&journal).unwrap();
    // The last write (items 175..200) torn in the middle: zeros from there on.
    let at = find(&bytes, format!("value-{:06}", 190).as_bytes()).unwrap();
    for b in &mut bytes[at..] {
        *b = 0;
    }
    std::fs::write(&journal, bytes).unwrap();

    // Whole writes before the torn one survive, in order; the torn one is gone.
    let (code, report) = check_json(dir.path());
    assert_eq!(code, 0, "{report:#}");
    let n = report["tables"][0]["items"].as_u64().unwrap() as usize;
    assert!((175..190).contains(&n), "{n} items after the tear");
    let server = start(dir.path());
    let mut keys: Vec<String> = scan_all(&server.url)
        .unwrap()
        .iter()
        .map(|i| i["pk"]["S"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    let expected: Vec<String> = (0..n).map(|i| format!("k{i:06}")).collect();
    assert_eq!(keys, expected);
}

/// The keyspace of index `by_g` of table `tab`, from the catalog.
fn gsi_keyspace(storage: &FjallStorage) -> String {
    let raw = storage.get("catalog", b"tab").unwrap().unwrap();
    let def: Value = serde_json::from_slice(&raw).unwrap();
    def["global_indexes"][0]["keyspace"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn repair_rebuilds_a_broken_index_after_asking() {
    let dir = written_dir(500);
    {
        let storage = FjallStorage::open(dir.path()).unwrap();
        let ks = gsi_keyspace(&storage);
        let mut keys = Vec::new();
        storage
            .scan(
                &ks,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
                &mut |k, _| {
                    keys.push(k.to_vec());
                    keys.len() < 5
                },
            )
            .unwrap();
        let mut batch = WriteBatch::default();
        for k in &keys[..3] {
            batch.delete(&ks, k.as_slice());
        }
        storage.write(batch, Durability::Sync).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let (code, report) = check_json(dir.path());
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["problem_count"], 3);
    let p = &report["problems"][0];
    assert_eq!(p["kind"], "missing_index_entry");
    assert_eq!(p["table"], "tab");
    assert_eq!(p["index"], "by_g");
    assert!(p["key"].as_str().unwrap().starts_with("pk=\"k"), "{p}");

    // --dry-run changes nothing; without a terminal and without --yes, repair refuses.
    let (code, out, _) = run(&["repair", "--data-dir", d, "--dry-run"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("would rebuild index by_g of table tab"),
        "{out}"
    );
    let (code, _, err) = run(&["repair", "--data-dir", d]);
    assert_eq!(code, 1);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(check_json(dir.path()).1["problem_count"], 3);

    let (code, out, err) = run(&["repair", "--data-dir", d, "--yes"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(
        out.contains("rebuilt index by_g of table tab: 500 entries"),
        "{out}"
    );
    let (code, report) = check_json(dir.path());
    assert_eq!(code, 0, "{report:#}");

    let server = start(dir.path());
    let (st, body) = call_json(
        &server.url,
        "Query",
        json!({
            "TableName": "tab", "IndexName": "by_g",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": {"S": "g3"}},
            "Select": "COUNT"
        }),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["Count"], 50);
    assert_eq!(scan_all(&server.url).unwrap().len(), 500);
}

mod bit_flips {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    use super::*;

    const ITEMS: usize = 6_000;

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(e.file_name());
            if e.path().is_dir() {
                copy_dir(&e.path(), &target);
            } else if e.file_name() != "lock" {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }

    /// Journal bytes up to the last written batch, table files whole: where flips matter.
    fn targets(dir: &Path) -> Vec<(PathBuf, usize)> {
        let mut out: Vec<(PathBuf, usize)> = table_files(dir)
            .into_iter()
            .map(|p| {
                let len = std::fs::metadata(&p).unwrap().len() as usize;
                (p, len)
            })
            .collect();
        for j in journals(dir) {
            let bytes = std::fs::read(&j).unwrap();
            let end = bytes
                .windows(4)
                .rposition(|w| w == b"FJL\x03")
                .map_or(0, |p| p + 4);
            if end > 0 {
                out.push((j, end));
            }
        }
        out.sort();
        out
    }

    /// One case: flip the bits, start a server, read everything.
    fn case(
        template: &Path,
        flips: &[(prop::sample::Index, prop::sample::Index, u8)],
    ) -> Result<(), TestCaseError> {
        let case = tempfile::tempdir().unwrap();
        copy_dir(template, case.path());
        let targets = targets(case.path());
        prop_assert!(targets.len() > 1, "{targets:?}");
        for (file, offset, bit) in flips {
            let (path, len) = &targets[file.index(targets.len())];
            flip(path, offset.index(*len), 1 << bit);
        }
        let Ok((mut child, url)) = try_start(case.path()) else {
            return Ok(()); // refused to open: an error, not wrong data
        };
        let outcome = std::panic::catch_unwind(|| scan_all(&url));
        let _ = child.kill();
        let _ = child.wait();
        let Ok(outcome) = outcome else {
            return Err(TestCaseError::fail("the scan failed to get an answer"));
        };
        match outcome {
            Err((status, body)) => {
                prop_assert_eq!(status, 500, "{}", body);
                prop_assert!(
                    body["message"].as_str().unwrap_or("").contains("corrupt"),
                    "{}",
                    body
                );
            }
            Ok(items) => {
                prop_assert_eq!(items.len(), ITEMS, "items lost silently");
                for item in items {
                    let pk = item["pk"]["S"].as_str().unwrap();
                    let i: usize = pk[1..].parse().unwrap();
                    prop_assert_eq!(item["v"]["S"].as_str().unwrap(), value_of(i));
                    let g = format!("g{}", i % 10);
                    prop_assert_eq!(item["g"]["S"].as_str().unwrap(), g.as_str());
                }
            }
        }
        Ok(())
    }

    /// Flipped bits anywhere in the written data (sealed table files, the journal's written
    /// part): the server refuses to open, or every read answers the right items or a 500
    /// naming corruption; never a wrong or a missing item. 8 cases here (each starts a
    /// server); raise `FERRODYN_FLIP_CASES` to run more by hand.
    #[test]
    fn random_bit_flips_never_serve_wrong_data() {
        let template = written_dir(ITEMS);
        let cases = std::env::var("FERRODYN_FLIP_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
                0u8..8,
            ),
            1..4,
        );
        runner
            .run(&strategy, |flips| case(template.path(), &flips))
            .unwrap();
    }
}
