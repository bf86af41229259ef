//! Real handshakes on loopback against a server configured from generated certificate files.

mod common;

use common::{connect, connect_trusting, echo, peer_leaf, Ca, Dir, EchoServer};
use ferrodyn_tls::ReloadingTls;
use rustls::{CertificateError, Error as RustlsError};

#[tokio::test]
async fn client_trusting_the_ca_handshakes_and_exchanges_bytes() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server one", 1);
    let dir = Dir::new();
    dir.write_in_place(&leaf.cert_pem, &leaf.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let server = EchoServer::start(tls).await;

    let mut stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), leaf.cert);
    // The client offers h2 and http/1.1; the server only speaks HTTP/1.1.
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    echo(&mut stream, b"GET / HTTP/1.1\r\n").await;
    echo(&mut stream, b"second message on the same connection").await;
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_both_accepted() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    dir.write_in_place(&leaf.cert_pem, &leaf.key_pem);
    let server = EchoServer::start(ReloadingTls::load(dir.files()).unwrap()).await;

    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = common::client_config(&ca.cert, &[version]);
        let mut stream = connect(server.addr, config).await.unwrap();
        assert_eq!(
            stream.get_ref().1.protocol_version(),
            Some(version.version),
            "negotiated version"
        );
        echo(&mut stream, b"hello").await;
    }
}

#[tokio::test]
async fn client_offering_only_h2_is_refused() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    dir.write_in_place(&leaf.cert_pem, &leaf.key_pem);
    let server = EchoServer::start(ReloadingTls::load(dir.files()).unwrap()).await;

    let mut config = (*common::client_config(&ca.cert, rustls::DEFAULT_VERSIONS)).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let error = connect(server.addr, std::sync::Arc::new(config))
        .await
        .unwrap_err();
    assert!(
        matches!(
            common::rustls_error(&error),
            Some(RustlsError::AlertReceived(
                rustls::AlertDescription::NoApplicationProtocol
            ))
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn client_trusting_another_ca_fails() {
    let ca = Ca::new("Test CA");
    let other_ca = Ca::new("Other CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    dir.write_in_place(&leaf.cert_pem, &leaf.key_pem);
    let server = EchoServer::start(ReloadingTls::load(dir.files()).unwrap()).await;

    let error = connect_trusting(server.addr, &other_ca.cert)
        .await
        .unwrap_err();
    assert!(
        matches!(
            common::rustls_error(&error),
            Some(RustlsError::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ),
        "{error:?}"
    );
    // The server is unaffected by the failed handshake.
    let mut stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    echo(&mut stream, b"still serving").await;
}

#[tokio::test]
async fn chain_with_an_intermediate_is_sent_whole() {
    let root = Ca::new("Root CA");
    let intermediate = root.intermediate("Intermediate CA");
    let leaf = intermediate.leaf("server", 7);
    let dir = Dir::new();
    let chain = format!("{}{}", leaf.cert_pem, intermediate.cert_pem);
    dir.write_in_place(&chain, &leaf.key_pem);
    let server = EchoServer::start(ReloadingTls::load(dir.files()).unwrap()).await;

    // The client knows only the root: it needs the intermediate from the server.
    let mut stream = connect_trusting(server.addr, &root.cert).await.unwrap();
    let presented = stream.get_ref().1.peer_certificates().unwrap();
    assert_eq!(presented, [leaf.cert.clone(), intermediate.cert.clone()]);
    echo(&mut stream, b"chained").await;
}

#[tokio::test]
async fn key_encodings_pkcs8_pkcs1_and_sec1_are_accepted() {
    let ca = Ca::new("Test CA");
    let ec = ca.leaf("ec", 1);
    let rsa = ca.leaf_with("rsa", 2, &rcgen::PKCS_RSA_SHA256);
    let ed = ca.leaf_with("ed25519", 3, &rcgen::PKCS_ED25519);
    let cases = [
        ("PKCS#8 EC", &ec, ec.key_pem.clone()),
        ("SEC1 EC", &ec, common::ec_p256_sec1_pem(&ec.key_pkcs8_der)),
        ("PKCS#8 RSA", &rsa, rsa.key_pem.clone()),
        (
            "PKCS#1 RSA",
            &rsa,
            common::rsa_pkcs1_pem(&rsa.key_pkcs8_der),
        ),
        ("PKCS#8 Ed25519", &ed, ed.key_pem.clone()),
    ];
    for (name, leaf, key_pem) in cases {
        let dir = Dir::new();
        dir.write_in_place(&leaf.cert_pem, &key_pem);
        let tls = ReloadingTls::load(dir.files()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let server = EchoServer::start(tls).await;
        let mut stream = connect_trusting(server.addr, &ca.cert)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(peer_leaf(&stream), leaf.cert, "{name}");
        echo(&mut stream, name.as_bytes()).await;
    }
}

#[tokio::test]
async fn cert_and_key_may_share_one_file() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf("server", 1);
    let dir = Dir::new();
    let combined = format!("{}{}", leaf.key_pem, leaf.cert_pem);
    std::fs::write(dir.cert_path(), combined).unwrap();
    let files = ferrodyn_tls::TlsFiles {
        cert: dir.cert_path(),
        key: dir.cert_path(),
    };
    let server = EchoServer::start(ReloadingTls::load(files).unwrap()).await;
    let mut stream = connect_trusting(server.addr, &ca.cert).await.unwrap();
    assert_eq!(peer_leaf(&stream), leaf.cert);
    echo(&mut stream, b"combined").await;
}
