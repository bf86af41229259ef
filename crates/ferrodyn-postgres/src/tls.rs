//! How connections to the database are made: plain TCP or Unix sockets (`NoTls`).
//!
//! Invariant: the connection task of every client runs on the storage's own runtime, spawned
//! by [`Tls::connect`], which is itself only called on that runtime.

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

/// The transport of a pool's connections.
#[derive(Clone, Debug)]
pub(crate) enum Tls {
    Plain,
}

impl Tls {
    /// The transport `config` asks for; `sslmode=require` is refused (not supported yet)
    /// rather than silently downgraded.
    pub(crate) fn for_config(config: &Config) -> std::result::Result<Tls, String> {
        match config.get_ssl_mode() {
            SslMode::Disable | SslMode::Prefer => Ok(Tls::Plain),
            _ => Err(
                "sslmode=require is not supported by this build: the connection to the \
                      database is unencrypted (use sslmode=disable or prefer)"
                    .into(),
            ),
        }
    }

    /// Connects and spawns the connection task on the current (the storage's) runtime.
    pub(crate) async fn connect(&self, config: &Config) -> Result<Client, tokio_postgres::Error> {
        match self {
            Tls::Plain => {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "database connection ended");
                    }
                });
                Ok(client)
            }
        }
    }
}
