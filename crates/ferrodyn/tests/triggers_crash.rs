//! Crash safety of stream triggers: the real server binary is killed with SIGKILL several
//! times while 10,000 changes flow from a writer through a trigger to an HTTP receiver. After
//! the last restart every acknowledged change has arrived at least once, and per item the
//! first arrivals are in write order; redeliveries (batches not checkpointed before a crash)
//! are counted and printed. Also the `ferrodyn triggers` CLI against the binary.

mod trigger_support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrodyn_testkit::ServerProcess;
use serde_json::json;
use trigger_support::{admin, pk_v, stream_table, Receiver, Reply};

const ITEMS: usize = 200;
const VERSIONS: i64 = 50;

fn start(dir: &Path) -> ServerProcess {
    ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_ferrodyn")), dir)
}

#[test]
fn kill_9_loses_no_change_and_keeps_per_item_order() {
    let dir = tempfile::tempdir().unwrap();
    // A little slow, so that batches are in flight when the server dies.
    let rx = Receiver::start(|_| Reply::slow_ok(Duration::from_millis(3)));
    let mut server = start(dir.path());
    stream_table(&server.url, "orders");
    let (status, v) = admin(
        &server.url,
        "CreateTrigger",
        json!({"TableName": "orders", "Target": {"Url": rx.url}, "BatchSize": 100,
            "StartingPosition": "TRIM_HORIZON"}),
    );
    assert_eq!(status, 200, "{v}");

    let url = Arc::new(Mutex::new(server.url.clone()));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (url, done) = (url.clone(), done.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            for v in 1..=VERSIONS {
                for chunk in (0..ITEMS).collect::<Vec<_>>().chunks(25) {
                    let puts: Vec<_> = chunk
                        .iter()
                        .map(|i| {
                            json!({"PutRequest": {"Item": {"pk": {"S": format!("item{i}")},
                                "v": {"N": v.to_string()}}}})
                        })
                        .collect();
                    let body = json!({"RequestItems": {"orders": puts}}).to_string();
                    // Retried until acknowledged (the server may be down or restarting).
                    loop {
                        let u = url.lock().unwrap().clone();
                        match ferrodyn_testkit::call(
                            &client,
                            &u,
                            "DynamoDB_20120810.BatchWriteItem",
                            body.clone(),
                        ) {
                            Ok((200, text)) if text.contains("\"UnprocessedItems\":{}") => break,
                            _ => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // Crashes while changes are written and delivered, and while the trigger catches up.
    let mut kills = 0;
    let mut at_kill = Vec::new();
    while !done.load(Ordering::SeqCst) || kills < 6 {
        std::thread::sleep(Duration::from_millis(300));
        at_kill.push(rx.acknowledged().len());
        server.kill9();
        kills += 1;
        server = start(dir.path());
        *url.lock().unwrap() = server.url.clone();
    }
    writer.join().unwrap();

    let want: HashSet<(String, i64)> = (0..ITEMS)
        .flat_map(|i| (1..=VERSIONS).map(move |v| (format!("item{i}"), v)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let got: HashSet<(String, i64)> = rx.acknowledged().iter().map(pk_v).collect();
        if want.is_subset(&got) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} changes arrived",
            want.intersection(&got).count(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let records = rx.acknowledged();
    let mut firsts: HashMap<String, Vec<i64>> = HashMap::new();
    let mut seen: HashSet<(String, i64)> = HashSet::new();
    let mut seen_seq: HashSet<String> = HashSet::new();
    let mut redelivered = 0usize;
    for r in &records {
        let seq = r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned();
        if !seen_seq.insert(seq) {
            redelivered += 1;
        }
        let (pk, v) = pk_v(r);
        if seen.insert((pk.clone(), v)) {
            firsts.entry(pk).or_default().push(v);
        }
    }
    for (pk, vs) in &firsts {
        assert_eq!(
            vs,
            &(1..=VERSIONS).collect::<Vec<_>>(),
            "first arrivals of {pk} out of order"
        );
    }
    println!(
        "triggers crash test: {kills} kills (records received at each: {at_kill:?}), {} records received for {} changes, {redelivered} redelivered (same sequence number), {} extra writes by the writer's retries",
        records.len(),
        want.len(),
        records.len() - redelivered - want.len(),
    );
}

/// `ferrodyn triggers create|list|describe|disable|enable|delete` against the real binary.
#[test]
fn the_cli_manages_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_| Reply::ok());
    let server = start(dir.path());
    stream_table(&server.url, "clitable");
    let cli = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodyn"))
            .arg("triggers")
            .args(args)
            .args(["--endpoint", &server.url])
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(text.lines().next().unwrap_or("null")).unwrap()
    };
    let created = cli(&[
        "create",
        "--table",
        "clitable",
        "--url",
        &rx.url,
        "--batch-size",
        "5",
        "--starting-position",
        "TRIM_HORIZON",
        "--max-retries",
        "3",
        "--bisect-on-error",
        "--report-batch-item-failures",
        "--filter",
        r#"{"eventName": ["INSERT"]}"#,
        "--on-failure-table",
        "clitable-dlq",
        "--parallelization",
        "2",
    ]);
    let id = created["TriggerId"].as_str().unwrap().to_owned();
    let s = &created["Settings"];
    assert_eq!(s["BatchSize"], 5);
    assert_eq!(s["ParallelizationFactor"], 2);
    assert_eq!(s["MaximumRetryAttempts"], 3);
    assert_eq!(s["BisectBatchOnFunctionError"], true);
    assert_eq!(
        s["DestinationConfig"]["OnFailure"]["Destination"],
        "clitable-dlq"
    );
    assert_eq!(
        cli(&["list", "--table", "clitable"])["TriggerId"],
        id.as_str()
    );
    assert_eq!(cli(&["disable", &id])["State"], "Disabled");
    assert_eq!(cli(&["describe", &id])["State"], "Disabled");
    assert_eq!(cli(&["enable", &id])["State"], "Enabled");
    assert_eq!(cli(&["delete", &id])["TriggerId"], id.as_str());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodyn"))
        .args(["triggers", "describe", &id, "--endpoint", &server.url])
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ResourceNotFoundException"));
}
