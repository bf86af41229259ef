//! AWS Signature Version 4 verification (interface placeholder; verification lands next).

use std::time::SystemTime;

pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

pub struct KeyMaterial {
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

#[derive(Debug)]
pub struct Verified {
    pub access_key_id: String,
}

#[derive(Debug)]
pub enum SigV4Error {
    MissingAuthenticationToken,
    IncompleteSignature(String),
    InvalidSignature(String),
    UnrecognizedClient(String),
}

impl SigV4Error {
    pub fn message(&self) -> String {
        match self {
            SigV4Error::MissingAuthenticationToken => {
                "Request is missing Authentication Token".into()
            }
            SigV4Error::IncompleteSignature(m)
            | SigV4Error::InvalidSignature(m)
            | SigV4Error::UnrecognizedClient(m) => m.clone(),
        }
    }
}

pub fn verify(
    req: &RequestParts<'_>,
    _now: SystemTime,
    lookup: &dyn Fn(&str) -> Option<KeyMaterial>,
) -> Result<Verified, SigV4Error> {
    let header = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .ok_or(SigV4Error::MissingAuthenticationToken)?;
    let id = header
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap_or_default();
    lookup(id).ok_or_else(|| {
        SigV4Error::UnrecognizedClient(
            "The security token included in the request is invalid.".into(),
        )
    })?;
    Ok(Verified {
        access_key_id: id.to_owned(),
    })
}
