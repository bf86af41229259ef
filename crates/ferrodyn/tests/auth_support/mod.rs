//! Shared by the authentication tests: key files, and raw requests signed by the AWS SDK's own
//! SigV4 signer (`aws-sigv4`), header or presigned form, so that exact error bodies can be read.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use ferrodyn_testkit::RawResponse;
use serde_json::{json, Value};

/// The account and region of every test server.
pub const ACCOUNT: &str = "000000000000";
pub const REGION: &str = "us-east-1";

pub fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
}

pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

/// DynamoDB's message for an action no identity-based policy allows.
pub fn implicit_deny(user: &str, action: &str, resource: &str) -> String {
    format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} because no \
         identity-based policy allows the {action} action",
        user_arn(user)
    )
}

/// DynamoDB's message for an explicit deny.
pub fn explicit_deny(user: &str, action: &str, resource: &str, kind: &str) -> String {
    let article = if kind == "identity-based" { "an" } else { "a" };
    format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} with an \
         explicit deny in {article} {kind} policy",
        user_arn(user)
    )
}

/// An access key as the tests hold it.
#[derive(Debug, Clone)]
pub struct Cred {
    pub akid: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Cred {
    pub fn new(akid: &str, secret: &str) -> Cred {
        Cred {
            akid: akid.into(),
            secret: secret.into(),
            token: None,
        }
    }

    pub fn with_token(mut self, token: &str) -> Cred {
        self.token = Some(token.into());
        self
    }
}

/// One entry of a key file.
pub fn key_entry(name: &str, cred: &Cred, policy: Option<Value>) -> Value {
    let mut k = json!({
        "name": name,
        "access_key_id": cred.akid,
        "secret_access_key": cred.secret,
    });
    if let Some(t) = &cred.token {
        k["session_token"] = json!(t);
    }
    if let Some(p) = policy {
        k["policy"] = p;
    }
    k
}

/// Replaces a key file the way an operator's tooling should: a new file renamed over the old.
pub fn write_keys(path: &Path, keys: &[Value]) {
    write_file(path, &json!({ "keys": keys }).to_string());
}

pub fn write_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub fn keys_path(dir: &Path) -> PathBuf {
    dir.join("keys.json")
}

/// A policy document of Allow statements `(actions, resource)`.
pub fn allow(actions: &[&str], resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": resource}
    ]})
}

/// How to sign a raw request.
#[derive(Debug, Clone)]
pub struct Signing {
    pub cred: Cred,
    pub time: SystemTime,
    /// Presign (signature in the query string) with this expiry.
    pub presign: Option<Duration>,
}

impl Signing {
    pub fn now(cred: &Cred) -> Signing {
        Signing {
            cred: cred.clone(),
            time: SystemTime::now(),
            presign: None,
        }
    }
}

/// A request ready to send: where, which headers, which body.
#[derive(Debug, Clone)]
pub struct Signed {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// RFC 3986 encoding of a query parameter name or value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A POST of `body` to `base` (`http://127.0.0.1:PORT`) with `X-Amz-Target: target`, signed.
pub fn signed(base: &str, target: &str, body: &str, s: &Signing) -> Signed {
    let url = format!("{}/", base.trim_end_matches('/'));
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.0".to_string(),
        ),
        ("x-amz-target".to_string(), target.to_string()),
    ];
    let identity = aws_credential_types::Credentials::new(
        &s.cred.akid,
        &s.cred.secret,
        s.cred.token.clone(),
        None,
        "tests",
    )
    .into();
    let mut settings = SigningSettings::default();
    if let Some(expires) = s.presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("dynamodb")
        .time(s.time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let (added, query) = instructions.into_parts();
    for h in added {
        headers.push((h.name().to_owned(), h.value().to_owned()));
    }
    let url = if query.is_empty() {
        url
    } else {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{url}?{}", q.join("&"))
    };
    Signed {
        url,
        headers,
        body: body.to_owned(),
    }
}

pub fn dynamodb(op: &str) -> String {
    format!("DynamoDB_20120810.{op}")
}

/// Sends a request with a blocking client (not from inside an async runtime).
pub fn send_blocking(client: &reqwest::blocking::Client, req: &Signed) -> RawResponse {
    let mut r = client.post(&req.url).body(req.body.clone());
    for (n, v) in &req.headers {
        r = r.header(n, v);
    }
    RawResponse::from_blocking(r.send().expect("send"))
}

/// Sends a request with an async client.
pub async fn send(client: &reqwest::Client, req: &Signed) -> Result<RawResponse, reqwest::Error> {
    let mut r = client.post(&req.url).body(req.body.clone());
    for (n, v) in &req.headers {
        r = r.header(n, v);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp.text().await?;
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// Signs now with `cred` and sends one DynamoDB operation (async).
pub async fn call(base: &str, cred: &Cred, op: &str, body: &Value) -> RawResponse {
    let req = signed(base, &dynamodb(op), &body.to_string(), &Signing::now(cred));
    send(&reqwest::Client::new(), &req).await.expect("send")
}

/// `YYYYMMDDTHHMMSSZ` of a time (UTC).
pub fn iso_basic(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Whole seconds of `t` (dropping the fraction, as the server's clock reading does).
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap().as_secs())
}
