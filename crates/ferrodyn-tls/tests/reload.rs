//! Reloading: new connections see new files, established ones are untouched, bad files are
//! refused while the previous configuration stays in force.

mod common;

use std::time::Duration;

use common::{connect_trusting, echo, peer_leaf, Ca, Dir, EchoServer};
use ferrodyn_tls::{ReloadingTls, TlsError};

#[tokio::test]
async fn replaced_by_rename_new_connections_get_new_cert_old_connection_keeps_working() {
    let ca = Ca::new("Test CA");
    let first = ca.leaf("generation one", 1);
    let second = ca.leaf("generation two", 2);
    let dir = Dir::new();
    dir.write_in_place(&first.cert_pem, &first.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let server = EchoServer::start(tls.clone()).await;

    let mut before = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&before), first.cert);
    echo(&mut before, b"before reload").await;

    assert!(!tls.reload_if_changed().unwrap(), "nothing changed yet");
    dir.replace_by_rename(&second.cert_pem, &second.key_pem);
    assert!(tls.reload_if_changed().unwrap(), "new files must be taken");
    assert!(!tls.reload_if_changed().unwrap(), "already in force");

    let mut after = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&after), second.cert);
    echo(&mut after, b"after reload").await;

    // The connection made before the reload still works, with its original certificate.
    echo(&mut before, b"old connection after reload").await;
    assert_eq!(peer_leaf(&before), first.cert);
}

#[tokio::test]
async fn rewritten_in_place_is_reloaded() {
    let ca = Ca::new("Test CA");
    let first = ca.leaf("generation one", 1);
    let second = ca.leaf("generation two", 2);
    let dir = Dir::new();
    dir.write_in_place(&first.cert_pem, &first.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let server = EchoServer::start(tls.clone()).await;

    dir.write_in_place(&second.cert_pem, &second.key_pem);
    assert!(tls.reload_if_changed().unwrap());
    let mut stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), second.cert);
    echo(&mut stream, b"in place").await;
}

#[tokio::test]
async fn same_length_rewrite_with_preserved_mtime_is_still_seen() {
    // Two certificates of the same key type and name length encode to the same length; a copy
    // that preserves mtime must not hide the change.
    let ca = Ca::new("Test CA");
    let first = ca.leaf("generation 1", 1);
    // ECDSA signatures vary by a byte or two; draw until the lengths match.
    let second = (0..50)
        .map(|_| ca.leaf("generation 2", 2))
        .find(|l| {
            l.cert_pem.len() == first.cert_pem.len() && l.key_pem.len() == first.key_pem.len()
        })
        .expect("a same-length certificate");
    let dir = Dir::new();
    dir.write_in_place(&first.cert_pem, &first.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let server = EchoServer::start(tls.clone()).await;

    let times: Vec<_> = [dir.cert_path(), dir.key_path()]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    dir.write_in_place(&second.cert_pem, &second.key_pem);
    for (path, time) in [dir.cert_path(), dir.key_path()].iter().zip(times) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(time).unwrap();
    }

    assert!(tls.reload_if_changed().unwrap());
    let stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), second.cert);
}

#[tokio::test]
async fn broken_pem_keeps_previous_config_and_reports_error() {
    let ca = Ca::new("Test CA");
    let first = ca.leaf("generation one", 1);
    let second = ca.leaf("generation two", 2);
    let dir = Dir::new();
    dir.write_in_place(&first.cert_pem, &first.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let server = EchoServer::start(tls.clone()).await;

    let garbage = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    dir.write_in_place(garbage, &first.key_pem);
    for _ in 0..2 {
        // Refused, and refused again on the next try while the file stays broken.
        let error = tls.reload_if_changed().unwrap_err();
        assert!(matches!(error, TlsError::Pem { .. }), "{error}");
        assert!(error.to_string().contains("cert.pem"), "{error}");
    }
    let mut stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(
        peer_leaf(&stream),
        first.cert,
        "previous config stays in force"
    );
    echo(&mut stream, b"still the old cert").await;

    // Empty file (truncated, before the writer got to it).
    dir.write_in_place("", &first.key_pem);
    assert!(matches!(
        tls.reload_if_changed().unwrap_err(),
        TlsError::NoCertificate { .. }
    ));

    // Files deleted altogether.
    std::fs::remove_file(dir.cert_path()).unwrap();
    assert!(matches!(
        tls.reload_if_changed().unwrap_err(),
        TlsError::Read { .. }
    ));
    let stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), first.cert);

    // Fixed: taken on the next try.
    dir.replace_by_rename(&second.cert_pem, &second.key_pem);
    assert!(tls.reload_if_changed().unwrap());
    let stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), second.cert);
}

#[tokio::test]
async fn half_written_files_are_refused_then_taken_once_complete() {
    let ca = Ca::new("Test CA");
    let first = ca.leaf("generation one", 1);
    let second = ca.leaf("generation two", 2);
    let dir = Dir::new();
    dir.write_in_place(&first.cert_pem, &first.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let server = EchoServer::start(tls.clone()).await;

    // The certificate is half written.
    let half = &second.cert_pem[..second.cert_pem.len() / 2];
    std::fs::write(dir.cert_path(), half).unwrap();
    let error = tls.reload_if_changed().unwrap_err();
    assert!(matches!(error, TlsError::Pem { .. }), "{error}");

    // The certificate is complete but the key is still the old one.
    std::fs::write(dir.cert_path(), &second.cert_pem).unwrap();
    let error = tls.reload_if_changed().unwrap_err();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");

    // The key is half written.
    let half = &second.key_pem[..second.key_pem.len() / 2];
    std::fs::write(dir.key_path(), half).unwrap();
    let error = tls.reload_if_changed().unwrap_err();
    assert!(matches!(error, TlsError::Pem { .. }), "{error}");

    let stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), first.cert, "nothing partial was taken");

    std::fs::write(dir.key_path(), &second.key_pem).unwrap();
    assert!(tls.reload_if_changed().unwrap());
    let stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), second.cert);
}

#[tokio::test]
async fn watcher_reloads_and_stops_when_the_config_is_dropped() {
    let ca = Ca::new("Test CA");
    let first = ca.leaf("generation one", 1);
    let second = ca.leaf("generation two", 2);
    let dir = Dir::new();
    dir.write_in_place(&first.cert_pem, &first.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let watcher = tls.spawn_watcher(Duration::from_millis(20));
    let server = EchoServer::start(tls.clone()).await;

    // A broken file for a few ticks: nothing changes.
    std::fs::write(dir.cert_path(), "-----BEGIN CERTIFICATE-----\nMIIB").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), first.cert);

    dir.replace_by_rename(&second.cert_pem, &second.key_pem);
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    loop {
        let stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
        if peer_leaf(&stream) == second.cert {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "watcher never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Once the last Arc is gone (the server holds one), the watcher ends by itself.
    drop(server);
    drop(tls);
    tokio::time::timeout(common::TIMEOUT, watcher)
        .await
        .expect("watcher did not stop")
        .unwrap();
}

#[tokio::test]
async fn watcher_stops_when_aborted() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    dir.write_in_place(&leaf.cert_pem, &leaf.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let watcher = tls.spawn_watcher(Duration::from_millis(20));
    watcher.abort();
    let outcome = tokio::time::timeout(common::TIMEOUT, watcher)
        .await
        .unwrap();
    assert!(outcome.unwrap_err().is_cancelled());
}
