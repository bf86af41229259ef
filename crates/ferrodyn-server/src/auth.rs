//! Request authentication: who sent a request, proven by its SigV4 signature.
//!
//! Two modes:
//! - [`AuthMode::None`] (the test double): any well-formed request is accepted; the
//!   Authorization header (or a presigned query) must be present, its signature is not checked.
//! - [`AuthMode::Enforced`]: the signature is verified against the secret of the access key it
//!   names (`ferrodyn_auth::sigv4`), and the request runs as that key's [`Identity`].
//!
//! Invariant: authentication looks at the request exactly as received (raw path and query,
//! headers, body before any Content-Encoding is undone), because that is what was signed.

use std::sync::Arc;
use std::time::SystemTime;

use ferrodyn_auth::keys::{AccessKey, KeyStore};
use ferrodyn_auth::sigv4::{self, RequestParts, SigV4Error};

use crate::wire::EdgeError;

/// How requests are authenticated.
#[derive(Clone)]
pub enum AuthMode {
    None,
    Enforced(Arc<KeyStore>),
}

/// The principal a verified request runs as (cheap to make: two reference counts).
#[derive(Debug, Clone)]
pub struct Identity {
    pub key: Arc<AccessKey>,
    pub account: Arc<str>,
}

impl Identity {
    /// `arn:aws:iam::ACCOUNT:user/NAME`.
    pub fn arn(&self) -> &str {
        self.key.arn(&self.account)
    }
}

/// The parts of a request authentication needs, borrowed from the HTTP layer (SigV4's own
/// view of a request).
pub type Incoming<'a> = RequestParts<'a>;

/// A presigned request names its signature in the query string.
fn presigned(req: &Incoming<'_>) -> bool {
    req.query.is_some_and(|q| {
        q.split('&').any(|p| {
            p.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("X-Amz-Signature"))
        })
    })
}

/// Authenticates a request: `Ok(None)` in [`AuthMode::None`], the verified identity otherwise.
pub fn authenticate(
    mode: &AuthMode,
    account: &Arc<str>,
    req: &Incoming<'_>,
) -> Result<Option<Identity>, EdgeError> {
    match mode {
        AuthMode::None => {
            let header = req.header("authorization").unwrap_or_default();
            if header.iter().all(u8::is_ascii_whitespace) && !presigned(req) {
                return Err(EdgeError::MissingAuthenticationToken);
            }
            Ok(None)
        }
        AuthMode::Enforced(store) => {
            let keys = store.keys();
            // The key is borrowed from this keyring snapshot: its secret is never copied.
            let key =
                sigv4::verify_key(req, SystemTime::now(), |id| keys.get(id)).map_err(edge_error)?;
            Ok(Some(Identity {
                key: key.clone(),
                account: account.clone(),
            }))
        }
    }
}

fn edge_error(e: SigV4Error) -> EdgeError {
    let message = e.message();
    match e {
        SigV4Error::MissingAuthenticationToken => EdgeError::MissingAuthenticationToken,
        SigV4Error::IncompleteSignature(_) => EdgeError::IncompleteSignature(message),
        SigV4Error::UnrecognizedClient(_) => EdgeError::UnrecognizedClient(message),
        SigV4Error::InvalidSignature(_) | SigV4Error::SignatureDoesNotMatch(_) => {
            EdgeError::InvalidSignature(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming<'a>(headers: &'a [(&'a str, &'a [u8])], query: Option<&'a str>) -> Incoming<'a> {
        Incoming {
            method: "POST",
            path: "/",
            query,
            headers,
            body: b"{}",
        }
    }

    #[test]
    fn none_mode_needs_some_authentication() {
        let h: [(&str, &[u8]); 1] = [("Authorization", b"AWS4-HMAC-SHA256 Credential=x")];
        assert!(
            authenticate(&AuthMode::None, &Arc::from("0"), &incoming(&h, None))
                .unwrap()
                .is_none()
        );
        let blank: [(&str, &[u8]); 1] = [("authorization", b"  ")];
        assert!(matches!(
            authenticate(&AuthMode::None, &Arc::from("0"), &incoming(&blank, None)),
            Err(EdgeError::MissingAuthenticationToken)
        ));
        assert!(matches!(
            authenticate(&AuthMode::None, &Arc::from("0"), &incoming(&[], None)),
            Err(EdgeError::MissingAuthenticationToken)
        ));
        assert!(authenticate(
            &AuthMode::None,
            &Arc::from("0"),
            &incoming(
                &[],
                Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab")
            )
        )
        .is_ok());
    }
}
