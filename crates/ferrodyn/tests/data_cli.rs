//! The data commands of the real binary (`ferrodyn copy|export|import|backup|restore`) against
//! real servers: copies item for item (every attribute type, indexes recreated), dry runs that
//! change nothing, refusals without `--yes` and without a terminal, resumable imports, bad input
//! lines reported, progress bars on a terminal and plain lines otherwise.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as AV, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, LocalSecondaryIndex, Projection, ProjectionType, PutRequest, ScalarAttributeType,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use ferrodyn_testkit::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_ferrodyn");

type Item = HashMap<String, AV>;

/// Runs `ferrodyn ARGS --endpoint URL` with plain progress every 0.05 s and test credentials,
/// stdin closed (no terminal).
fn cli(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args([
            "--endpoint",
            url,
            "--progress",
            "plain",
            "--progress-interval",
            "0.05",
        ])
        .env("AWS_ACCESS_KEY_ID", "ferrodyn")
        .env("AWS_SECRET_ACCESS_KEY", "ferrodyn-secret-never-printed")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .output()
        .expect("run ferrodyn")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stdout.contains("ferrodyn-secret") && !stderr.contains("ferrodyn-secret"),
        "a secret was printed"
    );
    (stdout, stderr)
}

fn attr(name: &str, t: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .unwrap()
}

fn key(name: &str, t: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .unwrap()
}

/// A table keyed (pk S, sk N) with a GSI on g (S) and an LSI on sk2 (N).
async fn create_indexed_table(client: &Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .attribute_definitions(attr("sk2", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("byG")
                .key_schema(key("g", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("s")
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("bySk2")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("sk2", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// Item `i` with every attribute type, nested documents included.
fn rich_item(i: usize) -> Item {
    let mut m = Item::new();
    m.insert("pk".into(), AV::S(format!("p{}", i % 97)));
    m.insert("sk".into(), AV::N(format!("{i}")));
    m.insert("g".into(), AV::S(format!("g{}", i % 7)));
    m.insert("sk2".into(), AV::N(format!("-{i}.5")));
    m.insert("s".into(), AV::S(format!("text \"{i}\" ünïcødé\n,;")));
    m.insert("n".into(), AV::N("1234567890123456789012345678.5".into()));
    m.insert("b".into(), AV::B(Blob::new(vec![0, 1, 2, 255, i as u8])));
    m.insert("t".into(), AV::Bool(i.is_multiple_of(2)));
    m.insert("z".into(), AV::Null(true));
    m.insert("ss".into(), AV::Ss(vec!["a".into(), format!("b{i}")]));
    m.insert(
        "ns".into(),
        AV::Ns(vec!["1".into(), "-2.25".into(), format!("{i}.125")]),
    );
    m.insert(
        "bs".into(),
        AV::Bs(vec![Blob::new(vec![1]), Blob::new(vec![2, 3, i as u8])]),
    );
    let mut inner = Item::new();
    inner.insert(
        "deep".into(),
        AV::L(vec![AV::N("0".into()), AV::S("x".into())]),
    );
    inner.insert("empty".into(), AV::M(Item::new()));
    m.insert(
        "doc".into(),
        AV::L(vec![AV::M(inner), AV::Bool(false), AV::L(vec![])]),
    );
    if i.is_multiple_of(5) {
        // Sparse: not in every item.
        m.remove("g");
    }
    m
}

async fn put_all(client: &Client, table: &str, items: Vec<Item>) {
    for chunk in items.chunks(25) {
        let writes: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(i.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let out = client
            .batch_write_item()
            .request_items(table, writes)
            .send()
            .await
            .unwrap();
        assert!(out
            .unprocessed_items
            .unwrap_or_default()
            .values()
            .all(|v| v.is_empty()));
    }
}

/// Sets in a canonical order, so two tables' items compare equal whatever order a set was
/// returned in.
fn normalize(v: &AV) -> AV {
    match v {
        AV::Ss(s) => {
            let mut s = s.clone();
            s.sort();
            AV::Ss(s)
        }
        AV::Ns(s) => {
            let mut s = s.clone();
            s.sort();
            AV::Ns(s)
        }
        AV::Bs(s) => {
            let mut s = s.clone();
            s.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            AV::Bs(s)
        }
        AV::L(l) => AV::L(l.iter().map(normalize).collect()),
        AV::M(m) => AV::M(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

/// Every item of a table, normalized and sorted by key.
async fn all_items(client: &Client, table: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            out.push(
                item.iter()
                    .map(|(k, v)| (k.clone(), normalize(v)))
                    .collect::<Item>(),
            );
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    out.sort_by_key(|i| format!("{:?}{:?}", i.get("pk"), i.get("sk")));
    out
}

async fn table_exists(client: &Client, table: &str) -> bool {
    client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_recreates_indexes_and_every_item() {
    let server = TestServer::in_memory();
    let client = server.client();
    create_indexed_table(&client, "src").await;
    put_all(&client, "src", (0..3000).map(rich_item).collect()).await;

    let (stdout, stderr) = ok(cli(
        &server.url,
        &["copy", "src", "--to", "dst", "--segments", "3"],
    ));
    assert!(
        stdout.starts_with("copied 3000 items in "),
        "summary line on stdout: {stdout}"
    );
    assert!(stderr.contains("created table dst"), "{stderr}");

    assert_eq!(
        all_items(&client, "src").await,
        all_items(&client, "dst").await
    );
    let d = client
        .describe_table()
        .table_name("dst")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(d.key_schema().len(), 2);
    let gsi = &d.global_secondary_indexes()[0];
    assert_eq!(gsi.index_name(), Some("byG"));
    assert_eq!(
        gsi.projection().unwrap().non_key_attributes(),
        &["s".to_owned()]
    );
    assert_eq!(d.local_secondary_indexes()[0].index_name(), Some("bySk2"));
    assert_eq!(
        d.billing_mode_summary().unwrap().billing_mode(),
        Some(&BillingMode::PayPerRequest)
    );
    // The index answers with the copied items (3000 less the sparse fifth, in 7 partitions).
    let by_g = client
        .query()
        .table_name("dst")
        .index_name("byG")
        .key_condition_expression("g = :g")
        .expression_attribute_values(":g", AV::S("g1".into()))
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_g.count as usize,
        (0..3000).filter(|i| i % 7 == 1 && i % 5 != 0).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_between_two_endpoints_with_plain_progress_lines() {
    let from = TestServer::in_memory();
    let to = TestServer::in_memory();
    let client = from.client();
    ferrodyn_testkit::create_hash_table(&client, "tab").await;
    let items: Vec<Item> = (0..2000)
        .map(|i| {
            let mut it = rich_item(i);
            it.insert("pk".into(), AV::S(format!("k{i}")));
            it
        })
        .collect();
    put_all(&client, "tab", items).await;
    let (stdout, stderr) = ok(cli(
        &from.url,
        &[
            "copy",
            "tab",
            "--to",
            "tab",
            "--to-endpoint",
            &to.url,
            "--segments",
            "2",
        ],
    ));
    assert!(stdout.contains("copied 2000 items"), "{stdout}");
    assert!(stdout.contains(&format!("at {}", to.url)), "{stdout}");
    // Plain progress: lines like `copied N/2000 items (P%), R items/s, M MB, ETA ...` (or the
    // unknown-total form when the lines come early).
    let _ = stderr;
    let mut a = all_items(&client, "tab").await;
    let mut b = all_items(&to.client(), "tab").await;
    a.sort_by_key(|i| format!("{:?}", i["pk"]));
    b.sort_by_key(|i| format!("{:?}", i["pk"]));
    assert_eq!(a, b);
}

#[test]
fn plain_progress_line_format() {
    // A slow enough copy for several lines: 4000 items, a line every 0.05 s.
    let server = TestServer::in_memory();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    rt.block_on(async {
        ferrodyn_testkit::create_hash_table(&client, "slow").await;
        let items = (0..4000)
            .map(|i| {
                let mut it = Item::new();
                it.insert("pk".into(), AV::S(format!("k{i}")));
                it.insert("pad".into(), AV::S("x".repeat(300)));
                it
            })
            .collect();
        put_all(&client, "slow", items).await;
    });
    let out = cli(
        &server.url,
        &["copy", "slow", "--to", "slow2", "--segments", "1"],
    );
    let (_, stderr) = ok(out);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("copied "))
        .collect();
    assert!(!lines.is_empty(), "no progress line in {stderr}");
    for l in &lines {
        let re_ok = (l.contains("/4000 items (") && l.contains("%), ") && l.contains(" ETA "))
            || l.contains(" items, ");
        assert!(
            re_ok && l.contains(" items/s, ") && l.contains(" MB"),
            "{l}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_dry_run_prints_the_plan_and_changes_nothing() {
    let server = TestServer::in_memory();
    let client = server.client();
    create_indexed_table(&client, "src").await;
    put_all(&client, "src", (0..123).map(rich_item).collect()).await;
    let (stdout, _) = ok(cli(
        &server.url,
        &["copy", "src", "--to", "dst", "--dry-run"],
    ));
    assert!(
        stdout.contains("123 items (counted with Scan Select=COUNT)"),
        "{stdout}"
    );
    assert!(stdout.contains("would create table dst"), "{stdout}");
    assert!(
        stdout.contains("byG") && stdout.contains("bySk2"),
        "{stdout}"
    );
    assert!(stdout.contains("would copy 123 items"), "{stdout}");
    assert!(stdout.contains("nothing changed"), "{stdout}");
    assert!(!table_exists(&client, "dst").await);

    // Into an existing empty table: still nothing written.
    ferrodyn_testkit::create_hash_table(&client, "empty").await;
    let (stdout, _) = ok(cli(
        &server.url,
        &["copy", "src", "--to", "empty", "--dry-run"],
    ));
    assert!(
        stdout.contains("exists") && stdout.contains("is empty"),
        "{stdout}"
    );
    assert!(all_items(&client, "empty").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_into_a_table_with_items_refuses_without_yes_and_a_terminal() {
    let server = TestServer::in_memory();
    let client = server.client();
    ferrodyn_testkit::create_hash_table(&client, "aaa").await;
    ferrodyn_testkit::create_hash_table(&client, "bbb").await;
    let one = |k: &str| {
        let mut i = Item::new();
        i.insert("pk".into(), AV::S(k.into()));
        i
    };
    put_all(&client, "aaa", vec![one("x"), one("y")]).await;
    put_all(&client, "bbb", vec![one("old")]).await;
    let out = cli(&server.url, &["copy", "aaa", "--to", "bbb"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("already has items"), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(all_items(&client, "bbb").await.len(), 1);

    let (stdout, _) = ok(cli(&server.url, &["copy", "aaa", "--to", "bbb", "--yes"]));
    assert!(stdout.contains("copied 2 items"), "{stdout}");
    assert_eq!(all_items(&client, "bbb").await.len(), 3);
}

#[test]
fn errors_print_type_and_message_and_exit_codes_follow_the_convention() {
    let server = TestServer::in_memory();
    let out = cli(&server.url, &["copy", "missing", "--to", "x"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("ResourceNotFoundException: Requested resource not found"),
        "{stderr}"
    );
    // Usage errors: exit status 2.
    let out = cli(&server.url, &["copy", "a", "--to", "b", "--segments", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = cli(&server.url, &["copy", "a", "--to", "a"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    let out = cli(&server.url, &["restore", "a", "--into", "b"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--to-time or --latest is required"
    );
    let out = cli(
        &server.url,
        &["restore", "a", "--to-time", "yesterday", "--into", "b"],
    );
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    // An unreachable endpoint: a failure, not a hang.
    let out = cli("http://127.0.0.1:1", &["copy", "aaa", "--to", "bbb"]);
    assert_eq!(out.status.code(), Some(1));
}

/// `--help` of a command: every flag it lists, each with a description.
fn help_flags(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .output()
        .expect("run ferrodyn");
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_of_each_command_lists_every_flag() {
    let common = [
        "--endpoint",
        "--region",
        "--profile",
        "--progress",
        "--progress-interval",
    ];
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["copy"],
            &["--to", "--to-endpoint", "--segments", "--dry-run", "--yes"],
        ),
        (
            &["export"],
            &[
                "--to",
                "--format",
                "--at",
                "--segments",
                "--compression",
                "--dry-run",
            ],
        ),
        (
            &["import"],
            &[
                "--table",
                "--format",
                "--compression",
                "--create",
                "--hash-key",
                "--range-key",
                "--writers",
                "--checkpoint",
                "--dry-run",
                "--yes",
            ],
        ),
        (&["backup", "create"], &["--name", "--no-wait", "--dry-run"]),
        (&["backup", "list"], &["--table"]),
        (&["backup", "describe"], &[]),
        (&["backup", "delete"], &["--yes", "--dry-run"]),
        (
            &["backup", "restore"],
            &["--into", "--no-wait", "--dry-run"],
        ),
        (
            &["restore"],
            &["--to-time", "--latest", "--into", "--no-wait", "--dry-run"],
        ),
    ];
    for (cmd, flags) in cases {
        let help = help_flags(cmd);
        let lines: Vec<&str> = help.lines().collect();
        for flag in flags.iter().chain(common.iter()) {
            let at = lines
                .iter()
                .position(|l| {
                    let l = l.trim_start();
                    (l.starts_with("--") || l.get(2..4) == Some(", "))
                        && l.split([' ', ',', '=']).any(|w| w == *flag)
                })
                .unwrap_or_else(|| panic!("{cmd:?} --help lacks {flag}:\n{help}"));
            // A description follows the flag: on its line, or on the next (clap's long help).
            let same_line = lines[at]
                .trim_start()
                .split_once("  ")
                .map_or("", |(_, d)| d.trim());
            let next_line = lines.get(at + 1).map_or("", |l| l.trim());
            let description = if same_line.is_empty() {
                next_line
            } else {
                same_line
            };
            assert!(
                description.len() > 3 && !description.starts_with('-'),
                "{cmd:?} {flag} has no description:\n{help}"
            );
        }
    }
    let top = help_flags(&[]);
    for cmd in ["copy", "export", "import", "backup", "restore"] {
        assert!(
            top.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} missing from ferrodyn --help"
        );
    }
}

/// `script` (util-linux) runs the command under a pseudo-terminal; its output is the terminal's.
fn under_terminal(command: &str) -> String {
    let out = Command::new("script")
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .env("AWS_ACCESS_KEY_ID", "ferrodyn")
        .env("AWS_SECRET_ACCESS_KEY", "ferrodyn")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("`script` from util-linux runs commands under a pseudo-terminal");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn on_a_terminal_progress_is_a_bar() {
    let server = TestServer::in_memory();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    rt.block_on(async {
        ferrodyn_testkit::create_hash_table(&client, "tty").await;
        let items = (0..500)
            .map(|i| {
                let mut it = Item::new();
                it.insert("pk".into(), AV::S(format!("k{i}")));
                it
            })
            .collect();
        put_all(&client, "tty", items).await;
    });
    let screen = under_terminal(&format!(
        "{BIN} copy tty --to tty2 --endpoint {}",
        server.url
    ));
    // The bar: `copied [=====>   ] 500/500 items ... items/s, ... MB, ETA ...`.
    assert!(
        screen.contains("copied [") && screen.contains("500/500 items"),
        "no progress bar drawn:\n{screen:?}"
    );
    assert!(screen.contains("copied 500 items in "), "{screen:?}");
}

async fn keyed_items(client: &Client, table: &str, from: usize, to: usize) {
    let items = (from..to)
        .map(|i| {
            let mut it = rich_item(i);
            it.insert("pk".into(), AV::S(format!("k{i}")));
            it
        })
        .collect();
    put_all(client, table, items).await;
}

/// The ARN in `backup create`'s summary line (`backup NAME of TABLE: ARN (AVAILABLE)`).
fn arn_of(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("arn:"))
        .unwrap_or_else(|| panic!("no ARN in {stdout}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_create_list_describe_restore_and_delete() {
    let server = TestServer::in_memory();
    let client = server.client();
    ferrodyn_testkit::create_hash_table(&client, "orders").await;
    keyed_items(&client, "orders", 0, 300).await;

    let (stdout, _) = ok(cli(
        &server.url,
        &["backup", "create", "orders", "--dry-run"],
    ));
    assert!(stdout.contains("would create backup orders-"), "{stdout}");
    let (stdout, _) = ok(cli(&server.url, &["backup", "list", "--table", "orders"]));
    assert!(
        stdout.trim().is_empty(),
        "the dry run created a backup: {stdout}"
    );

    let (stdout, _) = ok(cli(
        &server.url,
        &["backup", "create", "orders", "--name", "nightly"],
    ));
    assert!(stdout.contains("(AVAILABLE)"), "{stdout}");
    let arn = arn_of(&stdout);
    let (stdout, _) = ok(cli(&server.url, &["backup", "list", "--table", "orders"]));
    assert!(
        stdout.contains(&arn) && stdout.contains("nightly") && stdout.contains("AVAILABLE"),
        "{stdout}"
    );
    let (stdout, _) = ok(cli(&server.url, &["backup", "describe", &arn]));
    assert!(stdout.contains("BackupName: nightly"), "{stdout}");
    assert!(stdout.contains("TableName: orders"), "{stdout}");

    // Changes after the backup are not in the restored table.
    keyed_items(&client, "orders", 300, 350).await;
    let (stdout, _) = ok(cli(
        &server.url,
        &[
            "backup",
            "restore",
            &arn,
            "--into",
            "orders-restored",
            "--dry-run",
        ],
    ));
    assert!(stdout.contains("would restore backup nightly"), "{stdout}");
    assert!(!table_exists(&client, "orders-restored").await);
    let (stdout, _) = ok(cli(
        &server.url,
        &["backup", "restore", &arn, "--into", "orders-restored"],
    ));
    assert!(stdout.contains("(ACTIVE)"), "{stdout}");
    let restored = all_items(&client, "orders-restored").await;
    assert_eq!(restored.len(), 300);

    // Deleting is destructive: refused without --yes and a terminal; the dry run keeps it.
    let out = cli(&server.url, &["backup", "delete", &arn]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("--yes"), "{stderr}");
    let (stdout, _) = ok(cli(&server.url, &["backup", "delete", &arn, "--dry-run"]));
    assert!(stdout.contains("would delete backup nightly"), "{stdout}");
    let (stdout, _) = ok(cli(&server.url, &["backup", "list"]));
    assert!(stdout.contains(&arn), "{stdout}");
    ok(cli(&server.url, &["backup", "delete", &arn, "--yes"]));
    let (stdout, _) = ok(cli(&server.url, &["backup", "list", "--table", "orders"]));
    assert!(
        !stdout
            .lines()
            .any(|l| l.contains(&arn) && l.contains("AVAILABLE")),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_a_point_in_time_and_to_the_latest() {
    let server = TestServer::in_memory();
    let client = server.client();
    ferrodyn_testkit::create_hash_table(&client, "ledger").await;
    client
        .update_continuous_backups()
        .table_name("ledger")
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    keyed_items(&client, "ledger", 0, 100).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    keyed_items(&client, "ledger", 100, 150).await;

    let at = at.to_string();
    let (stdout, _) = ok(cli(
        &server.url,
        &[
            "restore",
            "ledger",
            "--to-time",
            &at,
            "--into",
            "ledger-then",
            "--dry-run",
        ],
    ));
    assert!(stdout.contains("would restore table ledger"), "{stdout}");
    assert!(!table_exists(&client, "ledger-then").await);
    ok(cli(
        &server.url,
        &[
            "restore",
            "ledger",
            "--to-time",
            &at,
            "--into",
            "ledger-then",
        ],
    ));
    assert_eq!(all_items(&client, "ledger-then").await.len(), 100);
    ok(cli(
        &server.url,
        &["restore", "ledger", "--latest", "--into", "ledger-now"],
    ));
    assert_eq!(all_items(&client, "ledger-now").await.len(), 150);
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_keeps_every_attribute_type() {
    let server = TestServer::in_memory();
    let client = server.client();
    create_indexed_table(&client, "src").await;
    put_all(&client, "src", (0..1000).map(rich_item).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("export");
    let out = out_dir.to_str().unwrap();

    let (stdout, _) = ok(cli(
        &server.url,
        &["export", "src", "--to", out, "--dry-run"],
    ));
    assert!(stdout.contains("would export 1000 items"), "{stdout}");
    assert!(!out_dir.exists(), "the dry run created {out}");

    let (stdout, stderr) = ok(cli(&server.url, &["export", "src", "--to", out]));
    assert!(stdout.starts_with("exported 1000 items in "), "{stdout}");
    assert!(stderr.contains("wrote "), "{stderr}");
    // DynamoDB's export layout.
    let files = files_under(&out_dir);
    let names: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(&out_dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("AWSDynamoDB/") && n.ends_with("/manifest-summary.json")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("/manifest-files.json")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("/data/") && n.ends_with(".json.gz")),
        "{names:?}"
    );
    let summary = files
        .iter()
        .find(|p| p.ends_with("manifest-summary.json"))
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    assert_eq!(summary["itemCount"], 1000);
    assert_eq!(summary["outputFormat"], "DYNAMODB_JSON");

    // A dry-run import lists the files and creates nothing.
    let (stdout, _) = ok(cli(
        &server.url,
        &[
            "import",
            out,
            "--table",
            "copy",
            "--create",
            "--hash-key",
            "pk:S",
            "--range-key",
            "sk:N",
            "--dry-run",
        ],
    ));
    assert!(stdout.contains("would create table copy"), "{stdout}");
    assert!(
        stdout.contains("would import 1000 items from 1 files"),
        "{stdout}"
    );
    assert!(stdout.contains(".json.gz ("), "{stdout}");
    assert!(!table_exists(&client, "copy").await);

    let (stdout, _) = ok(cli(
        &server.url,
        &[
            "import",
            out,
            "--table",
            "copy",
            "--create",
            "--hash-key",
            "pk:S",
            "--range-key",
            "sk:N",
        ],
    ));
    assert!(stdout.starts_with("imported 1000 items in "), "{stdout}");
    assert!(stdout.contains("0 bad lines"), "{stdout}");
    assert_eq!(
        all_items(&client, "src").await,
        all_items(&client, "copy").await
    );
    assert!(
        !out_dir.join(".ferrodyn-import-copy.json").exists(),
        "the checkpoint is removed after a complete import"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_and_import() {
    let server = TestServer::in_memory();
    let client = server.client();
    client
        .create_table()
        .table_name("people")
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let items: Vec<Item> = (0..200)
        .map(|i| {
            let mut it = Item::new();
            it.insert("pk".into(), AV::S(format!("p{}", i % 10)));
            it.insert("sk".into(), AV::N(format!("{i}")));
            it.insert("name".into(), AV::S(format!("Name, \"quoted\"\nline {i}")));
            if i % 3 == 0 {
                it.insert("city".into(), AV::S("Zürich".into()));
            }
            it
        })
        .collect();
    put_all(&client, "people", items).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (stdout, _) = ok(cli(
        &server.url,
        &["export", "people", "--to", out, "--format", "csv"],
    ));
    assert!(stdout.contains("exported 200 items"), "{stdout}");
    let csv = std::fs::read_to_string(dir.path().join("people.csv")).unwrap();
    assert!(csv.starts_with("pk,sk,city,name\n"), "{}", &csv[..40]);
    let (stdout, _) = ok(cli(
        &server.url,
        &[
            "import",
            out,
            "--table",
            "people2",
            "--format",
            "csv",
            "--create",
            "--hash-key",
            "pk:S",
            "--range-key",
            "sk:N",
        ],
    ));
    assert!(stdout.contains("imported 200 items"), "{stdout}");
    assert_eq!(
        all_items(&client, "people").await,
        all_items(&client, "people2").await
    );
}

/// `{"Item":{"pk":{"S":KEY}}}` lines for keys `prefix0..prefixN`.
fn json_lines(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("{{\"Item\":{{\"pk\":{{\"S\":\"{prefix}{i}\"}},\"v\":{{\"N\":\"{i}\"}}}}}}\n")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_bad_lines_and_loads_the_rest() {
    let server = TestServer::in_memory();
    let client = server.client();
    ferrodyn_testkit::create_hash_table(&client, "target").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.json"),
        [
            r#"{"Item":{"pk":{"S":"good1"}}}"#,
            r#"{"Item":{"pk":{"S":"#,
            r#"{"Item":{"pk":{"S":"good2"},"n":{"N":"12.5"}}}"#,
            r#"{"Item":{"pk":{"S":"bad-number"},"n":{"N":"x"}}}"#,
            r#"{"Item":{"other":{"S":"no key"}}}"#,
            r#"{"pk":{"S":"not wrapped"}}"#,
            "",
            r#"{"Item":{"pk":{"S":"good3"}}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.json"), json_lines("b", 30)).unwrap();
    let d = dir.path().to_str().unwrap();

    let (stdout, stderr) = ok(cli(
        &server.url,
        &["import", d, "--table", "target", "--dry-run"],
    ));
    assert!(stdout.contains("file a.json ("), "{stdout}");
    assert!(
        stdout.contains("would import 34 items from 2 files"),
        "{stdout}"
    );
    assert!(
        stderr.contains("a.json:2: Invalid DynamoDB JSON"),
        "{stderr}"
    );
    assert!(all_items(&client, "target").await.is_empty());

    let (stdout, stderr) = ok(cli(&server.url, &["import", d, "--table", "target"]));
    assert!(
        stderr.contains("a.json:2: Invalid DynamoDB JSON"),
        "{stderr}"
    );
    assert!(
        stderr.contains("a.json:4: The parameter cannot be converted to a numeric value: x"),
        "{stderr}"
    );
    // Refused by the server: the key is missing. Reported with the server's __type and message.
    assert!(
        stderr.contains("a.json:5: PutItem: ValidationException: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("a.json:6: Invalid DynamoDB JSON: the object has no Item"),
        "{stderr}"
    );
    assert!(stdout.contains("imported 33 items"), "{stdout}");
    assert!(stdout.contains("4 bad lines skipped"), "{stdout}");
    let keys: Vec<String> = all_items(&client, "target")
        .await
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(keys.len(), 33);
    for k in ["good1", "good2", "good3", "b0", "b29"] {
        assert!(keys.contains(&k.to_owned()), "{k} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_resumes_from_a_checkpoint_without_redoing_work() {
    let server = TestServer::in_memory();
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    for f in 0..5 {
        std::fs::write(
            dir.path().join(format!("part{f}.json")),
            json_lines(&format!("f{f}-"), 40),
        )
        .unwrap();
    }
    let size = |f: usize| {
        std::fs::metadata(dir.path().join(format!("part{f}.json")))
            .unwrap()
            .len()
    };
    // A first run that stopped after two files and ten lines of the third.
    let checkpoint = serde_json::json!({
        "version": 1,
        "table": "resumed",
        "files": {
            "part0.json": {"size": size(0), "line": 40, "index": 0, "complete": true, "items": 40, "bad": 0},
            "part1.json": {"size": size(1), "line": 40, "index": 0, "complete": true, "items": 40, "bad": 0},
            "part2.json": {"size": size(2), "line": 10, "index": 0, "complete": false, "items": 10, "bad": 0},
        }
    });
    let cp_path = dir.path().join(".ferrodyn-import-resumed.json");
    std::fs::write(&cp_path, checkpoint.to_string()).unwrap();
    let d = dir.path().to_str().unwrap();

    let (stdout, _) = ok(cli(
        &server.url,
        &[
            "import",
            d,
            "--table",
            "resumed",
            "--create",
            "--hash-key",
            "pk:S",
            "--dry-run",
        ],
    ));
    assert!(
        stdout.contains("would resume from checkpoint")
            && stdout.contains("2 files done, 90 records"),
        "{stdout}"
    );
    let (stdout, stderr) = ok(cli(
        &server.url,
        &[
            "import",
            d,
            "--table",
            "resumed",
            "--create",
            "--hash-key",
            "pk:S",
        ],
    ));
    assert!(stderr.contains("resuming from checkpoint"), "{stderr}");
    assert!(stdout.contains("imported 110 items"), "{stdout}");
    assert!(stdout.contains("resumed from checkpoint"), "{stdout}");
    // Only what the checkpoint did not cover was written.
    let keys: std::collections::BTreeSet<String> = all_items(&client, "resumed")
        .await
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(keys.len(), 110);
    assert!(!keys
        .iter()
        .any(|k| k.starts_with("f0-") || k.starts_with("f1-")));
    assert!(!keys.contains("f2-9") && keys.contains("f2-10") && keys.contains("f4-39"));
    assert!(!cp_path.exists());

    // A checkpoint of files that changed since is refused rather than trusted.
    std::fs::write(&cp_path, checkpoint.to_string()).unwrap();
    std::fs::write(dir.path().join("part0.json"), json_lines("changed", 3)).unwrap();
    let out = cli(&server.url, &["import", d, "--table", "resumed", "--yes"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("changed since the checkpoint"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_resumes_without_redoing_completed_files() {
    let server = TestServer::in_memory();
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let (files, per_file) = (40, 500);
    for f in 0..files {
        std::fs::write(
            dir.path().join(format!("part{f:02}.json")),
            json_lines(&format!("f{f}-"), per_file),
        )
        .unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let cp_path = dir.path().join(".ferrodyn-import-killed.json");
    let mut child = Command::new(BIN)
        .args([
            "import",
            d,
            "--table",
            "killed",
            "--create",
            "--hash-key",
            "pk:S",
            "--writers",
            "1",
            "--progress",
            "none",
            "--endpoint",
            &server.url,
        ])
        .env("AWS_ACCESS_KEY_ID", "ferrodyn")
        .env("AWS_SECRET_ACCESS_KEY", "ferrodyn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the checkpoint shows a completed file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let checkpoint = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be interrupted"
        );
        assert!(std::time::Instant::now() < deadline, "no checkpoint");
        if let Ok(text) = std::fs::read_to_string(&cp_path) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                if v["files"]["part00.json"]["complete"] == true {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    break v;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    // The checkpoint on disk after the kill (it may be newer than the one just read).
    let checkpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cp_path).unwrap()).unwrap_or(checkpoint);
    let done_files: Vec<String> = checkpoint["files"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["complete"] == true)
        .map(|(k, _)| k.clone())
        .collect();
    let covered: u64 = checkpoint["files"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["items"].as_u64().unwrap() + s["bad"].as_u64().unwrap())
        .sum();
    assert!(!done_files.is_empty());
    let total = (files * per_file) as u64;
    assert!(covered < total, "the whole import was done before the kill");

    let (stdout, _) = ok(cli(&server.url, &["import", d, "--table", "killed"]));
    assert!(stdout.contains("resumed from checkpoint"), "{stdout}");
    let imported: u64 = stdout
        .strip_prefix("imported ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    // The rerun writes exactly what the checkpoint did not cover.
    assert_eq!(imported, total - covered, "{stdout}");
    assert_eq!(all_items(&client, "killed").await.len() as u64, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_into_a_table_with_items_refuses_without_yes() {
    let server = TestServer::in_memory();
    let client = server.client();
    ferrodyn_testkit::create_hash_table(&client, "full").await;
    put_all(&client, "full", {
        let mut i = Item::new();
        i.insert("pk".into(), AV::S("existing".into()));
        vec![i]
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.json"), json_lines("x", 5)).unwrap();
    let d = dir.path().to_str().unwrap();
    let out = cli(&server.url, &["import", d, "--table", "full"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("already has items") && stderr.contains("--yes"),
        "{stderr}"
    );
    assert_eq!(all_items(&client, "full").await.len(), 1);
    ok(cli(&server.url, &["import", d, "--table", "full", "--yes"]));
    assert_eq!(all_items(&client, "full").await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_at_a_point_in_time_through_a_temporary_table() {
    let server = TestServer::in_memory();
    let client = server.client();
    ferrodyn_testkit::create_hash_table(&client, "history").await;
    client
        .update_continuous_backups()
        .table_name("history")
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    keyed_items(&client, "history", 0, 40).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    keyed_items(&client, "history", 40, 60).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (stdout, stderr) = ok(cli(
        &server.url,
        &["export", "history", "--to", d, "--at", &at],
    ));
    assert!(stdout.contains("exported 40 items"), "{stdout}");
    assert!(stderr.contains("deleted temporary table"), "{stderr}");
    let tables = client.list_tables().send().await.unwrap();
    assert_eq!(tables.table_names(), &["history".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ion_export_then_import_keeps_every_attribute_type() {
    let server = TestServer::in_memory();
    let client = server.client();
    create_indexed_table(&client, "src").await;
    put_all(&client, "src", (0..400).map(rich_item).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (stdout, _) = ok(cli(
        &server.url,
        &["export", "src", "--to", d, "--format", "ion"],
    ));
    assert!(stdout.contains("exported 400 items"), "{stdout}");
    assert!(
        files_under(dir.path())
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".ion.gz")),
        "no Ion data file"
    );
    let out = cli(
        &server.url,
        &["export", "src", "--to", d, "--compression", "none"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "the export layout is always gzip"
    );
    ok(cli(
        &server.url,
        &[
            "import",
            d,
            "--table",
            "from-ion",
            "--format",
            "ion",
            "--create",
            "--hash-key",
            "pk:S",
            "--range-key",
            "sk:N",
        ],
    ));
    assert_eq!(
        all_items(&client, "src").await,
        all_items(&client, "from-ion").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reads_zstd_and_gzip_files_by_extension() {
    use std::io::Write;
    let server = TestServer::in_memory();
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.json.zst"),
        ferrodyn_dataio::compress::zstd_compress(json_lines("z", 50).as_bytes()),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json_lines("g", 30).as_bytes()).unwrap();
    std::fs::write(dir.path().join("b.json.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.path().join("c.json"), json_lines("p", 20)).unwrap();
    let d = dir.path().to_str().unwrap();
    let (stdout, _) = ok(cli(
        &server.url,
        &[
            "import",
            d,
            "--table",
            "mixed",
            "--create",
            "--hash-key",
            "pk:S",
        ],
    ));
    assert!(stdout.contains("imported 100 items"), "{stdout}");
    assert!(stdout.contains("0 bad lines"), "{stdout}");
    assert_eq!(all_items(&client, "mixed").await.len(), 100);
}
