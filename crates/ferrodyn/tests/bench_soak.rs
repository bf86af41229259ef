//! `ferrodyn bench soak` against the real binary on a durable data directory: a short soak
//! runs every kind of operation, streams, TTL and churn without an error or a failed check,
//! and samples the server process from /proc.

use ferrodyn_bench::soak::{run, SoakArgs};
use ferrodyn_testkit::ServerProcess;

const BIN: &str = env!("CARGO_BIN_EXE_ferrodyn");

#[test]
fn a_short_soak_is_clean_and_samples_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server =
        ServerProcess::start_with(std::path::Path::new(BIN), &data, &["--ttl-interval", "0.5"]);
    let csv = dir.path().join("samples.csv");
    let args = SoakArgs {
        endpoint: server.url.clone(),
        duration: 20.0,
        server_pid: Some(server.pid()),
        sample_every: 1.0,
        csv: Some(csv.clone()),
        warmup: Some(5.0),
        connections: 3,
        keys: 40,
        churn_every: 1.0,
        prefix: "soaktest".into(),
        keep: false,
        json: true,
        quiet: true,
        signing: ferrodyn_bench::SigningArgs {
            region: "us-east-1".into(),
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        },
        timeout: 30.0,
        seed: Some(7),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(run(&args)).unwrap();
    assert!(report.all_ok(), "{}", report.to_text());
    for op in [
        "PutItem",
        "GetItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "TransactWriteItems",
        "TransactGetItems",
        "ExecuteStatement",
        "GetRecords",
        "CreateTable",
        "DeleteTable",
        "UpdateTable",
    ] {
        assert!(
            report.ops.get(op).copied().unwrap_or(0) > 0,
            "no {op}: {}",
            report.to_text()
        );
    }
    assert!(report.stream_records > 100, "{}", report.to_text());
    assert!(report.ttl_deletions > 0, "{}", report.to_text());
    assert!(report.tables_created >= 1 && report.tables_deleted >= 1);
    assert!(report.gsis_added >= 1, "{}", report.to_text());
    // One sample a second, each with the server's memory and descriptors.
    assert!(report.samples.len() >= 19, "{}", report.samples.len());
    assert!(report.samples.iter().all(|s| s.rss_kib > 0 && s.fds > 0));
    let rss = report.rss_kib.expect("RSS trend");
    assert!(rss.min > 0.0 && rss.min <= rss.first && rss.first <= rss.max);
    assert!(report.fds.is_some());
    let lines = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        lines.lines().next(),
        Some("elapsed_s,rss_kib,fds,ops,errors")
    );
    assert_eq!(lines.lines().count(), report.samples.len() + 1);
    // Everything the soak created is gone again.
    let tables = ferrodyn_testkit::ok_json(&server.url, "ListTables", serde_json::json!({}));
    assert_eq!(tables["TableNames"], serde_json::json!([]), "{tables}");
    let json = report.to_json();
    assert_eq!(json["schema"], "ferrodyn-bench-soak/v1");
    assert_eq!(json["ok"], true);
}
