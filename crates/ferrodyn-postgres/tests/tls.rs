//! TLS to the database: a PostgreSQL with a certificate from a generated CA; the storage
//! connects with `sslmode=verify-full` and `sslrootcert`, and refuses an untrusted server.

mod common;

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};

use ferrodyn_pgtest::PgServer;
use ferrodyn_postgres::PostgresStorage;
use ferrodyn_storage::{Durability, Storage, StorageError, WriteBatch};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A self-signed CA: its PEM and an issuer for leaves.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

#[test]
fn verified_tls_connections() {
    let server = PgServer::start().expect("start PostgreSQL");
    let (ca_pem, issuer) = ca("test ca");
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    // The server reads its key and certificate as its own user, from its own directory.
    let dir = server.dir();
    let owner = std::fs::metadata(dir).unwrap();
    for (name, content, mode) in [
        ("server.crt", cert.pem(), 0o644),
        ("server.key", key.serialize_pem(), 0o600),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for setting in [
        format!("ssl_cert_file = '{}'", dir.join("server.crt").display()),
        format!("ssl_key_file = '{}'", dir.join("server.key").display()),
        "ssl = on".to_string(),
    ] {
        server.psql(&format!("ALTER SYSTEM SET {setting}")).unwrap();
    }
    server.psql("SELECT pg_reload_conf()").unwrap();

    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}&application_name=tls-test",
        server.url(),
        ca_file.display()
    );
    // The reload is asynchronous: retry the first connection for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let node = loop {
        match PostgresStorage::connect(&url, common::options()) {
            Ok(node) => break node,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("TLS connection failed: {e}"),
        }
    };
    node.create_keyspace("t").unwrap();
    let mut b = WriteBatch::new();
    b.put("t", b"k", b"over tls");
    node.write(b, Durability::Sync).unwrap();
    assert_eq!(node.get("t", b"k").unwrap(), Some(b"over tls".to_vec()));
    let encrypted = server
        .psql(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND application_name = 'tls-test'",
        )
        .unwrap();
    assert_ne!(encrypted.trim(), "0", "no TLS connection from the storage");

    // A server whose certificate the given CA did not sign is refused.
    let (other_pem, _) = ca("other ca");
    let other_file = files.path().join("other.pem");
    std::fs::write(&other_file, other_pem).unwrap();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        server.url(),
        other_file.display()
    );
    assert!(matches!(
        PostgresStorage::connect(&url, common::options()),
        Err(StorageError::Unavailable(_))
    ));
    // A missing CA file is a configuration error.
    let url = format!(
        "{}?sslmode=require&sslrootcert=/nonexistent/ca.pem",
        server.url()
    );
    assert!(matches!(
        PostgresStorage::connect(&url, common::options()),
        Err(StorageError::InvalidArgument(_))
    ));
}
