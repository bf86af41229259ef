//! The DynamoDB-compatible HTTP server.
//!
//! Owns: HTTP, routing on `X-Amz-Target`, request decoding and response encoding, the error to
//! wire mapping (`wire`), and the authentication seam (`auth`). It is the only crate besides
//! `ferrodyn-protocol` that knows the JSON wire format.
#![forbid(unsafe_code)]

pub mod auth;
mod http;
pub mod ops;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use ferrodyn_core::Engine;
use tokio::net::TcpListener;

pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    pub auth: Box<dyn auth::Authenticator>,
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

/// Starts serving on an already bound listener.
pub fn start(listener: TcpListener, engine: Arc<Engine>) -> std::io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        engine,
        auth: Box::new(auth::ParseOnly),
    });
    let task = tokio::spawn(http::accept_loop(listener, shared, rx));
    Ok(ServerHandle {
        addr,
        shutdown: tx,
        task,
    })
}
