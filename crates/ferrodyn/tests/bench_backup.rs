//! `ferrodyn bench backup` against real servers: the scenario's checks pass on a durable
//! server (in process, through the library) and on a server the command starts itself
//! (through the binary, JSON report), with a small item count.

use ferrodyn_bench::backup::{run, BackupArgs};
use ferrodyn_testkit::TestServer;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferrodyn");

fn args(items: u64) -> BackupArgs {
    BackupArgs {
        endpoint: None,
        data_dir: None,
        port: 0,
        server_args: Vec::new(),
        items,
        item_bytes: 50,
        change_fraction: 0.1,
        samples: 60,
        connections: 4,
        table: "bk-src".into(),
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
    }
}

#[test]
fn the_scenario_restores_every_item_on_a_durable_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::durable(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt
        .block_on(run(&args(3000), &server.url, Some(dir.path())))
        .unwrap();
    assert!(report.all_ok(), "{}", report.to_text());
    let names: Vec<&str> = report.phases.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "load (BatchWriteItem)",
            "CreateBackup → AVAILABLE",
            "enable PITR",
            "changes (PITR on)",
            "RestoreTableFromBackup",
            "RestoreTableToPointInTime",
            "delete all (space back)",
        ]
    );
    assert_eq!((report.overwritten, report.deleted), (150, 150));
    assert!(report.backup_size_bytes.unwrap() > 3000 * 50);
    assert!(report.phases[0].dir_bytes.unwrap() > 0);
    let counts: Vec<(u64, u64)> = report
        .checks
        .iter()
        .map(|c| (c.expected_items, c.counted_items))
        .collect();
    assert_eq!(counts, [(2850, 2850), (3000, 3000), (3000, 3000)]);
    // Everything the scenario made is gone again.
    let tables = server.raw("ListTables", "{}").json();
    assert_eq!(tables["TableNames"], serde_json::json!([]));
    let backups = server.raw("ListBackups", r#"{"BackupType":"ALL"}"#).json();
    assert_eq!(backups["BackupSummaries"], serde_json::json!([]));
}

#[test]
fn the_command_starts_its_own_server_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(BIN)
        .args([
            "bench",
            "backup",
            "--items",
            "500",
            "--item-bytes",
            "20",
            "--samples",
            "20",
            "--connections",
            "2",
            "--json",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "ferrodyn-bench-backup/v1");
    assert_eq!(v["ok"], true);
    assert_eq!(v["config"]["items"], 500);
    assert_eq!(v["phases"].as_array().unwrap().len(), 7);
    assert!(v["phases"][0]["dir_bytes"].as_u64().unwrap() > 0);
    // The server it started used the given directory.
    assert!(std::fs::read_dir(&data).unwrap().next().is_some());
}

#[test]
fn workload_runs_still_parse_beside_the_scenario() {
    let out = std::process::Command::new(BIN)
        .args([
            "bench",
            "--endpoint",
            "http://127.0.0.1:1",
            "--workload",
            "get",
            "--quiet",
        ])
        .output()
        .unwrap();
    // Nothing listens on port 1: the run fails to connect, not to parse its options.
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach"), "{err}");
    let out = std::process::Command::new(BIN)
        .args(["bench", "backup", "--items", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--items must be at least 1"));
}
