//! The DynamoDB-compatible HTTP server.
//!
//! Owns: HTTP, routing on `X-Amz-Target`, request decoding and response encoding, the error to
//! wire mapping (`wire`), and the authentication seam (`auth`). It is the only crate besides
//! `ferrodyn-protocol` that knows the JSON wire format.
#![forbid(unsafe_code)]

pub mod auth;
pub mod authz;
mod http;
mod in_process;
pub mod ops;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use ferrodyn_core::Engine;
use tokio::net::TcpListener;

pub use in_process::InProcess;

pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    /// The engine's account id, shared by every request's identity.
    pub account: Arc<str>,
    pub auth: auth::AuthMode,
    pub tls: Option<Arc<ferrodyn_tls::ReloadingTls>>,
}

/// How a server authenticates and serves requests.
#[derive(Clone)]
pub struct ServerOptions {
    pub auth: auth::AuthMode,
    /// Serve HTTPS with these certificates (reloaded by their own watcher) instead of HTTP.
    pub tls: Option<Arc<ferrodyn_tls::ReloadingTls>>,
}

impl Default for ServerOptions {
    /// The test double: any well-formed request is accepted.
    fn default() -> Self {
        ServerOptions {
            auth: auth::AuthMode::None,
            tls: None,
        }
    }
}

/// A running server; dropping the handle does not stop it, call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    pub addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// Stops accepting, lets in-flight requests finish, and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
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
    let (tx, rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        account: Arc::from(engine.config().account.as_str()),
        engine,
        auth: options.auth,
        tls: options.tls,
    });
    let task = tokio::spawn(http::accept_loop(listener, shared, rx));
    Ok(ServerHandle {
        addr,
        shutdown: tx,
        task,
    })
}
