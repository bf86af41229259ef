//! Request authentication: the single seam where signature verification plugs in.
//!
//! Today the SigV4 `Authorization` header is parsed (access key, region, service) but the
//! signature is not verified; [`Authenticator`] is where verification will live.

use crate::wire::EdgeError;

/// Who sent a request, as far as the Authorization header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key: String,
    pub region: Option<String>,
}

pub trait Authenticator: Send + Sync + 'static {
    /// Decides whether a request may proceed. `authorization` is the raw header value.
    fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, EdgeError>;
}

/// Accepts any well-formed SigV4 (or legacy) Authorization header without checking the signature.
pub struct ParseOnly;

impl Authenticator for ParseOnly {
    fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, EdgeError> {
        let header = authorization.ok_or(EdgeError::MissingAuthenticationToken)?;
        parse_authorization(header).ok_or(EdgeError::MissingAuthenticationToken)
    }
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/aws4_request, ...`.
pub fn parse_authorization(header: &str) -> Option<Principal> {
    let header = header.trim();
    if header.is_empty() {
        return None;
    }
    // The credential is the first parameter of a SigV4 header: look there before searching.
    let idx = match header.find(' ') {
        Some(sp) if header[sp + 1..].starts_with("Credential=") => Some(sp + 1),
        _ => header.find("Credential="),
    };
    let Some(idx) = idx else {
        // Some old clients sign differently; accept them with an unknown key rather than refuse.
        return Some(Principal {
            access_key: String::new(),
            region: None,
        });
    };
    let cred = &header[idx + "Credential=".len()..];
    let cred = cred.split([',', ' ']).next().unwrap_or("");
    let mut parts = cred.split('/');
    let access_key = parts.next().unwrap_or("").to_string();
    let _date = parts.next();
    let region = parts.next().map(str::to_string);
    Some(Principal { access_key, region })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sigv4_credential() {
        let p = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-west-2/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(p.access_key, "AKIDEXAMPLE");
        assert_eq!(p.region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn missing_header_is_missing_token() {
        assert!(matches!(
            ParseOnly.authenticate(None),
            Err(EdgeError::MissingAuthenticationToken)
        ));
        assert!(matches!(
            ParseOnly.authenticate(Some("  ")),
            Err(EdgeError::MissingAuthenticationToken)
        ));
    }
}
