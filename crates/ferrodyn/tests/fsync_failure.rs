//! A failing fsync (fsyncgate), injected at the system-call boundary: the real server binary
//! runs with the `ferrodyn-faultfs` library preloaded, and fsync/fdatasync of files in its data
//! directory start failing with EIO. The write waiting on that sync is refused, every later
//! write too (even once fsync works again: the kernel may have dropped the pages the failed
//! sync was to write), `/health/ready` answers 503 with the reason, reads go on; after kill -9
//! and a restart without the fault, every acknowledged write is there.
//!
//! The promise about refused writes is only that they were never acknowledged: a refused write
//! may or may not be present after the restart (here its journal bytes usually are still in
//! the page cache, so it usually is).

use std::path::Path;
use std::time::Duration;

use ferrodyn_testkit::{call_json, http_get, ok_json, pk_numbers, FaultyDir};
use serde_json::{json, Value};

const INTERNAL: &str = "com.amazonaws.dynamodb.v20120810#InternalServerError";

fn put(url: &str, key: &str, v: u64) -> (u16, Value) {
    call_json(
        url,
        "PutItem",
        json!({"TableName": "tbl", "Item": {"pk": {"S": key}, "v": {"N": v.to_string()}}}),
    )
}

fn assert_refused(status: u16, body: &Value) {
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["__type"], INTERNAL, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("The storage engine refuses writes: syncing the journal to disk failed")
            && message.contains("Input/output error"),
        "the message names the cause: {message}"
    );
}

#[test]
fn a_failed_fsync_refuses_writes_until_a_restart_and_loses_nothing_acknowledged() {
    let binary = Path::new(env!("CARGO_BIN_EXE_ferrodyn"));
    let dir = FaultyDir::new(binary, &["--ttl-interval", "0.2"]);
    let mut server = dir.start(binary);
    let url = server.url.clone();
    ok_json(
        &url,
        "CreateTable",
        json!({"TableName": "tbl", "BillingMode": "PAY_PER_REQUEST",
               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
    );
    let mut acked = std::collections::BTreeMap::new();
    for i in 0..30u64 {
        let (status, body) = put(&url, &format!("k{i}"), i);
        assert_eq!(status, 200, "{body}");
        acked.insert(format!("k{i}"), i);
    }

    // Every fsync/fdatasync of a file in the data directory now fails.
    dir.inject("sync EIO\n");
    let (status, body) = put(&url, "refused0", 0);
    assert_refused(status, &body);
    let (status, body) = http_get(&url, "/health/ready");
    assert_eq!(status, 503, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "failed", "{body}");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .contains("Input/output error"),
        "{body}"
    );

    // fsync works again, but the engine does not trust it: writes stay refused.
    dir.inject("");
    for i in 1..10u64 {
        let (status, body) = put(&url, &format!("refused{i}"), i);
        assert_refused(status, &body);
    }
    let (status, body) = call_json(
        &url,
        "CreateTable",
        json!({"TableName": "other", "BillingMode": "PAY_PER_REQUEST",
               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
    );
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["__type"], INTERNAL, "{body}");
    assert_eq!(http_get(&url, "/health/ready").0, 503);

    // Reads go on: every acknowledged write is readable.
    let item = ok_json(
        &url,
        "GetItem",
        json!({"TableName": "tbl", "Key": {"pk": {"S": "k7"}}, "ConsistentRead": true}),
    );
    assert_eq!(item["Item"]["v"]["N"], "7");
    let seen = pk_numbers(&url, "tbl");
    for (k, v) in &acked {
        assert_eq!(seen.get(k), Some(v), "{k}");
    }
    // The background tasks (TTL, stream trimming, backups) pause instead of failing each
    // round: the log holds the one failure line and no more after a few rounds.
    std::thread::sleep(Duration::from_millis(2500));
    let text = std::fs::read_to_string(&dir.log).unwrap();
    assert_eq!(text.matches("STORAGE FAILED").count(), 1, "log:\n{text}");
    assert!(
        !text.contains("sweep failed") && !text.contains("trim failed"),
        "log:\n{text}"
    );

    // A restart without the fault recovers from the journal: every acknowledged write is
    // there, writes are accepted again. (Refused writes may or may not be there.)
    server.kill9();
    let server = dir.start_plain(binary);
    let url = server.url.clone();
    assert_eq!(http_get(&url, "/health/ready").0, 200);
    let seen = pk_numbers(&url, "tbl");
    for (k, v) in &acked {
        assert_eq!(seen.get(k), Some(v), "{k} lost after the restart");
    }
    for k in seen.keys() {
        assert!(
            acked.contains_key(k) || k.starts_with("refused"),
            "{k} was never written"
        );
    }
    let (status, body) = put(&url, "after", 1);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ok_json(
            &url,
            "GetItem",
            json!({"TableName": "tbl", "Key": {"pk": {"S": "after"}}, "ConsistentRead": true})
        )["Item"]["v"]["N"],
        "1"
    );
}
