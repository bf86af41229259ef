//! How connections to the database are made: plain (`NoTls`), or TLS with rustls (the
//! aws-lc-rs provider, as the rest of Ferrodyn) when the connection string says
//! `sslmode=require` (or `verify-ca`/`verify-full`).
//!
//! Invariants:
//! * With TLS the server's certificate is always verified, and its name against the host
//!   connected to (stricter than libpq's `require`): against the `sslrootcert` file when the
//!   connection string names one, else against the system's trusted roots.
//! * `sslmode=prefer` (tokio-postgres's default) and `disable` connect without TLS.
//! * The connection task of every client runs on the storage's own runtime, spawned by
//!   [`Tls::connect`], which is itself only called on that runtime.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The transport of a pool's connections.
#[derive(Clone)]
pub(crate) enum Tls {
    Plain,
    Rustls(MakeRustlsConnect),
}

impl Tls {
    /// The transport `config` asks for, trusting the certificates of `root_cert` (a PEM file)
    /// or the system's roots.
    pub(crate) fn for_config(config: &Config, root_cert: Option<&str>) -> Result<Tls, String> {
        if matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
            return Ok(Tls::Plain);
        }
        let mut roots = rustls::RootCertStore::empty();
        match root_cert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("sslrootcert {path}: no usable certificate"));
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                if roots.is_empty() {
                    return Err(
                        "sslmode=require: no trusted root certificates found on this \
                                system; name a CA file with sslrootcert"
                            .into(),
                    );
                }
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls::Rustls(MakeRustlsConnect::new(client)))
    }

    /// Connects and spawns the connection task on the current (the storage's) runtime.
    pub(crate) async fn connect(&self, config: &Config) -> Result<Client, tokio_postgres::Error> {
        fn spawn<F>(connection: F)
        where
            F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
        {
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "database connection ended");
                }
            });
        }
        match self {
            Tls::Plain => {
                let (client, connection) = config.connect(NoTls).await?;
                spawn(connection);
                Ok(client)
            }
            Tls::Rustls(make) => {
                let (client, connection) = config.connect(make.clone()).await?;
                spawn(connection);
                Ok(client)
            }
        }
    }
}
