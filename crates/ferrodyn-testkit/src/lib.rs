//! Test support: starts a real Ferrodyn server on a free loopback port, and gives clients for it
//! (the official AWS SDK for Rust, and raw signed-looking HTTP for exact error bodies).
//!
//! Each [`TestServer`] runs in its own thread with its own Tokio runtime, so tests may use any
//! runtime (or none) themselves. The server stops when the [`TestServer`] is dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ferrodyn_core::{Engine, EngineConfig};
use ferrodyn_server::ServerOptions;
use ferrodyn_storage::{CachedStorage, Durability, FjallStorage, MemoryStorage, Storage};

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// A server on in-memory storage.
    pub fn in_memory() -> TestServer {
        Self::with_storage(Arc::new(MemoryStorage::new()), Durability::Buffered)
    }

    /// A server on durable storage in `dir` (writes acknowledged after fsync), behind a read
    /// cache as `ferrodyn serve` runs it.
    pub fn durable(dir: &Path) -> TestServer {
        let storage = FjallStorage::open(dir).expect("open storage");
        Self::with_storage(
            Arc::new(CachedStorage::new(storage, 16 << 20)),
            Durability::Sync,
        )
    }

    pub fn with_storage(storage: Arc<dyn Storage>, durability: Durability) -> TestServer {
        let config = EngineConfig {
            durability,
            ..EngineConfig::default()
        };
        Self::with_config(storage, config)
    }

    /// A server on `storage` with an explicit engine configuration (e.g. a short TTL interval).
    pub fn with_config(storage: Arc<dyn Storage>, config: EngineConfig) -> TestServer {
        Self::with_options(storage, config, ServerOptions::default())
    }

    /// A server with explicit server options (enforced authentication, TLS). With TLS the
    /// URL is `https://127.0.0.1:PORT`.
    pub fn with_options(
        storage: Arc<dyn Storage>,
        config: EngineConfig,
        options: ServerOptions,
    ) -> TestServer {
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let engine = Arc::new(Engine::open(storage, config).expect("open engine"));
        engine.start_background();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let handle =
                    ferrodyn_server::start_with(listener, engine.clone(), options).expect("start");
                addr_tx.send(handle.addr).expect("send addr");
                let _ = stop_rx.await;
                handle.shutdown().await;
                let _ = engine.close();
            });
        });
        let addr = addr_rx.recv().expect("server address");
        TestServer {
            addr,
            url: format!("{scheme}://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// An SDK client pointed at this server with static test credentials.
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        self.client_as("ferrodyn", "ferrodyn", None)
    }

    /// An SDK client that signs with the given access key (and session token).
    pub fn client_as(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> aws_sdk_dynamodb::Client {
        let creds = aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.map(str::to_owned),
            None,
            "test",
        );
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(creds)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// Sends a raw request for `op` with `body`; returns (status, headers, body text).
    pub fn raw(&self, op: &str, body: &str) -> RawResponse {
        self.raw_with(Some(&format!("DynamoDB_20120810.{op}")), body, true)
    }

    /// Sends `op` with a JSON body, asserts it succeeded (200), and returns the answer
    /// (`Null` for an empty body).
    pub fn ok(&self, op: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self.raw(op, &body.to_string());
        assert_eq!(r.status, 200, "{op}: {}", r.body);
        r.json()
    }

    /// Sends `op` with a JSON body, asserts it failed with a client error (400), and returns
    /// the error code and message.
    pub fn err(&self, op: &str, body: serde_json::Value) -> (String, String) {
        let r = self.raw(op, &body.to_string());
        assert_eq!(r.status, 400, "{op}: {}", r.body);
        (r.error_code(), r.message())
    }

    /// Raw request with full control over the target header and the Authorization header.
    pub fn raw_with(&self, target: Option<&str>, body: &str, authorized: bool) -> RawResponse {
        let client = reqwest::blocking::Client::new();
        let mut req = client
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_owned());
        if let Some(t) = target {
            req = req.header("x-amz-target", t);
        }
        if authorized {
            req = req.header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=ferrodyn/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            );
        }
        RawResponse::from_blocking(req.send().expect("send raw request"))
    }
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    /// Status, headers and body text of a blocking reqwest response.
    pub fn from_blocking(resp: reqwest::blocking::Response) -> RawResponse {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = resp.text().unwrap_or_default();
        RawResponse {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The error code after '#' in `__type`.
    pub fn error_code(&self) -> String {
        self.json()["__type"]
            .as_str()
            .and_then(|t| t.rsplit('#').next())
            .unwrap_or("")
            .to_owned()
    }
    pub fn message(&self) -> String {
        let j = self.json();
        j["message"]
            .as_str()
            .or(j["Message"].as_str())
            .unwrap_or("")
            .to_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The real `ferrodyn` binary running as a child process on durable storage, for crash tests.
/// The process is killed (SIGKILL) when this value is dropped, so a failing test never leaves it
/// running.
pub struct ServerProcess {
    child: std::process::Child,
    pub url: String,
}

impl ServerProcess {
    /// Starts `binary serve --port 0 --data-dir dir` and waits for its listening line.
    pub fn start(binary: &Path, dir: &Path) -> ServerProcess {
        Self::start_with(binary, dir, &[])
    }

    /// Like [`ServerProcess::start`], with more `serve` arguments.
    pub fn start_with(binary: &Path, dir: &Path, extra: &[&str]) -> ServerProcess {
        let dir = dir.to_str().expect("UTF-8 data directory");
        let mut args = vec!["serve", "--port", "0", "--data-dir", dir];
        args.extend_from_slice(extra);
        Self::start_args(binary, &args)
    }

    /// Runs `binary` with exactly `args` (any subcommand, or DynamoDB Local's command line) and
    /// waits for its listening line. A server on `0.0.0.0` or `[::]` is given a URL on the
    /// matching loopback address, where a test can reach it.
    pub fn start_args(binary: &Path, args: &[&str]) -> ServerProcess {
        Self::start_env(binary, args, &[], None)
    }

    /// Like [`ServerProcess::start_args`], with more environment variables (`LD_PRELOAD`,
    /// `FERRODYN_CRASH_AT`, `FERRODYN_LOG`, ...) and the server's log (stderr) appended to
    /// `log` instead of dropped.
    pub fn start_env(
        binary: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> ServerProcess {
        match Self::try_start_env(binary, args, env, log) {
            Ok(proc) => proc,
            Err(mut proc) => panic!(
                "no listening line from ferrodyn; exit status {:?}",
                proc.wait_exit(std::time::Duration::from_secs(5))
            ),
        }
    }

    /// Like [`ServerProcess::start_env`], but a process that ends (or closes its output)
    /// before printing its listening line is returned as the error, e.g. to see how it exited.
    pub fn try_start_env(
        binary: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Result<ServerProcess, ServerProcess> {
        use std::io::BufRead;
        let stderr = match log {
            Some(path) => std::process::Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("open the server log"),
            ),
            None => std::process::Stdio::null(),
        };
        let mut child = std::process::Command::new(binary)
            .args(args)
            .env("FERRODYN_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn ferrodyn");
        let stdout = child.stdout.take().expect("child stdout");
        let mut proc = ServerProcess {
            child,
            url: String::new(),
        };
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            return Err(proc);
        };
        proc.url =
            url.replacen("://0.0.0.0:", "://127.0.0.1:", 1)
                .replacen("://[::]:", "://[::1]:", 1);
        Ok(proc)
    }

    /// Waits up to `timeout` for the process to end; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// SIGTERM (a clean shutdown), then waits for the exit; true if it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        sent && self.child.wait().is_ok_and(|s| s.success())
    }

    /// The exit status if the process has ended (e.g. aborted itself), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The server's process id (for tools that sample it from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One raw request with a well-formed Authorization header; `target` is the full X-Amz-Target.
pub fn call(
    client: &reqwest::blocking::Client,
    url: &str,
    target: &str,
    body: String,
) -> Result<(u16, String), reqwest::Error> {
    let r = client
        .post(url)
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body)
        .send()?;
    let status = r.status().as_u16();
    Ok((status, r.text()?))
}

/// Sends `op` with a JSON body to the server at `url` (any process: a test server, a node, the
/// binary); returns the status and the answer as JSON (`Null` for an empty or non-JSON body).
pub fn call_json(url: &str, op: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let client = reqwest::blocking::Client::new();
    let (status, text) = call(
        &client,
        url,
        &format!("DynamoDB_20120810.{op}"),
        body.to_string(),
    )
    .expect("request");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// [`call_json`] that asserts success (200) and returns the answer.
pub fn ok_json(url: &str, op: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, v) = call_json(url, op, body);
    assert_eq!(status, 200, "{op}: {v}");
    v
}

/// Every item of `table` on the server at `url` whose key is a string `pk` and whose value is a
/// number `v`, as pk -> v (the shape the fault-injection tests write).
pub fn pk_numbers(url: &str, table: &str) -> std::collections::BTreeMap<String, u64> {
    scan_items(|op, body| ok_json(url, op, body), table, None)
        .into_iter()
        .map(|item| {
            (
                item["pk"]["S"].as_str().expect("pk S").to_owned(),
                item["v"]["N"].as_str().expect("v N").parse().expect("v"),
            )
        })
        .collect()
}

/// Every item of `table` (or of its `index`), page after page, through `request` (which sends
/// an operation and returns its successful answer); table scans are strongly consistent.
pub fn scan_items(
    mut request: impl FnMut(&str, serde_json::Value) -> serde_json::Value,
    table: &str,
    index: Option<&str>,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut start: Option<serde_json::Value> = None;
    loop {
        let mut body = serde_json::json!({ "TableName": table });
        match index {
            Some(ix) => body["IndexName"] = serde_json::json!(ix),
            None => body["ConsistentRead"] = serde_json::json!(true),
        }
        if let Some(k) = start.take() {
            body["ExclusiveStartKey"] = k;
        }
        let page = request("Scan", body);
        out.extend(page["Items"].as_array().into_iter().flatten().cloned());
        match page.get("LastEvaluatedKey") {
            Some(k) => start = Some(k.clone()),
            None => return out,
        }
    }
}

/// CRC-32 (IEEE), computed bit by bit, independent of the server's implementation.
pub fn crc32(b: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in b {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Creates an on-demand table keyed by the string attribute `pk` (the tests' usual table);
/// panics with the error if it fails.
pub async fn create_hash_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> aws_sdk_dynamodb::operation::create_table::CreateTableOutput {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema element"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"))
}

/// Builds the fault-injection library (`ferrodyn-faultfs`, loaded with `LD_PRELOAD`) and
/// returns its path. `binary` is the `ferrodyn` binary under test (`CARGO_BIN_EXE_ferrodyn`):
/// the library is built with the same cargo, in a target directory of its own beside the
/// binary's (`<target>/faultfs`), so the build does not wait on the lock of the test run's.
pub fn faultfs_library(binary: &Path) -> std::path::PathBuf {
    let target = binary
        .parent()
        .and_then(Path::parent)
        .expect("the binary lies in <target>/<profile>/")
        .join("faultfs");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--locked", "--quiet", "-p", "ferrodyn-faultfs"])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build -p ferrodyn-faultfs");
    assert!(status.success(), "building ferrodyn-faultfs failed");
    let lib = target.join("debug").join("libferrodyn_faultfs.so");
    assert!(lib.is_file(), "{} missing after the build", lib.display());
    lib
}

/// A server data directory whose file-system calls go through `ferrodyn-faultfs`, with the
/// control file that injects faults into a running server and the server's log, all in one
/// temporary directory.
pub struct FaultyDir {
    _base: tempfile::TempDir,
    shim: std::path::PathBuf,
    /// The data directory (canonical: the library compares with the kernel's names).
    pub data: std::path::PathBuf,
    /// Written with [`FaultyDir::inject`].
    pub control: std::path::PathBuf,
    /// Where every start writes the server's output.
    pub log: std::path::PathBuf,
    args: Vec<String>,
}

impl FaultyDir {
    /// Builds the library and lays out the directory; `serve` will get `--port 0 --data-dir
    /// DATA` and `extra`.
    pub fn new(binary: &Path, extra: &[&str]) -> FaultyDir {
        let shim = faultfs_library(binary);
        let base = tempfile::tempdir().expect("temporary directory");
        let data = base.path().canonicalize().expect("canonical").join("data");
        std::fs::create_dir(&data).expect("data directory");
        let mut args: Vec<String> = ["serve", "--port", "0", "--data-dir"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push(data.to_str().expect("UTF-8 path").to_owned());
        args.extend(extra.iter().map(|a| a.to_string()));
        FaultyDir {
            shim,
            control: base.path().join("faults"),
            log: base.path().join("server.log"),
            data,
            args,
            _base: base,
        }
    }

    /// Starts the server with the library preloaded.
    pub fn start(&self, binary: &Path) -> ServerProcess {
        let env = [
            ("LD_PRELOAD", self.shim.to_str().expect("UTF-8 path")),
            (
                "FERRODYN_FAULTFS_DIR",
                self.data.to_str().expect("UTF-8 path"),
            ),
            (
                "FERRODYN_FAULTFS_CONTROL",
                self.control.to_str().expect("UTF-8 path"),
            ),
        ];
        ServerProcess::start_env(binary, &self.args(), &env, Some(&self.log))
    }

    /// Starts the server on the same directory without the library (a restart after the fault).
    pub fn start_plain(&self, binary: &Path) -> ServerProcess {
        ServerProcess::start_env(binary, &self.args(), &[], Some(&self.log))
    }

    /// Replaces the faults in force (the library's control syntax, e.g. `"sync EIO\n"`; empty
    /// for none).
    pub fn inject(&self, faults: &str) {
        std::fs::write(&self.control, faults).expect("write the fault control file");
    }

    fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

/// `GET url + path`: the status and the body.
pub fn http_get(url: &str, path: &str) -> (u16, String) {
    let r = reqwest::blocking::get(format!("{url}{path}")).expect("GET");
    let status = r.status().as_u16();
    (status, r.text().unwrap_or_default())
}
