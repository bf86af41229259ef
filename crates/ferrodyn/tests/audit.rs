//! The audit log of the real binary: kill -9 during concurrent writes, then every acknowledged
//! write has its record (with the written image), the hash chain verifies through the admin API
//! and through `ferrodyn audit verify`, and `ferrodyn audit` prints the records as JSON lines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrodyn_testkit::ServerProcess;

const BIN: &str = env!("CARGO_BIN_EXE_ferrodyn");

fn start(dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start_with(
        std::path::Path::new(BIN),
        dir,
        &["--auth", "none", "--audit", "on"],
    )
}

fn call(
    client: &reqwest::blocking::Client,
    url: &str,
    target: &str,
    body: String,
) -> (u16, String) {
    ferrodyn_testkit::call(client, url, target, body).expect("request")
}

/// Every record of the log, through QueryAuditLog's paging.
fn all_records(client: &reqwest::blocking::Client, url: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut start: Option<u64> = None;
    loop {
        let body = match start {
            Some(s) => format!(r#"{{"Limit":1000,"ExclusiveStartSeq":{s}}}"#),
            None => r#"{"Limit":1000}"#.to_owned(),
        };
        let (st, text) = call(client, url, "FerrodynAdmin_20261201.QueryAuditLog", body);
        assert_eq!(st, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        out.extend(v["Records"].as_array().unwrap().iter().cloned());
        match v["LastEvaluatedSeq"].as_u64() {
            Some(s) => start = Some(s),
            None => return out,
        }
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "any")
        .env("AWS_SECRET_ACCESS_KEY", "any")
        .env("FERRODYN_LOG", "error")
        .output()
        .expect("run ferrodyn")
}

#[test]
fn every_acknowledged_write_has_its_record_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let url = server.url.clone();
    let client = reqwest::blocking::Client::new();
    let (st, body) = call(
        &client,
        &url,
        "DynamoDB_20120810.CreateTable",
        r#"{"TableName":"audited","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#.into(),
    );
    assert_eq!(st, 200, "{body}");

    let acked = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let deadline = Instant::now() + Duration::from_millis(1200);
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let acked = acked.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                for i in 0..100_000u64 {
                    let key = format!("w{w}-{}", i % 50);
                    let body = format!(
                        r#"{{"TableName":"audited","Item":{{"pk":{{"S":"{key}"}},"v":{{"N":"{i}"}}}}}}"#
                    );
                    match ferrodyn_testkit::call(&client, &url, "DynamoDB_20120810.PutItem", body) {
                        Ok((200, _)) => acked.lock().unwrap().push((key, i)),
                        _ => break, // the server was killed
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    server.kill9();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "too few writes before the kill: {}",
        acked.len()
    );

    let server = start(dir.path());
    let url = server.url.clone();
    let records = all_records(&client, &url);
    // (key, value written) of every successful PutItem record.
    let mut written: HashMap<(String, u64), usize> = HashMap::new();
    let mut seqs = Vec::new();
    for r in &records {
        seqs.push(r["seq"].as_u64().unwrap());
        if r["operation"] == "PutItem" {
            assert_eq!(r["outcome"], "success", "{r}");
            assert_eq!(r["table"], "audited");
            assert_eq!(r["principal"], "anonymous");
            let key = r["key"]["pk"]["S"].as_str().unwrap().to_owned();
            assert_eq!(r["new_image"]["pk"]["S"], key.as_str(), "{r}");
            let v: u64 = r["new_image"]["v"]["N"].as_str().unwrap().parse().unwrap();
            *written.entry((key, v)).or_default() += 1;
        }
    }
    assert_eq!(records[0]["operation"], "CreateTable");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers are gapless"
    );
    for a in &acked {
        assert_eq!(
            written.get(a),
            Some(&1),
            "acknowledged write {a:?} has one record"
        );
    }

    let (st, text) = call(
        &client,
        &url,
        "FerrodynAdmin_20261201.VerifyAuditLog",
        "{}".into(),
    );
    assert_eq!(st, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["Intact"], true, "{v}");
    assert_eq!(v["Checked"].as_u64().unwrap(), records.len() as u64);

    let out = cli(&["audit", "verify", "--endpoint", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (k, val) = &acked[0];
    let key = format!(r#"{{"pk":{{"S":"{k}"}}}}"#);
    let out = cli(&[
        "audit",
        "--endpoint",
        &url,
        "--table",
        "audited",
        "--key",
        &key,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|r| r["key"]["pk"]["S"] == k.as_str()));
    assert!(lines
        .iter()
        .any(|r| r["new_image"]["v"]["N"] == val.to_string().as_str()));
}

#[test]
fn failed_writes_are_recorded_with_their_error_type() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let client = reqwest::blocking::Client::new();
    let (st, _) = call(
        &client,
        &server.url,
        "DynamoDB_20120810.CreateTable",
        r#"{"TableName":"cond","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#.into(),
    );
    assert_eq!(st, 200);
    let (st, _) = call(
        &client,
        &server.url,
        "DynamoDB_20120810.PutItem",
        r#"{"TableName":"cond","Item":{"pk":{"S":"a"}},"ConditionExpression":"attribute_exists(pk)"}"#.into(),
    );
    assert_eq!(st, 400);
    let records = all_records(&client, &server.url);
    let last = records.last().unwrap();
    assert_eq!(last["operation"], "PutItem");
    assert_eq!(last["outcome"], "ConditionalCheckFailedException");
    assert_eq!(last["key"]["pk"]["S"], "a");
    assert!(last["new_image"].is_null() && last["old_image"].is_null());
    // The time filter: nothing after the far future.
    let out = cli(&[
        "audit",
        "--endpoint",
        &server.url,
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn a_failed_partiql_write_is_recorded_with_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let url = server.url.clone();
    let client = reqwest::blocking::Client::new();
    let (st, body) = call(
        &client,
        &url,
        "DynamoDB_20120810.CreateTable",
        r#"{"TableName":"pqt","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#.into(),
    );
    assert_eq!(st, 200, "{body}");
    let insert = r#"{"Statement":"INSERT INTO \"pqt\" VALUE {'pk': 'a'}"}"#;
    let (st, body) = call(
        &client,
        &url,
        "DynamoDB_20120810.ExecuteStatement",
        insert.into(),
    );
    assert_eq!(st, 200, "{body}");
    let (st, body) = call(
        &client,
        &url,
        "DynamoDB_20120810.ExecuteStatement",
        insert.into(),
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("DuplicateItemException"), "{body}");

    let records = all_records(&client, &url);
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r["operation"] == "ExecuteStatement" && r["outcome"] != "success")
        .collect();
    assert_eq!(failed.len(), 1, "{records:#?}");
    assert_eq!(failed[0]["table"], "pqt", "{:#}", failed[0]);
}
