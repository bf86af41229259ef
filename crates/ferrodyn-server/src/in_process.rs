//! [`InProcess`]: a whole Ferrodyn server inside the caller's process, for Rust test suites.
//!
//! It owns a thread with its own Tokio runtime, so callers may use any runtime (or none) and may
//! start and drop it from async or blocking code alike. It never listens beyond loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use ferrodyn_core::{Engine, EngineConfig};
use ferrodyn_storage::{Durability, MemoryStorage};

/// A Ferrodyn server running in this process on a free loopback port, with in-memory storage and
/// no authentication (like DynamoDB Local: any credentials are accepted). Dropping it stops the
/// server and discards its data.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let server = ferrodyn_server::InProcess::start_in_memory()?;
/// // Point any AWS SDK at `server.url()`, e.g. aws-sdk-dynamodb:
/// let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
///     .endpoint_url(server.url())
///     .region(aws_config::Region::new("us-east-1"))
///     .test_credentials()
///     .load()
///     .await;
/// let client = aws_sdk_dynamodb::Client::new(&config);
/// let tables = client.list_tables().send().await?;
/// assert!(tables.table_names().is_empty());
/// drop(server); // stops the server
/// # Ok(()) }
/// ```
pub struct InProcess {
    addr: SocketAddr,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Starts a server on `127.0.0.1` and a port the system picks, in memory, with the default
    /// region (`us-east-1`) and account (`000000000000`). Returns once it accepts connections.
    pub fn start_in_memory() -> std::io::Result<InProcess> {
        Self::start_in_memory_with(EngineConfig {
            durability: Durability::Buffered,
            ..EngineConfig::default()
        })
    }

    /// Like [`InProcess::start_in_memory`] with an explicit engine configuration (region and
    /// account in ARNs, TTL sweep interval, capacity enforcement...). Storage stays in memory.
    pub fn start_in_memory_with(config: EngineConfig) -> std::io::Result<InProcess> {
        let engine = Engine::open(Arc::new(MemoryStorage::new()), config)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let engine = Arc::new(engine);
        engine.start_background();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<SocketAddr>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ferrodyn-in-process".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("ferrodyn-in-process")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let started = async {
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                        crate::start(listener, engine.clone())
                    }
                    .await;
                    let handle = match started {
                        Ok(h) => h,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(handle.addr));
                    let _ = stop_rx.await;
                    handle.shutdown().await;
                    let _ = engine.close();
                });
            })?;
        let addr = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the server thread ended before listening"))??;
        Ok(InProcess {
            addr,
            url: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The endpoint URL to give an SDK, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for InProcess {
    /// Stops accepting, lets in-flight requests finish, and waits for the server thread.
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
