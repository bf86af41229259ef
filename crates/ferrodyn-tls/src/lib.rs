//! HTTPS for the server: a rustls server configuration built from a PEM certificate chain and a
//! PEM private key, reloaded when those files change.
//!
//! # What this crate owns
//!
//! - Reading and validating the two files ([`TlsFiles`]): the certificate chain (leaf first) and
//!   the private key (PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted). Both may be the same file.
//! - The server TLS policy: TLS 1.2 and 1.3, ALPN `http/1.1` only, no client authentication,
//!   the `aws-lc-rs` crypto provider.
//! - The configuration in force ([`ReloadingTls`]), handed out per connection by
//!   [`ReloadingTls::acceptor`], and its replacement when the files change
//!   ([`ReloadingTls::reload_if_changed`], polled by [`ReloadingTls::spawn_watcher`]).
//!
//! It does not own sockets, the accept loop or HTTP: the server calls
//! [`ReloadingTls::acceptor`] for each accepted TCP stream and serves HTTP on the TLS stream.
//!
//! # Invariants
//!
//! - **A reload never drops an established connection.** A connection keeps the configuration it
//!   was accepted with (its own `Arc<ServerConfig>`); a reload only changes what the *next*
//!   [`ReloadingTls::acceptor`] call returns.
//! - **A failed reload keeps the previous configuration.** A new configuration is put in force
//!   only after both files have been read and fully validated together: every PEM section
//!   decodes, there is at least one certificate and exactly one private key, every certificate
//!   parses, the key is usable for signing and its public key is the leaf certificate's. A file
//!   that is missing, half written, or a certificate paired with the previous key (files swapped
//!   one at a time) fails this check, and the next poll tries again.
//! - **Change detection is by content**, not by modification time: each poll reads both files
//!   and compares a SHA-256 digest of their bytes with that of the files in force. This sees
//!   files rewritten in place, files replaced by rename (editors, certbot, cert-manager's
//!   symlink swap), mtimes preserved by copies, and coarse filesystem timestamps alike. The files
//!   are small, so a poll costs two short reads and a hash.
//! - **The accept path does no I/O and takes no lock**: [`ReloadingTls::acceptor`] is one
//!   lock-free `ArcSwap` load.
//! - **Key material is never logged nor put in an error.** Errors and logs name file paths and
//!   the leaf certificate's SHA-256 fingerprint only; the key file's bytes are zeroed after use.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use aws_lc_rs::digest;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ParsedCertificate;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{Error as RustlsError, InconsistentKeys, ServerConfig};
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// The ALPN protocols the server offers: HTTP/1.1 only (the server does not speak HTTP/2).
pub const ALPN_PROTOCOLS: &[&[u8]] = &[b"http/1.1"];

/// Where the certificate chain and the private key are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf certificate first.
    pub cert: PathBuf,
    /// PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`), not encrypted.
    pub key: PathBuf,
}

/// Why the files could not be turned into a TLS configuration. Messages name the file; they
/// never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read (missing, unreadable, a directory...).
    #[error("cannot read TLS {what} file {}: {source}", path.display())]
    Read {
        /// `"certificate"` or `"key"`.
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not well-formed PEM (for example a section without its END line: a file
    /// still being written).
    #[error("TLS {what} file {} is not valid PEM: {reason}", path.display())]
    Pem {
        /// `"certificate"` or `"key"`.
        what: &'static str,
        path: PathBuf,
        reason: &'static str,
    },
    /// The certificate file has no `CERTIFICATE` section.
    #[error(
        "TLS certificate file {} contains no certificate (expected a PEM `CERTIFICATE` section)",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    /// A certificate in the chain is not a parsable X.509 certificate.
    #[error("TLS certificate file {}: certificate #{index} cannot be parsed: {source}", path.display())]
    BadCertificate {
        path: PathBuf,
        /// Position in the file, 1 = leaf.
        index: usize,
        #[source]
        source: RustlsError,
    },
    /// The key file has no unencrypted private key section.
    #[error(
        "TLS key file {} contains no private key (expected a PEM `PRIVATE KEY`, \
         `RSA PRIVATE KEY` or `EC PRIVATE KEY` section)",
        path.display()
    )]
    NoKey { path: PathBuf },
    /// The key file holds only an encrypted private key, which the server cannot use.
    #[error(
        "TLS key file {} contains an encrypted private key; the server needs it unencrypted",
        path.display()
    )]
    EncryptedKey { path: PathBuf },
    /// The key file holds more than one private key, so which one to use is ambiguous.
    #[error("TLS key file {} contains {count} private keys; expected exactly one", path.display())]
    SeveralKeys { path: PathBuf, count: usize },
    /// The private key is malformed or of an unsupported type.
    #[error("TLS key file {}: the private key cannot be used: {source}", path.display())]
    BadKey {
        path: PathBuf,
        #[source]
        source: RustlsError,
    },
    /// The private key is not the one the leaf certificate was issued for.
    #[error(
        "TLS private key in {} does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[source] RustlsError),
}

/// A TLS server configuration that follows its certificate and key files.
///
/// Shared as `Arc<ReloadingTls>` between the accept loop, which calls [`Self::acceptor`] for
/// each connection, and the watcher task ([`Self::spawn_watcher`]).
pub struct ReloadingTls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    config: ArcSwap<ServerConfig>,
    /// Digest of the files in force. The mutex also serialises reloads; the accept path never
    /// takes it.
    in_force: Mutex<InForce>,
}

struct InForce {
    files_digest: [u8; 32],
}

impl fmt::Debug for ReloadingTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingTls {
    /// Loads and validates both files now.
    pub fn load(files: TlsFiles) -> Result<Arc<ReloadingTls>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let contents = FileContents::read(&files)?;
        let loaded = build_config(&files, &provider, &contents)?;
        Ok(Arc::new(ReloadingTls {
            files,
            provider,
            config: ArcSwap::new(loaded.config),
            in_force: Mutex::new(InForce {
                files_digest: contents.digest(),
            }),
        }))
    }

    /// The acceptor for the next connection, with the latest successfully loaded files.
    ///
    /// No I/O and no lock: one `ArcSwap` load. The connection keeps this configuration for its
    /// whole life, whatever reloads happen meanwhile.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }

    /// The configuration in force (what [`Self::acceptor`] would use now).
    pub fn current_config(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// The files this configuration follows.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Re-reads both files and, if their contents differ from those in force, validates them
    /// and puts the new configuration in force.
    ///
    /// `Ok(true)`: a new configuration is in force. `Ok(false)`: the files are unchanged.
    /// `Err`: the files changed but cannot be used (or cannot be read); the previous
    /// configuration stays in force and the next call tries again.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        self.reload_inner().map(|loaded| loaded.is_some())
    }

    fn reload_inner(&self) -> Result<Option<Loaded>, TlsError> {
        let mut in_force = self.in_force.lock().unwrap_or_else(PoisonError::into_inner);
        let contents = FileContents::read(&self.files)?;
        let files_digest = contents.digest();
        if files_digest == in_force.files_digest {
            return Ok(None);
        }
        let loaded = build_config(&self.files, &self.provider, &contents)?;
        self.config.store(loaded.config.clone());
        in_force.files_digest = files_digest;
        Ok(Some(loaded))
    }

    /// Spawns a task on the current tokio runtime that calls [`Self::reload_if_changed`] every
    /// `interval` (first after one `interval`), on the blocking pool since it reads files.
    ///
    /// Logs a new configuration at `info` (file paths and the leaf certificate's SHA-256
    /// fingerprint) and a failure at `warn` (the error, which names the file). A failure that
    /// repeats unchanged on later polls is logged at `debug`, so a file left broken does not
    /// flood the log.
    ///
    /// The task holds only a weak reference: it ends at the next poll once every
    /// `Arc<ReloadingTls>` is gone, or when aborted through the returned handle. Dropping the
    /// handle alone does not stop it (a tokio `JoinHandle` detaches on drop); call
    /// [`tokio::task::JoinHandle::abort`] to stop it early.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if `interval` is zero.
    pub fn spawn_watcher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        assert!(!interval.is_zero(), "TLS reload interval must not be zero");
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_failure: Option<String> = None;
            loop {
                ticks.tick().await;
                let Some(tls) = weak.upgrade() else { break };
                let cert = tls.files.cert.clone();
                let key = tls.files.key.clone();
                let outcome = match tokio::task::spawn_blocking(move || tls.reload_inner()).await {
                    Ok(outcome) => outcome,
                    Err(join_error) => {
                        tracing::warn!(error = %join_error, "TLS reload task failed");
                        continue;
                    }
                };
                match outcome {
                    Ok(Some(loaded)) => {
                        last_failure = None;
                        tracing::info!(
                            cert = %cert.display(),
                            key = %key.display(),
                            leaf_sha256 = %loaded.leaf_fingerprint,
                            "TLS certificate reloaded; new connections use it"
                        );
                    }
                    Ok(None) => last_failure = None,
                    Err(error) => {
                        let message = error.to_string();
                        if last_failure.as_deref() == Some(message.as_str()) {
                            tracing::debug!(error = %message, "TLS files still unusable");
                        } else {
                            tracing::warn!(
                                error = %message,
                                "TLS reload failed; keeping the previous certificate"
                            );
                            last_failure = Some(message);
                        }
                    }
                }
            }
        })
    }
}

/// The raw bytes of both files, read once per load so that validation and the change digest
/// see the same contents.
struct FileContents {
    cert: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl FileContents {
    fn read(files: &TlsFiles) -> Result<FileContents, TlsError> {
        let cert = read_file("certificate", &files.cert)?;
        let key = Zeroizing::new(read_file("key", &files.key)?);
        Ok(FileContents { cert, key })
    }

    fn digest(&self) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [&self.cert[..], &self.key[..]] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

struct Loaded {
    config: Arc<ServerConfig>,
    leaf_fingerprint: String,
}

fn build_config(
    files: &TlsFiles,
    provider: &Arc<CryptoProvider>,
    contents: &FileContents,
) -> Result<Loaded, TlsError> {
    let chain = parse_chain(&files.cert, &contents.cert)?;
    let key = parse_key(&files.key, &contents.key)?;

    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadKey {
            path: files.key.clone(),
            source,
        })?;
    let leaf_fingerprint = hex(digest::digest(&digest::SHA256, &chain[0]).as_ref());
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // `Unknown`: the key cannot report its public key; rustls accepts that too.
        Ok(()) | Err(RustlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            })
        }
        Err(source) => {
            return Err(TlsError::BadCertificate {
                path: files.cert.clone(),
                index: 1,
                source,
            })
        }
    }

    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Loaded {
        config: Arc::new(config),
        leaf_fingerprint,
    })
}

fn parse_chain(path: &Path, pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", path, &e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    for (i, cert) in chain.iter().enumerate() {
        ParsedCertificate::try_from(cert).map_err(|source| TlsError::BadCertificate {
            path: path.to_owned(),
            index: i + 1,
            source,
        })?;
    }
    Ok(chain)
}

fn parse_key(path: &Path, pem_bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    // Decode every section so that a truncated file fails even if its first key is complete.
    let mut keys = PrivateKeyDer::pem_slice_iter(pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("key", path, &e))?;
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 if contains(pem_bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || contains(pem_bytes, b"Proc-Type: 4,ENCRYPTED") =>
        {
            Err(TlsError::EncryptedKey {
                path: path.to_owned(),
            })
        }
        0 => Err(TlsError::NoKey {
            path: path.to_owned(),
        }),
        count => Err(TlsError::SeveralKeys {
            path: path.to_owned(),
            count,
        }),
    }
}

/// Describes a PEM error without quoting the file (which, for the key, is secret).
fn pem_error(what: &'static str, path: &Path, error: &pem::Error) -> TlsError {
    let reason = match error {
        pem::Error::MissingSectionEnd { .. } => {
            "a section has no END line (file truncated or still being written?)"
        }
        pem::Error::IllegalSectionStart { .. } => "malformed BEGIN line",
        pem::Error::Base64Decode(_) => "a section's body is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "unreadable PEM",
    };
    TlsError::Pem {
        what,
        path: path.to_owned(),
        reason,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
