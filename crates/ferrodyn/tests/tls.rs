//! HTTPS with the real binary: a certificate from a CA generated here, clients that verify it
//! (and one that does not trust the CA), and `aws:SecureTransport` in a key's policy.

mod auth_support;

use std::path::Path;

use auth_support::*;
use ferrodyn_testkit::ServerProcess;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferrodyn"))
}

/// A CA, and a leaf it signed for 127.0.0.1 and localhost; PEM files in `dir`.
struct Pki {
    ca_pem: String,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "Ferrodyn test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "ferrodyn test server");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, leaf_cert.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert,
        key,
    }
}

/// A client that trusts only `ca_pem` (none of the system's roots).
fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn start_tls(pki: &Pki, extra: &[&str]) -> ServerProcess {
    let mut args = vec![
        "serve",
        "--in-memory",
        "--port",
        "0",
        "--tls-cert",
        pki.cert.to_str().unwrap(),
        "--tls-key",
        pki.key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ServerProcess::start_args(binary(), &args)
}

#[tokio::test]
async fn https_with_a_verified_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = start_tls(&pki, &["--auth", "none"]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    let anyone = Cred::new("anyone", "anything");
    let req = signed(
        &server.url,
        &dynamodb("ListTables"),
        "{}",
        &Signing::now(&anyone),
    );
    let r = send(&trusting(&pki.ca_pem), &req).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"TableNames": []}));

    // By name too (the certificate names localhost).
    let by_name = signed(
        &server.url.replace("127.0.0.1", "localhost"),
        &dynamodb("ListTables"),
        "{}",
        &Signing::now(&anyone),
    );
    let r = send(&trusting(&pki.ca_pem), &by_name).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // A client that does not trust the CA fails the handshake.
    let untrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let err = send(&untrusting, &req).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // Another CA's certificate is refused just the same.
    let other = tempfile::tempdir().unwrap();
    let err = send(&trusting(&make_pki(other.path()).ca_pem), &req)
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // Plain HTTP to the HTTPS port gets no DynamoDB answer.
    let plain = req.clone();
    let plain = Signed {
        url: plain.url.replace("https://", "http://"),
        ..plain
    };
    assert!(send(&reqwest::Client::new(), &plain).await.is_err());
}

#[tokio::test]
async fn secure_transport_condition_allows_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let cred = Cred::new("AKIDSECURE", "secure-secret");
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["dynamodb:ListTables", "dynamodb:CreateTable"],
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}}
    }]});
    let keys = keys_path(dir.path());
    write_keys(&keys, &[key_entry("secure", &cred, Some(policy))]);
    let keys_arg = keys.to_str().unwrap();
    let https = start_tls(&pki, &["--auth", "keys", "--keys-file", keys_arg]);
    let http = ServerProcess::start_args(
        binary(),
        &[
            "serve",
            "--in-memory",
            "--port",
            "0",
            "--auth",
            "keys",
            "--keys-file",
            keys_arg,
        ],
    );
    assert!(http.url.starts_with("http://"), "{}", http.url);

    let client = trusting(&pki.ca_pem);
    let create = json!({"TableName": "Sec",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST"})
    .to_string();
    let r = send(
        &client,
        &signed(
            &https.url,
            &dynamodb("CreateTable"),
            &create,
            &Signing::now(&cred),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(
        &client,
        &signed(
            &https.url,
            &dynamodb("ListTables"),
            "{}",
            &Signing::now(&cred),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"TableNames": ["Sec"]}));

    let plain = reqwest::Client::new();
    let r = send(
        &plain,
        &signed(
            &http.url,
            &dynamodb("ListTables"),
            "{}",
            &Signing::now(&cred),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["__type"],
        "com.amazon.coral.service#AccessDeniedException"
    );
    assert_eq!(
        r.message(),
        implicit_deny("secure", "dynamodb:ListTables", &table_arn("*"))
    );
    let r = send(
        &plain,
        &signed(
            &http.url,
            &dynamodb("CreateTable"),
            &create,
            &Signing::now(&cred),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        r.message(),
        implicit_deny("secure", "dynamodb:CreateTable", &table_arn("Sec"))
    );
}
