//! Why a request's signature was refused, worded as DynamoDB words it.

use std::fmt;

/// The message DynamoDB gives when the signature it computed differs from the one sent.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match \
the signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
service documentation for details.";

/// The message DynamoDB gives for an unknown access key id (with a full stop).
pub const INVALID_TOKEN_MESSAGE: &str = "The security token included in the request is invalid.";

/// The message DynamoDB gives when the session token does not fit the access key, e.g. temporary
/// credentials sent without their token (the same sentence, without the full stop).
pub const INVALID_SESSION_TOKEN_MESSAGE: &str =
    "The security token included in the request is invalid";

/// The message of `MissingAuthenticationTokenException`.
pub const MISSING_TOKEN_MESSAGE: &str = "Request is missing Authentication Token";

/// What the server computed for a request whose signature did not match: handed back only on
/// request (AWS once appended both to its message, which helps a client debug its signer).
#[derive(Clone, PartialEq, Eq)]
pub struct MismatchDetail {
    /// The canonical request, lossily decoded where its bytes are not UTF-8.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
}

impl fmt::Debug for MismatchDetail {
    // The canonical request holds header values (a session token among them): keep them out of
    // logs that print errors with `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MismatchDetail")
            .field(
                "canonical_request",
                &format_args!("<{} bytes>", self.canonical_request.len()),
            )
            .field("string_to_sign", &self.string_to_sign)
            .finish()
    }
}

/// A refused request. [`SigV4Error::type_name`] and [`SigV4Error::message`] give the `__type` (without
/// the `com.amazon.coral.service#` prefix) and `message` of DynamoDB's JSON error body; every one
/// of these is sent with HTTP status 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// Neither an `Authorization` header starting with `AWS4-` nor an `X-Amz-Algorithm` query
    /// parameter.
    MissingAuthenticationToken,
    /// The signature's parts are missing or malformed.
    IncompleteSignature(String),
    /// The signature is expired, not yet current, mis-scoped or otherwise refused before it is
    /// computed.
    InvalidSignature(String),
    /// The signature computed with the access key's secret differs from the one sent.
    SignatureDoesNotMatch(Box<MismatchDetail>),
    /// Unknown access key id, or a security token that does not belong to it.
    UnrecognizedClient(String),
}

impl SigV4Error {
    /// The error type DynamoDB reports, e.g. `"InvalidSignatureException"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignatureException",
            SigV4Error::InvalidSignature(_) | SigV4Error::SignatureDoesNotMatch(_) => {
                "InvalidSignatureException"
            }
            SigV4Error::UnrecognizedClient(_) => "UnrecognizedClientException",
        }
    }

    /// The `__type` of DynamoDB's error body, e.g.
    /// `"com.amazon.coral.service#InvalidSignatureException"`.
    pub fn qualified_type_name(&self) -> String {
        format!("com.amazon.coral.service#{}", self.type_name())
    }

    /// The HTTP status DynamoDB sends with this error.
    pub fn http_status(&self) -> u16 {
        400
    }

    /// The message DynamoDB sends.
    pub fn message(&self) -> String {
        match self {
            SigV4Error::MissingAuthenticationToken => MISSING_TOKEN_MESSAGE.to_owned(),
            SigV4Error::IncompleteSignature(m)
            | SigV4Error::InvalidSignature(m)
            | SigV4Error::UnrecognizedClient(m) => m.clone(),
            SigV4Error::SignatureDoesNotMatch(_) => SIGNATURE_MISMATCH_MESSAGE.to_owned(),
        }
    }

    /// The message with, for a signature mismatch, the canonical request and string to sign
    /// appended in the form AWS used (`The Canonical String for this request should have
    /// been ...`). Meant for a server's debug mode: it echoes header values back.
    pub fn detailed_message(&self) -> String {
        match self {
            SigV4Error::SignatureDoesNotMatch(d) => format!(
                "{SIGNATURE_MISMATCH_MESSAGE}\n\nThe Canonical String for this request should \
                 have been\n'{}'\n\nThe String-to-Sign should have been\n'{}'\n",
                d.canonical_request, d.string_to_sign
            ),
            other => other.message(),
        }
    }
}

impl fmt::Display for SigV4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name(), self.message())
    }
}

impl std::error::Error for SigV4Error {}
