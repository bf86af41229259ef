//! `ReloadingTls::load` refuses unusable files with an error that names the file and the fault,
//! and never quotes the key.

mod common;

use std::io::ErrorKind;

use common::{Ca, Dir};
use ferrodyn_tls::{ReloadingTls, TlsError};

fn load_err(dir: &Dir) -> TlsError {
    ReloadingTls::load(dir.files()).unwrap_err()
}

#[test]
fn missing_files() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();

    match load_err(&dir) {
        TlsError::Read { what, path, source } => {
            assert_eq!(what, "certificate");
            assert_eq!(path, dir.cert_path());
            assert_eq!(source.kind(), ErrorKind::NotFound);
        }
        other => panic!("{other}"),
    }

    std::fs::write(dir.cert_path(), &leaf.cert_pem).unwrap();
    let error = load_err(&dir);
    let message = error.to_string();
    match error {
        TlsError::Read { what, path, source } => {
            assert_eq!(what, "key");
            assert_eq!(path, dir.key_path());
            assert_eq!(source.kind(), ErrorKind::NotFound);
        }
        other => panic!("{other}"),
    }
    assert!(message.contains("key.pem"), "{message}");
}

#[test]
fn no_certificate_in_the_pem() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    // A key where the certificate should be.
    dir.write_in_place(&leaf.key_pem, &leaf.key_pem);
    let error = load_err(&dir);
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    assert!(error.to_string().contains("cert.pem"), "{error}");

    dir.write_in_place("just some text\n", &leaf.key_pem);
    assert!(matches!(load_err(&dir), TlsError::NoCertificate { .. }));
}

#[test]
fn no_key_in_the_pem() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    // The certificate twice, no key.
    dir.write_in_place(&leaf.cert_pem, &leaf.cert_pem);
    let error = load_err(&dir);
    assert!(matches!(error, TlsError::NoKey { .. }), "{error}");
    assert!(error.to_string().contains("key.pem"), "{error}");
}

#[test]
fn encrypted_key_is_named_as_such() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    let encrypted = common::to_pem("ENCRYPTED PRIVATE KEY", &leaf.key_pkcs8_der);
    dir.write_in_place(&leaf.cert_pem, &encrypted);
    let error = load_err(&dir);
    assert!(matches!(error, TlsError::EncryptedKey { .. }), "{error}");
}

#[test]
fn two_keys_are_ambiguous() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let other = ca.leaf("other", 2);
    let dir = Dir::new();
    dir.write_in_place(
        &leaf.cert_pem,
        &format!("{}{}", leaf.key_pem, other.key_pem),
    );
    let error = load_err(&dir);
    assert!(
        matches!(error, TlsError::SeveralKeys { count: 2, .. }),
        "{error}"
    );
}

#[test]
fn key_of_another_certificate_is_a_mismatch() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let other = ca.leaf("other", 2);
    let dir = Dir::new();
    dir.write_in_place(&leaf.cert_pem, &other.key_pem);
    let error = load_err(&dir);
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("key.pem") && message.contains("cert.pem"),
        "{message}"
    );
}

#[test]
fn certificate_that_is_not_x509_is_refused() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    let junk = common::to_pem("CERTIFICATE", b"definitely not DER");
    dir.write_in_place(&junk, &leaf.key_pem);
    let error = load_err(&dir);
    assert!(
        matches!(error, TlsError::BadCertificate { index: 1, .. }),
        "{error}"
    );

    // A good leaf followed by a junk intermediate.
    dir.write_in_place(&format!("{}{junk}", leaf.cert_pem), &leaf.key_pem);
    let error = load_err(&dir);
    assert!(
        matches!(error, TlsError::BadCertificate { index: 2, .. }),
        "{error}"
    );
}

#[test]
fn malformed_key_is_refused_without_quoting_it() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();

    // Well-formed PEM, but the DER inside is not a key.
    let bogus = common::to_pem("PRIVATE KEY", b"secret-looking bytes 0123456789");
    dir.write_in_place(&leaf.cert_pem, &bogus);
    let error = load_err(&dir);
    assert!(matches!(error, TlsError::BadKey { .. }), "{error}");

    // A real key, damaged in the middle: its text must not appear in the error.
    let mut damaged = leaf.key_pem.clone().into_bytes();
    let middle = damaged.len() / 2;
    damaged[middle] = b'!';
    let damaged = String::from_utf8(damaged).unwrap();
    dir.write_in_place(&leaf.cert_pem, &damaged);
    let error = load_err(&dir);
    assert!(matches!(error, TlsError::Pem { .. }), "{error}");
    let shown = format!("{error} {error:?}");
    for line in leaf.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line), "key material in error: {shown}");
    }
}
