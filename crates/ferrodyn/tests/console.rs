//! The web console at `/console`, driven in a real headless Chromium (Debian's `chromium`
//! package) by playwright-core (`console_e2e/walk.mjs`): create a table with a GSI and a
//! stream, add, query, edit and delete items, PartiQL, the stream viewer, the metrics charts,
//! and a server that enforces keys (sign-in, a policy's AccessDeniedException shown inline).
//! The Rust side starts the servers and checks with the AWS SDK what the browser did.
//!
//! Chromium is installed with apt-get (ferrodyn-testhost) when missing and this process is root;
//! playwright-core is installed with `npm ci` from the committed lock file into a cache under
//! the target directory. Screenshots of every page land in `<target>/debug/console-e2e/shots`.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as AV, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use ferrodyn_auth::keys::{KeySource, KeyStore};
use ferrodyn_core::EngineConfig;
use ferrodyn_server::auth::AuthMode;
use ferrodyn_server::ServerOptions;
use ferrodyn_storage::{Durability, MemoryStorage};
use ferrodyn_testkit::TestServer;
use serde_json::json;

/// Overrides the search: the path of a Chromium binary.
const CHROMIUM_ENV: &str = "FERRODYN_CHROMIUM";
const CHROMIUM_LOCK: &str = "/tmp/ferrodyn-chromium-install.lock";
/// How long one walk may take before it is killed (a walk takes a few seconds).
const WALK_TIMEOUT: Duration = Duration::from_secs(120);
const XSS: &str = "<img src=x onerror=\"window.__xss=1\">";

fn chromium() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(path) = std::env::var_os(CHROMIUM_ENV) {
                let path = PathBuf::from(path);
                return if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!("{CHROMIUM_ENV}={} is not a file", path.display()))
                };
            }
            let find = || {
                ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
            };
            let missing = || {
                format!(
                    "Chromium not found at /usr/bin/chromium. Install it as root with \
                     `apt-get install -y --no-install-recommends chromium` (Debian), run the \
                     tests as root so they install it themselves, or set {CHROMIUM_ENV}"
                )
            };
            ferrodyn_testhost::Package {
                install_args: &["chromium"],
                lock_file: CHROMIUM_LOCK,
                missing: &missing,
                before_install: None,
            }
            .find_or_install(find)
            .map_err(|e| e.to_string())
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `<target>/debug/console-e2e`: the npm cache, the installed modules and the screenshots.
fn work_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // <target>/debug/deps/console-HASH
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps");
    profile.join("console-e2e")
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console_e2e")
}

/// The directory whose `node_modules` holds playwright-core, installed with `npm ci` from the
/// committed lock file when missing or when the lock file changed (once per process, under a
/// file lock across processes).
fn playwright() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| install_playwright().map_err(|e| e.to_string()))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn install_playwright() -> std::io::Result<PathBuf> {
    let dir = work_dir().join("node");
    fs::create_dir_all(&dir)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".install.lock"))?;
    lock.lock()?;
    let wanted = fs::read(source_dir().join("package-lock.json"))?;
    let installed = fs::read(dir.join("package-lock.json")).ok();
    let present = dir
        .join("node_modules/playwright-core/package.json")
        .is_file();
    if !present || installed.as_deref() != Some(&wanted[..]) {
        fs::copy(source_dir().join("package.json"), dir.join("package.json"))?;
        fs::write(dir.join("package-lock.json"), &wanted)?;
        let out = Command::new("npm")
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--prefer-offline",
            ])
            .arg("--cache")
            .arg(work_dir().join("npm-cache"))
            .current_dir(&dir)
            .output()
            .map_err(|e| {
                std::io::Error::other(format!("cannot run npm ({e}): Node.js and npm are needed"))
            })?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "`npm ci` for playwright-core failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    drop(lock);
    Ok(dir)
}

/// Runs one scenario of walk.mjs against `url`; panics with the walk's output if it fails.
fn walk(scenario: &str, url: &str, extra_env: &[(&str, &str)]) -> String {
    let chromium = chromium();
    let modules = playwright();
    let shots = work_dir().join("shots");
    let logs = work_dir().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let out_path = logs.join(format!("{scenario}.out"));
    let err_path = logs.join(format!("{scenario}.err"));
    let mut cmd = Command::new("node");
    cmd.arg(source_dir().join("walk.mjs"))
        .env("CONSOLE_URL", url)
        .env("CHROMIUM", &chromium)
        .env("E2E_MODULES", &modules)
        .env("SHOTS", &shots)
        .env("SCENARIO", scenario)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("run node (Node.js is needed)");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > WALK_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(s) if s.success() && stdout.contains("RESULT ok") => stdout,
        Some(s) => panic!(
            "console walk `{scenario}` failed ({s}) after {:?}:\n{stdout}\n{stderr}",
            started.elapsed()
        ),
        None => panic!(
            "console walk `{scenario}` timed out after {WALK_TIMEOUT:?}:\n{stdout}\n{stderr}"
        ),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The console's files: no authentication, a strict CSP, nosniff, and 404/405 elsewhere.
#[test]
fn console_assets_are_served_with_a_strict_policy() {
    let server = TestServer::in_memory();
    let client = reqwest::blocking::Client::new();
    for path in ["/console", "/console/", "/console/js/app.js"] {
        let resp = client.get(format!("{}{path}", server.url)).send().unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-cache");
        assert!(h.get("access-control-allow-origin").is_none());
    }
    let page = client
        .get(format!("{}/console", server.url))
        .send()
        .unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let module = client
        .get(format!("{}/console/js/sigv4.js", server.url))
        .send()
        .unwrap();
    assert_eq!(
        module.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let missing = client
        .get(format!("{}/console/nope.js", server.url))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
    let post = client
        .post(format!("{}/console/", server.url))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    // Static files are not API requests: they are not counted in the metrics.
    let metrics = client
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!metrics.contains("outcome=\"NotFound\""), "{metrics}");
    assert!(
        !metrics.contains("outcome=\"MethodNotAllowed\""),
        "{metrics}"
    );
}

/// Served without authentication even when keys are enforced (the files hold nothing); the
/// API behind them still refuses unsigned requests.
#[test]
fn console_assets_need_no_key_but_the_api_does() {
    let (_dir, server) = enforced(&[admin_entry()]);
    let client = reqwest::blocking::Client::new();
    let page = client
        .get(format!("{}/console", server.url))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let unsigned = server.raw_with(Some("DynamoDB_20120810.ListTables"), "{}", false);
    assert_eq!(unsigned.status, 400, "{}", unsigned.body);
    assert_eq!(unsigned.error_code(), "MissingAuthenticationTokenException");
    // The console's mode probe: a well-signed request with a key no key file holds is refused
    // as unrecognized (under `--auth none` it is answered).
    let probe = server.client_as("FERRODYN-CONSOLE-PROBE", "probe", None);
    let err = rt()
        .block_on(probe.list_tables().limit(1).send())
        .expect_err("an unknown key is refused");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    let open = TestServer::in_memory();
    let answered = open.client_as("FERRODYN-CONSOLE-PROBE", "probe", None);
    rt().block_on(answered.list_tables().limit(1).send())
        .expect("any signature is accepted under --auth none");
}

#[test]
fn console_walkthrough_in_headless_chromium() {
    let server = TestServer::in_memory();
    walk("build", &server.url, &[]);

    // What the browser did, seen through the SDK.
    let client = server.client();
    rt().block_on(async {
        let item = client
            .get_item()
            .table_name("Books")
            .key("author", AV::S("Le Guin".into()))
            .key("title", AV::S("The Dispossessed".into()))
            .send()
            .await
            .unwrap()
            .item
            .expect("the item created in the console");
        assert_eq!(item["year"], AV::N("1975".into()), "the edit was saved");
        assert_eq!(item["edited"], AV::Bool(true));
        assert_eq!(
            item["note"],
            AV::S(XSS.into()),
            "stored as typed, shown as text"
        );
        let AV::Ss(tags) = &item["tags"] else {
            panic!("a string set survives the editor: {:?}", item["tags"]);
        };
        assert_eq!(tags.len(), 2);
        let plain = client
            .get_item()
            .table_name("Books")
            .key("author", AV::S("Le Guin".into()))
            .key("title", AV::S("A Wizard of Earthsea".into()))
            .send()
            .await
            .unwrap()
            .item
            .expect("the item created from plain JSON");
        assert_eq!(plain["year"], AV::N("1968".into()));
        assert_eq!(plain["rating"], AV::N("4.5".into()));
        let desc = client
            .describe_table()
            .table_name("Books")
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let gsi = &desc.global_secondary_indexes()[0];
        assert_eq!(gsi.index_name(), Some("ByGenre"));
        let stream = desc.stream_specification().unwrap();
        assert!(stream.stream_enabled());
        assert_eq!(
            stream.stream_view_type().map(|v| v.as_str()),
            Some("NEW_AND_OLD_IMAGES")
        );
        assert_eq!(desc.item_count(), Some(2));
        let orders = client
            .describe_table()
            .table_name("Orders")
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let lsi = &orders.local_secondary_indexes()[0];
        assert_eq!(lsi.index_name(), Some("ByTotal"));
        let throughput = orders.provisioned_throughput().unwrap();
        assert_eq!(throughput.read_capacity_units(), Some(10));
        assert_eq!(throughput.write_capacity_units(), Some(4));
    });

    walk("teardown", &server.url, &[]);
    rt().block_on(async {
        let tables = client.list_tables().send().await.unwrap();
        assert_eq!(tables.table_names(), ["Orders"], "Books was deleted");
    });
    for page in [
        "tables",
        "create-table",
        "items",
        "item-editor",
        "partiql",
        "streams",
        "metrics",
        "delete-table",
    ] {
        let shot = work_dir().join("shots").join(format!("{page}.png"));
        let png = fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(png.starts_with(b"\x89PNG"), "{}", shot.display());
    }
}

fn admin_entry() -> serde_json::Value {
    json!({
        "name": "console-admin",
        "access_key_id": "AKIDCONSOLEADMIN",
        "secret_access_key": "admin-secret",
        "policy": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:*", "ferrodyn:GetMetrics"], "Resource": "*"}
        ]}
    })
}

fn enforced(keys: &[serde_json::Value]) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    let store = Arc::new(
        KeyStore::open(vec![KeySource {
            path,
            required: true,
        }])
        .unwrap(),
    );
    let server = TestServer::with_options(
        Arc::new(MemoryStorage::new()),
        EngineConfig {
            durability: Durability::Buffered,
            ..EngineConfig::default()
        },
        ServerOptions {
            auth: AuthMode::Enforced(store),
            tls: None,
            ..ServerOptions::default()
        },
    );
    (dir, server)
}

#[test]
fn console_signs_in_and_shows_access_denied_inline() {
    let denied = json!({
        "name": "console-no-put",
        "access_key_id": "AKIDCONSOLENOPUT",
        "secret_access_key": "no-put-secret",
        "policy": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:*", "ferrodyn:GetMetrics"], "Resource": "*"},
            {"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*"}
        ]}
    });
    let (_dir, server) = enforced(&[admin_entry(), denied]);
    let admin = server.client_as("AKIDCONSOLEADMIN", "admin-secret", None);
    rt().block_on(async {
        admin
            .create_table()
            .table_name("Notes")
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
    });
    walk(
        "auth",
        &server.url,
        &[
            ("ADMIN_KEY", "AKIDCONSOLEADMIN"),
            ("ADMIN_SECRET", "admin-secret"),
            ("DENIED_KEY", "AKIDCONSOLENOPUT"),
            ("DENIED_SECRET", "no-put-secret"),
        ],
    );
    rt().block_on(async {
        let scan = admin.scan().table_name("Notes").send().await.unwrap();
        let ids: Vec<_> = scan
            .items()
            .iter()
            .map(|i| i["id"].as_s().unwrap().clone())
            .collect();
        assert_eq!(ids, ["allowed"], "only the allowed key's write landed");
    });
}
