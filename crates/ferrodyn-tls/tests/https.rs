//! HTTP/1.1 over TLS the way the server will serve it (hyper on the acceptor's stream), with
//! reqwest as the client, across a certificate reload.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{Ca, Dir};
use ferrodyn_tls::ReloadingTls;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;

async fn start_https(tls: Arc<ReloadingTls>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = tls.acceptor();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let body = format!("{} {}", request.method(), request.uri().path());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

fn client(addr: SocketAddr, root: &CertificateDer<'static>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(common::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .resolve("localhost", addr)
        .no_proxy()
        .timeout(common::TIMEOUT)
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_requests_before_and_after_a_reload() {
    let ca = Ca::new("Test CA");
    let first = ca.leaf("generation one", 1);
    let dir = Dir::new();
    dir.write_in_place(&first.cert_pem, &first.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let (addr, server) = start_https(tls.clone()).await;
    let url = format!("https://localhost:{}/tables", addr.port());

    let kept_alive = client(addr, &ca.cert);
    let response = kept_alive.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.text().await.unwrap(), "GET /tables");

    // Rotate to a certificate from a new CA: only clients trusting it can make new connections.
    let new_ca = Ca::new("New CA");
    let second = new_ca.leaf("generation two", 2);
    dir.replace_by_rename(&second.cert_pem, &second.key_pem);
    assert!(tls.reload_if_changed().unwrap());

    // The pooled connection from before the reload still serves requests.
    let response = kept_alive.post(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "POST /tables");

    // New connections present the new certificate.
    let fresh_old_trust = client(addr, &ca.cert);
    assert!(fresh_old_trust.get(&url).send().await.is_err());
    let fresh_new_trust = client(addr, &new_ca.cert);
    let response = fresh_new_trust.get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "GET /tables");

    server.abort();
}
