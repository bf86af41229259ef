//! Test support: a generated CA and leaf certificates (rcgen), files on disk, an echo server
//! over `ReloadingTls` on loopback, and a verifying tokio-rustls client.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ferrodyn_tls::{ReloadingTls, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Bound on every network wait in the tests.
pub const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub cert: CertificateDer<'static>,
    pub cert_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Ca {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `localhost` and 127.0.0.1 with an ECDSA P-256 key.
    pub fn leaf(&self, common_name: &str, serial: u64) -> Leaf {
        self.leaf_with(common_name, serial, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    pub fn leaf_with(
        &self,
        common_name: &str,
        serial: u64,
        alg: &'static SignatureAlgorithm,
    ) -> Leaf {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(serial.into());
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_pkcs8_der: key.serialize_der(),
        }
    }
}

pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub cert_pem: String,
    /// PKCS#8 PEM.
    pub key_pem: String,
    pub key_pkcs8_der: Vec<u8>,
}

/// A directory holding `cert.pem` and `key.pem`.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.cert_path(),
            key: self.key_path(),
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// Writes both files in place (truncate and write).
    pub fn write_in_place(&self, cert_pem: &str, key_pem: &str) {
        std::fs::write(self.cert_path(), cert_pem).unwrap();
        std::fs::write(self.key_path(), key_pem).unwrap();
    }

    /// Replaces both files the way editors and certbot do: write a new file, rename it over.
    pub fn replace_by_rename(&self, cert_pem: &str, key_pem: &str) {
        replace_by_rename(&self.cert_path(), cert_pem);
        replace_by_rename(&self.key_path(), key_pem);
    }
}

pub fn replace_by_rename(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// An echo server on 127.0.0.1 taking a fresh acceptor from `tls` for every connection.
pub struct EchoServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoServer {
    pub async fn start(tls: Arc<ReloadingTls>) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = tls.acceptor();
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 1024];
                    loop {
                        let n = match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if stream.write_all(&buf[..n]).await.is_err()
                            || stream.flush().await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        EchoServer { addr, task }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client trusting only `root`, offering h2 and http/1.1 so the server's ALPN choice shows.
pub fn client_config(
    root: &CertificateDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(TIMEOUT, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("handshake timed out")
}

pub async fn connect_trusting(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
) -> io::Result<TlsStream<TcpStream>> {
    connect(addr, client_config(root, rustls::DEFAULT_VERSIONS)).await
}

/// The leaf certificate the server presented.
pub fn peer_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// Sends `message` and asserts it comes back.
pub async fn echo(stream: &mut TlsStream<TcpStream>, message: &[u8]) {
    tokio::time::timeout(TIMEOUT, async {
        stream.write_all(message).await.unwrap();
        stream.flush().await.unwrap();
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, message);
    })
    .await
    .expect("echo timed out");
}

/// The rustls error inside an I/O error from a failed handshake.
pub fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

// --- Key encodings -------------------------------------------------------------------------

/// Reads one DER TLV at the start of `der`: (tag, contents, rest).
fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, header) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let count = (n & 0x7f) as usize;
            let len = der[2..2 + count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + count)
        }
    };
    (tag, &der[header..header + len], &der[header + len..])
}

fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(contents.len()));
    out.extend_from_slice(contents);
    out
}

/// The `privateKey` OCTET STRING of a PKCS#8 PrivateKeyInfo.
fn pkcs8_inner(pkcs8: &[u8]) -> &[u8] {
    let (tag, info, _) = tlv(pkcs8);
    assert_eq!(tag, 0x30);
    let (_, _version, rest) = tlv(info);
    let (_, _algorithm, rest) = tlv(rest);
    let (tag, private_key, _) = tlv(rest);
    assert_eq!(tag, 0x04);
    private_key
}

pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// PKCS#8 RSA key to PKCS#1 `RSA PRIVATE KEY` PEM.
pub fn rsa_pkcs1_pem(pkcs8: &[u8]) -> String {
    to_pem("RSA PRIVATE KEY", pkcs8_inner(pkcs8))
}

/// PKCS#8 P-256 key to SEC1 `EC PRIVATE KEY` PEM, with the curve named as `openssl ecparam
/// -genkey` writes it.
pub fn ec_p256_sec1_pem(pkcs8: &[u8]) -> String {
    let (tag, ec_private_key, _) = tlv(pkcs8_inner(pkcs8));
    assert_eq!(tag, 0x30);
    let (_, version, rest) = tlv(ec_private_key);
    let (_, secret, mut rest) = tlv(rest);
    let mut public_key = None;
    while !rest.is_empty() {
        let (tag, contents, next) = tlv(rest);
        if tag == 0xa1 {
            public_key = Some(contents.to_vec());
        }
        rest = next;
    }
    let prime256v1 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut body = der(0x02, version);
    body.extend(der(0x04, secret));
    body.extend(der(0xa0, &prime256v1));
    if let Some(public_key) = public_key {
        body.extend(der(0xa1, &public_key));
    }
    to_pem("EC PRIVATE KEY", &der(0x30, &body))
}
