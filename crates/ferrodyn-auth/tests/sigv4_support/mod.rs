//! Requests for the SigV4 tests, signed by the AWS SDK's own signer (`aws-sigv4`), so that the
//! verifier is checked against an independent implementation.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use ferrodyn_auth::sigv4::{KeyMaterial, RequestParts, SigV4Error, Verified, Verifier};

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const TOKEN: &str = "FwoGZXIvYXdzEXAMPLETOKEN";
pub const TEMP_AKID: &str = "ASIAEXAMPLE";

/// 2026-12-06T00:00:00Z.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_515_200)
}

/// A request owned by the test, turned into `RequestParts` on demand.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Req {
    /// A DynamoDB `PutItem`-shaped request, unsigned.
    pub fn dynamodb(body: &str) -> Req {
        Req {
            method: "POST".into(),
            path: "/".into(),
            query: None,
            headers: vec![
                ("Host".into(), b"localhost:8000".to_vec()),
                (
                    "Content-Type".into(),
                    b"application/x-amz-json-1.0".to_vec(),
                ),
                ("X-Amz-Target".into(), b"DynamoDB_20120810.PutItem".to_vec()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.as_bytes().to_vec()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn set_header(self, name: &str, value: &str) -> Req {
        self.without_header(name).header(name, value)
    }

    pub fn get_header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub fn verify_with(
        &self,
        verifier: &Verifier,
        now: SystemTime,
        lookup: &dyn Fn(&str) -> Option<KeyMaterial>,
    ) -> Result<Verified, SigV4Error> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let parts = RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &headers,
            body: &self.body,
        };
        verifier.verify(&parts, now, lookup)
    }

    /// Verifies with the process-wide verifier and the standard key store.
    pub fn verify(&self, now: SystemTime) -> Result<Verified, SigV4Error> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let parts = RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &headers,
            body: &self.body,
        };
        ferrodyn_auth::sigv4::verify(&parts, now, &keys)
    }
}

/// The key store of the tests: AKIDEXAMPLE (long-term) and ASIAEXAMPLE (with a session token).
pub fn keys(akid: &str) -> Option<KeyMaterial> {
    match akid {
        AKID => Some(KeyMaterial {
            secret_access_key: SECRET.into(),
            session_token: None,
        }),
        TEMP_AKID => Some(KeyMaterial {
            secret_access_key: SECRET.into(),
            session_token: Some(TOKEN.into()),
        }),
        _ => None,
    }
}

/// How to sign.
#[derive(Debug, Clone)]
pub struct Signing<'a> {
    pub akid: &'a str,
    pub secret: &'a str,
    pub token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
    /// Presign with this expiry instead of signing into headers.
    pub presign: Option<Duration>,
}

impl Default for Signing<'_> {
    fn default() -> Self {
        Signing {
            akid: AKID,
            secret: SECRET,
            token: None,
            region: "us-east-1",
            service: "dynamodb",
            time: now(),
            presign: None,
        }
    }
}

/// RFC 3986 encoding of a query parameter name or value.
pub fn encode(s: &str) -> String {
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

/// Signs `req` in place with the AWS SDK signer.
pub fn sign_req(req: &mut Req, s: &Signing<'_>) {
    let identity =
        Credentials::new(s.akid, s.secret, s.token.map(str::to_owned), None, "tests").into();
    let mut settings = SigningSettings::default();
    if let Some(expires) = s.presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(s.region)
        .name(s.service)
        .time(s.time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let uri = match &req.query {
        Some(q) => format!("http://localhost:8000{}?{q}", req.path),
        None => format!("http://localhost:8000{}", req.path),
    };
    let header_strings: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                String::from_utf8(v.clone()).expect("UTF-8 header"),
            )
        })
        .collect();
    let signable = SignableRequest::new(
        &req.method,
        uri,
        header_strings.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(&req.body),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let (headers, params) = instructions.into_parts();
    for h in headers {
        req.headers
            .push((h.name().to_owned(), h.value().as_bytes().to_vec()));
    }
    if !params.is_empty() {
        let added: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let added = added.join("&");
        req.query = Some(match req.query.take() {
            Some(q) if !q.is_empty() => format!("{q}&{added}"),
            _ => added,
        });
    }
}

/// A DynamoDB request signed with the default signing settings.
pub fn signed(body: &str) -> Req {
    let mut req = Req::dynamodb(body);
    sign_req(&mut req, &Signing::default());
    req
}

/// The type name and message of an error, for compact assertions.
pub fn err(r: Result<Verified, SigV4Error>) -> (&'static str, String) {
    let e = r.expect_err("expected a refusal");
    (e.type_name(), e.message())
}
