//! Drop-in packaging: `serve --config FILE` with FERRODYN_* variables and flags above it,
//! DynamoDB Local's command line driven by the AWS SDK, and the in-process server API.

use std::io::BufRead;
use std::path::Path;

use aws_sdk_dynamodb::types::{AttributeValue, TableStatus};
use ferrodyn_testkit::{create_hash_table, ServerProcess};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferrodyn"))
}

fn client(url: &str) -> aws_sdk_dynamodb::Client {
    client_for(url, "any", "us-east-1")
}

/// A client signing with access key `key` for `region`.
fn client_for(url: &str, key: &str, region: &str) -> aws_sdk_dynamodb::Client {
    let creds = aws_credential_types::Credentials::new(key, "thing", None, None, "test");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(region.to_owned()))
        .endpoint_url(url)
        .credentials_provider(creds)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Creates table `pets` (key `pk`), writes and reads one item; returns the table's ARN and its
/// status once the item is written.
async fn create_put_get(c: &aws_sdk_dynamodb::Client) -> (String, TableStatus) {
    let created = create_hash_table(c, "pets").await;
    let desc = created.table_description().unwrap();
    c.put_item()
        .table_name("pets")
        .item("pk", AttributeValue::S("a".into()))
        .item("n", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    let got = c
        .get_item()
        .table_name("pets")
        .key("pk", AttributeValue::S("a".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["n"], AttributeValue::N("1".into()));
    let described = c.describe_table().table_name("pets").send().await.unwrap();
    (
        desc.table_arn().unwrap().to_owned(),
        described.table().unwrap().table_status().unwrap().clone(),
    )
}

/// Spawns `ferrodyn args` in `cwd` with exactly `env` among FERRODYN_* variables.
fn spawn(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(binary());
    cmd.args(args).current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("FERRODYN_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("FERRODYN_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn config_file_environment_and_flags_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ferrodyn.toml");
    std::fs::write(
        &file,
        "# every serve flag by its long name\n\
         host = \"127.0.0.1\"\n\
         port = 0\n\
         in-memory = true\n\
         region = \"eu-west-1\"\n\
         account = \"111111111111\"\n\
         ttl_interval = 0.5\n",
    )
    .unwrap();
    let mut child = Killed(spawn(
        dir.path(),
        &[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--region",
            "ap-south-1",
        ],
        &[
            ("FERRODYN_REGION", "eu-central-1"),
            ("FERRODYN_ACCOUNT", "222222222222"),
        ],
    ));
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // `port = 0` from the file: a free port, not the default 8000.
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    assert!(!url.ends_with(":8000"), "{url}");
    let (arn, _) = runtime().block_on(create_put_get(&client(&url)));
    // Region from the command line over the environment over the file; account from the
    // environment over the file.
    assert_eq!(arn, "arn:aws:dynamodb:ap-south-1:222222222222:table/pets");
    // `in-memory = true` from the file: no data directory was created.
    assert!(!dir.path().join("ferrodyn-data").exists());
}

#[test]
fn config_file_from_the_environment_and_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ferrodyn.toml");
    std::fs::write(
        &file,
        "in_memory = true\nport = 0\nsecret-ish = \"hunter2\"\n",
    )
    .unwrap();
    let out = spawn(
        dir.path(),
        &["serve"],
        &[("FERRODYN_CONFIG", file.to_str().unwrap())],
    )
    .wait_with_output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key `secret-ish`"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    std::fs::write(&file, "port = \"hunter2\"\n").unwrap();
    let out = spawn(
        dir.path(),
        &["serve", "--in-memory", "--config", file.to_str().unwrap()],
        &[],
    )
    .wait_with_output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid value for --port"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn dynamodb_local_command_line_with_every_flag() {
    let server = ServerProcess::start_args(
        binary(),
        &[
            "-inMemory",
            "-port",
            "0",
            "-sharedDb",
            "-cors",
            "*",
            "-delayTransientStatuses",
            "-optimizeDbBeforeStartup",
            "-disableTelemetry",
        ],
    );
    let (arn, status) = runtime().block_on(create_put_get(&client(&server.url)));
    assert_eq!(arn, "arn:aws:dynamodb:us-east-1:000000000000:table/pets");
    // -delayTransientStatuses is accepted; tables are ACTIVE at once.
    assert_eq!(status, TableStatus::Active);
}

async fn table_names(c: &aws_sdk_dynamodb::Client) -> Vec<String> {
    c.list_tables().send().await.unwrap().table_names().to_vec()
}

/// Without -sharedDb, DynamoDB Local keeps a database per access key id and signing region:
/// another key, or the same key in another region, sees none of the tables.
#[test]
fn dynamodb_local_without_shared_db_keeps_a_database_per_key_and_region() {
    let server = ServerProcess::start_args(binary(), &["-inMemory", "-port", "0"]);
    let rt = runtime();
    rt.block_on(async {
        let a_east = client_for(&server.url, "AKIAKEYA", "us-east-1");
        let (arn, _) = create_put_get(&a_east).await;
        assert_eq!(arn, "arn:aws:dynamodb:us-east-1:000000000000:table/pets");
        assert_eq!(table_names(&a_east).await, ["pets"]);
        let a_west = client_for(&server.url, "AKIAKEYA", "eu-west-1");
        let b_east = client_for(&server.url, "AKIAKEYB", "us-east-1");
        assert!(table_names(&a_west).await.is_empty());
        assert!(table_names(&b_east).await.is_empty());
        // The same name in another database is another table, with its own region in its ARN.
        let (arn, _) = create_put_get(&a_west).await;
        assert_eq!(arn, "arn:aws:dynamodb:eu-west-1:000000000000:table/pets");
        let err = b_east
            .get_item()
            .table_name("pets")
            .key("pk", AttributeValue::S("a".into()))
            .send()
            .await
            .unwrap_err();
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "{err:?}"
        );
    });
    // A credential without a region is the server's region (--region, us-east-1 here).
    let resp = reqwest::blocking::Client::new()
        .post(&server.url)
        .header("X-Amz-Target", "DynamoDB_20120810.ListTables")
        .header("Content-Type", "application/x-amz-json-1.0")
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAKEYA")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), r#"{"TableNames":["pets"]}"#);
}

/// `-dbPath DIR` without -sharedDb keeps each key and region's database in `DIR/KEY_REGION`,
/// found again after a restart.
#[test]
fn dynamodb_local_per_key_databases_on_disk_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().to_str().unwrap();
    let rt = runtime();
    {
        let server = ServerProcess::start_args(binary(), &["-dbPath", db, "-port", "0"]);
        rt.block_on(async {
            create_put_get(&client_for(&server.url, "AKIAKEYA", "us-east-1")).await;
            create_hash_table(&client_for(&server.url, "AKIAKEYB", "us-west-2"), "birds").await;
        });
    }
    assert!(dir.path().join("AKIAKEYA_us-east-1").is_dir());
    assert!(dir.path().join("AKIAKEYB_us-west-2").is_dir());
    let server = ServerProcess::start_args(binary(), &["-dbPath", db, "-port", "0"]);
    rt.block_on(async {
        assert_eq!(
            table_names(&client_for(&server.url, "AKIAKEYA", "us-east-1")).await,
            ["pets"]
        );
        assert_eq!(
            table_names(&client_for(&server.url, "AKIAKEYB", "us-west-2")).await,
            ["birds"]
        );
        assert!(
            table_names(&client_for(&server.url, "AKIAKEYA", "us-west-2"))
                .await
                .is_empty()
        );
    });
}

#[test]
fn dynamodb_local_command_line_says_it_accepts_any_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Killed(spawn(
        dir.path(),
        &["-inMemory", "-port", "0"],
        &[("FERRODYN_LOG", "info")],
    ));
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://0.0.0.0:"), "{line}");
    let _ = child.0.kill();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("DynamoDB Local's command line") && err.contains("--auth none"),
        "{err}"
    );
}

#[test]
fn dynamodb_local_help() {
    let out = std::process::Command::new(binary())
        .arg("-help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "-inMemory",
        "-port",
        "-dbPath",
        "-sharedDb",
        "-cors",
        "-delayTransientStatuses",
        "-optimizeDbBeforeStartup",
    ] {
        assert!(text.contains(flag), "{flag} missing from {text}");
    }
}

/// The in-process server through its public API only.
#[test]
fn in_process_server_starts_serves_and_stops_on_drop() {
    let server = ferrodyn_server::InProcess::start_in_memory().unwrap();
    let url = server.url().to_owned();
    assert_eq!(url, format!("http://{}", server.addr()));
    assert!(server.addr().ip().is_loopback());
    let rt = runtime();
    rt.block_on(async {
        let (arn, status) = create_put_get(&client(&url)).await;
        assert_eq!(arn, "arn:aws:dynamodb:us-east-1:000000000000:table/pets");
        assert_eq!(status, TableStatus::Active);
    });
    // Two servers side by side keep separate data.
    let other = ferrodyn_server::InProcess::start_in_memory().unwrap();
    rt.block_on(async {
        let tables = client(other.url()).list_tables().send().await.unwrap();
        assert!(tables.table_names().is_empty());
    });
    drop(server);
    // Stopped: the port no longer serves this server. (Another test's server may have been given
    // the freed port meanwhile; it cannot hold this server's table.)
    if std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok() {
        rt.block_on(async {
            let tables = client(&url).list_tables().send().await.unwrap();
            assert!(!tables.table_names().iter().any(|t| t == "pets"));
        });
    }
}
