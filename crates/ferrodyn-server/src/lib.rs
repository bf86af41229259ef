//! The DynamoDB-compatible HTTP server.
//!
//! Owns: HTTP, routing on `X-Amz-Target`, request decoding and response encoding, the error to
//! wire mapping (`wire`), and the authentication seam (`auth`). It is the only crate besides
//! `ferrodyn-protocol` that knows the JSON wire format.
#![forbid(unsafe_code)]

pub mod auth;
pub mod authz;
pub mod databases;
mod http;
mod in_process;
pub mod ops;
mod raw;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use ferrodyn_core::Engine;
use ferrodyn_metrics::Metrics;
use tokio::net::TcpListener;

pub use in_process::InProcess;
pub use raw::RawFront;

pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    /// The engine's account id, shared by every request's identity.
    pub account: Arc<str>,
    pub auth: auth::AuthMode,
    pub tls: Option<Arc<ferrodyn_tls::ReloadingTls>>,
    pub metrics: Arc<Metrics>,
    /// Requests slower than this are logged at warn (`--slow-request-ms`).
    pub slow_request: Option<std::time::Duration>,
    /// Set once shutdown begins: `/health/ready` then answers 503.
    pub stopping: std::sync::atomic::AtomicBool,
    /// One database per access key and region, when the server keeps them apart; `engine` then
    /// serves only what names no credential (`/metrics`).
    pub databases: Option<Arc<databases::Databases>>,
    /// What every engine the server opens gets attached (exports, triggers).
    pub services: Services,
}

/// The services attached to each engine a server serves.
#[derive(Clone, Default)]
pub(crate) struct Services {
    exchange: Option<ferrodyn_exchange::ExchangeConfig>,
    triggers: Option<ferrodyn_triggers::TriggersConfig>,
}

/// Attaches exports/imports and stream triggers to an engine that has none yet, or resumes its
/// triggers (an engine served again after a server on it stopped).
pub(crate) fn attach_services(engine: &Arc<Engine>, services: &Services) {
    if engine.attached::<ferrodyn_exchange::Exchange>().is_none() {
        let config = services.exchange.clone().unwrap_or_else(|| {
            ferrodyn_exchange::ExchangeConfig::new(std::env::temp_dir().join("ferrodyn-exports"))
        });
        ferrodyn_exchange::Exchange::start(engine, config);
    }
    match engine.attached::<ferrodyn_triggers::Triggers>() {
        Some(t) => t.resume(),
        None => {
            ferrodyn_triggers::Triggers::start(
                engine,
                services.triggers.clone().unwrap_or_default(),
            );
        }
    }
}

/// Every operation the server answers, for the metrics' pre-registered handles.
pub fn operation_names() -> impl Iterator<Item = &'static str> {
    use ferrodyn_protocol::shapes;
    shapes::operations(shapes::Api::DynamoDb)
        .chain(shapes::operations(shapes::Api::Streams))
        .chain(ops::admin::OPERATIONS.iter().copied())
}

/// How a server authenticates and serves requests.
#[derive(Clone)]
pub struct ServerOptions {
    pub auth: auth::AuthMode,
    /// Serve HTTPS with these certificates (reloaded by their own watcher) instead of HTTP.
    pub tls: Option<Arc<ferrodyn_tls::ReloadingTls>>,
    /// Log requests slower than this at warn.
    pub slow_request: Option<std::time::Duration>,
    /// Exports and imports: the directory standing for S3 and the limits (`None`:
    /// `ferrodyn-exports` in the system's temporary directory), unless the engine already has
    /// an export service.
    pub exchange: Option<ferrodyn_exchange::ExchangeConfig>,
    /// Stream triggers' timings (`None`: the defaults), unless the engine already has a
    /// trigger service.
    pub triggers: Option<ferrodyn_triggers::TriggersConfig>,
    /// Keep one database per access key id and signing region (DynamoDB Local without
    /// `-sharedDb`), opened by this on first use; the engine given to `start_with` then serves
    /// only `/metrics`.
    pub databases: Option<Arc<databases::Databases>>,
}

impl Default for ServerOptions {
    /// The test double: any well-formed request is accepted.
    fn default() -> Self {
        ServerOptions {
            auth: auth::AuthMode::None,
            tls: None,
            slow_request: None,
            exchange: None,
            triggers: None,
            databases: None,
        }
    }
}

/// A running server; dropping the handle does not stop it, call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    admin_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// Also serves `/metrics` and `/health/*` (and nothing else) on `listener`, in plain HTTP
    /// (`--metrics-addr`); `/metrics` is authorized there as on the API port.
    pub fn serve_metrics(&mut self, listener: TcpListener) {
        let rx = self.shutdown.subscribe();
        self.admin_tasks.push(tokio::spawn(http::accept_loop(
            listener,
            self.shared.clone(),
            rx,
            http::Listener::MetricsOnly,
        )));
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the accept loops to end.
    pub async fn shutdown(self) {
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        let mut engines = vec![self.shared.engine.clone()];
        if let Some(dbs) = &self.shared.databases {
            engines.extend(dbs.engines());
        }
        for e in engines {
            if let Some(t) = e.attached::<ferrodyn_triggers::Triggers>() {
                t.stop();
            }
        }
        let _ = self.task.await;
        for t in self.admin_tasks {
            let _ = t.await;
        }
    }
}

/// Starts serving on an already bound listener, accepting any well-formed request.
pub fn start(listener: TcpListener, engine: Arc<Engine>) -> std::io::Result<ServerHandle> {
    start_with(listener, engine, ServerOptions::default())
}

/// Starts serving on an already bound listener with explicit options.
pub fn start_with(
    listener: TcpListener,
    engine: Arc<Engine>,
    options: ServerOptions,
) -> std::io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let services = Services {
        exchange: options.exchange.clone(),
        triggers: options.triggers.clone(),
    };
    attach_services(&engine, &services);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        account: Arc::from(engine.config().account.as_str()),
        engine,
        auth: options.auth,
        tls: options.tls,
        metrics: Arc::new(Metrics::new(operation_names())),
        slow_request: options.slow_request,
        stopping: std::sync::atomic::AtomicBool::new(false),
        databases: options.databases,
        services,
    });
    let task = tokio::spawn(http::accept_loop(
        listener,
        shared.clone(),
        rx,
        http::Listener::Api,
    ));
    Ok(ServerHandle {
        addr,
        shared,
        shutdown: tx,
        task,
        admin_tasks: Vec::new(),
    })
}
