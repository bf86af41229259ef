//! AWS Signature Version 4 verification, as Amazon DynamoDB does it.
//!
//! [`verify`] (or [`Verifier::verify`]) takes a request's parts, the current time and a way to
//! find the secret of an access key id, and either names the caller ([`Verified`]) or says why
//! not ([`SigV4Error`], whose type and message are those DynamoDB sends). Both forms are
//! accepted: the `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
//! Signature=...` header (its components separated by commas, spaces or both) and the presigned
//! query (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature`, `X-Amz-Security-Token`).
//!
//! # Order of the checks
//!
//! DynamoDB reports the first failing check, in this order, and so does this module:
//!
//! 1. An `Authorization` header together with an `X-Amz-Algorithm` query parameter:
//!    `InvalidSignatureException`.
//! 2. No header starting with `AWS4-` and no `X-Amz-Algorithm` parameter:
//!    `MissingAuthenticationTokenException`.
//! 3. A header component that is not `key=value`, then every missing part (`Credential`,
//!    `Signature`, `SignedHeaders`, a date; or the five required query parameters) at once:
//!    `IncompleteSignatureException`.
//! 4. A date that does not parse (`X-Amz-Date` in ISO 8601 basic format, else the `Date` header
//!    in RFC 1123): `IncompleteSignatureException`; an `X-Amz-Expires` out of 1..=604800 likewise.
//! 5. A date more than 15 minutes from now (or, presigned, older than `X-Amz-Expires`
//!    seconds): `InvalidSignatureException` "Signature expired" / "Signature not yet current".
//!    This comes before anything about the credential, so a stale request with an unknown key
//!    still reads "Signature expired".
//! 6. `host` not among the signed headers: `InvalidSignatureException`.
//! 7. An algorithm other than `AWS4-HMAC-SHA256`: `IncompleteSignatureException`.
//! 8. A credential that is not five `/`-separated parts (trailing slashes ignored):
//!    `IncompleteSignatureException`.
//! 9. A scope with a bad region, a service other than `dynamodb`, a terminator other than
//!    `aws4_request` or a date other than the request's: `InvalidSignatureException`, every
//!    fault in one message.
//! 10. An access key id the look-up does not know: `UnrecognizedClientException`.
//! 11. A signature that differs from the one computed (or an `x-amz-content-sha256` header that
//!     is not the body's hash): `InvalidSignatureException`.
//! 12. A security token other than the key's (missing, wrong, or sent for a key that has none):
//!     `UnrecognizedClientException`, worded as for an unknown key but without the full stop,
//!     as DynamoDB answers temporary credentials sent without their token. Checked after the
//!     signature, so only a holder of the secret learns anything about tokens.
//!
//! # Choices where a self-hosted server differs from AWS
//!
//! - **Region**: any syntactically valid region name is accepted (1 to 64 ASCII letters, digits,
//!   `-` and `_`), not only AWS's: clients of a self-hosted server are configured with arbitrary
//!   region names (`local`, `us-east-1`, `eu-test`), and the region is still bound into the
//!   signature through the scope. The region is returned in [`Verified`].
//! - **Service**: the scope must name `dynamodb` (DynamoDB Streams is signed with that name
//!   too). [`Verifier::with_service`] changes it, for tests against AWS's generic test suite.
//! - **Clock skew**: 15 minutes either way by default, as DynamoDB has long answered ("... - 15
//!   min."); [`Verifier::with_max_clock_skew`] changes it.
//! - **Presigned expiry**: AWS services other than S3 ignore `X-Amz-Expires` and keep the
//!   15-minute window; this module honours it (1..=604800 seconds, the window reaching that far
//!   back instead of 15 minutes; not-yet-current stays at the clock skew) and reports an expired
//!   presigned request as DynamoDB reports an expired signature (`InvalidSignatureException`,
//!   "Signature expired: ... (... - 60 min.)" with the window in the parenthesis).
//! - **Signature mismatch**: the message is DynamoDB's sentence alone; AWS once appended the
//!   canonical request and string to sign, which [`SigV4Error::detailed_message`] still gives.
//!
//! Nothing here panics on any input, performs I/O, or puts a secret into a message or `Debug`
//! output.

mod cache;
mod canonical;
mod datetime;
mod error;
mod prefix;

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use hmac::Mac;
use sha2::digest::Update;
use sha2::{Digest, Sha256};

pub use cache::SigningKeyCache;
pub use error::{
    MismatchDetail, SigV4Error, INVALID_SESSION_TOKEN_MESSAGE, INVALID_TOKEN_MESSAGE,
    MISSING_TOKEN_MESSAGE, SIGNATURE_MISMATCH_MESSAGE,
};

use canonical::{CanonicalInput, QueryParam, Sink};
use prefix::PrefixMemo;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name the credential scope must carry by default.
pub const DYNAMODB_SERVICE: &str = "dynamodb";
/// How far the signing time may be from now, either way, by default.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest `X-Amz-Expires` a presigned request may carry: seven days.
pub const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

const TERMINATOR: &str = "aws4_request";

/// The parts of an HTTP request that its signature covers, as received.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The raw path as received, still percent-encoded (normally `/`).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// Every header in arrival order; names in any case, repeated names possible.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body exactly as received (before any `Content-Encoding` decoding).
    pub body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// The first value of a header, its name compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// The headers verification reads, found in one pass over the request's headers (the first of
/// each name, compared without regard to case).
#[derive(Clone, Copy, Default)]
struct SigHeaders<'a> {
    authorization: Option<&'a [u8]>,
    amz_date: Option<&'a [u8]>,
    date: Option<&'a [u8]>,
    security_token: Option<&'a [u8]>,
    content_sha256: Option<&'a [u8]>,
}

impl<'a> SigHeaders<'a> {
    fn of(req: &RequestParts<'a>) -> SigHeaders<'a> {
        let mut found = SigHeaders::default();
        for &(name, value) in req.headers {
            let slot = match name.len() {
                13 if name.eq_ignore_ascii_case("authorization") => &mut found.authorization,
                10 if name.eq_ignore_ascii_case("x-amz-date") => &mut found.amz_date,
                4 if name.eq_ignore_ascii_case("date") => &mut found.date,
                20 if name.eq_ignore_ascii_case("x-amz-security-token") => {
                    &mut found.security_token
                }
                20 if name.eq_ignore_ascii_case("x-amz-content-sha256") => {
                    &mut found.content_sha256
                }
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        found
    }
}

/// `s` split at each `delimiter` (an ASCII byte), by bytes: cheaper than `str::split` for the
/// short lists of a signature (signed header names, credential parts).
pub(crate) fn split_ascii(s: &str, delimiter: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        // A byte loop: the pieces are a few bytes long, shorter than `memchr` pays off for.
        match r.bytes().position(|b| b == delimiter) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// What the key store knows of an access key id.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token requests with this key must carry, for temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Who signed an accepted request, and for which scope.
#[derive(Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id of the credential.
    pub access_key_id: String,
    /// The region of the credential scope.
    pub region: String,
    /// The service of the credential scope.
    pub service: String,
    /// The security token the request carried.
    pub session_token: Option<String>,
    /// Whether the signature came in the query string rather than the `Authorization` header.
    pub presigned: bool,
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("presigned", &self.presigned)
            .finish()
    }
}

/// What verification needs of an access key: its secret, and the session token its requests
/// must carry (temporary credentials). Implemented by [`KeyMaterial`] and by the key store's
/// own records, so a lookup can hand out a borrowed key without copying its secret.
pub trait Credential {
    fn secret_access_key(&self) -> &str;
    fn session_token(&self) -> Option<&str>;
}

impl Credential for KeyMaterial {
    fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }
    fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl<T: Credential + ?Sized> Credential for &T {
    fn secret_access_key(&self) -> &str {
        (**self).secret_access_key()
    }
    fn session_token(&self) -> Option<&str> {
        (**self).session_token()
    }
}

impl<T: Credential + ?Sized> Credential for std::sync::Arc<T> {
    fn secret_access_key(&self) -> &str {
        (**self).secret_access_key()
    }
    fn session_token(&self) -> Option<&str> {
        (**self).session_token()
    }
}

/// Equality of two byte strings in time that depends on their lengths only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A verifier with its settings and its cache of signing keys; [`verify`] uses a process-wide
/// one with the defaults.
#[derive(Debug)]
pub struct Verifier {
    service: String,
    max_clock_skew: Duration,
    cache: SigningKeyCache,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

/// Verifies a request with the process-wide [`Verifier`] (service `dynamodb`, 15 minutes of
/// clock skew, a cache of [`SigningKeyCache::DEFAULT_CAPACITY`] signing keys).
pub fn verify(
    req: &RequestParts<'_>,
    now: SystemTime,
    lookup: &dyn Fn(&str) -> Option<KeyMaterial>,
) -> Result<Verified, SigV4Error> {
    shared().verify(req, now, lookup)
}

/// [`verify`] for callers that only need the key: the key `lookup` found is returned as it
/// was found (borrowed, say), and nothing is allocated on the way.
pub fn verify_key<K: Credential>(
    req: &RequestParts<'_>,
    now: SystemTime,
    lookup: impl FnOnce(&str) -> Option<K>,
) -> Result<K, SigV4Error> {
    shared().verify_key(req, now, lookup)
}

fn shared() -> &'static Verifier {
    static SHARED: OnceLock<Verifier> = OnceLock::new();
    SHARED.get_or_init(Verifier::new)
}

/// The signature's parts, from either form.
struct Presented<'r> {
    presigned: bool,
    algorithm: Cow<'r, str>,
    credential: Cow<'r, str>,
    signed_headers: Cow<'r, str>,
    signature: Cow<'r, str>,
    /// The date as sent, and whether it came from `X-Amz-Date` (else from `Date`).
    date: Cow<'r, str>,
    date_is_amz: bool,
    expires: Option<Cow<'r, str>>,
    security_token: Option<Cow<'r, str>>,
}

/// The credential's parts once checked, and the request's signing time.
struct Scope<'p> {
    access_key_id: &'p str,
    /// `access_key_id/date/region/service`, as one slice of the credential.
    credential_scope: &'p str,
    date: &'p str,
    region: &'p str,
    service: &'p str,
    /// `date/region/service/aws4_request`, as one slice of the credential.
    string_scope: &'p str,
    /// The signing time in ISO 8601 basic format, as it enters the string to sign.
    request_iso: [u8; 16],
}

/// The bytes as text, invalid UTF-8 replaced (`String::from_utf8_lossy`, without its
/// byte-by-byte scan when the bytes are valid, as they nearly always are).
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The separators of the Authorization header's components: what `char::is_whitespace` and
/// `,` accept among ASCII characters.
const fn is_ascii_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | b',')
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ','
}

/// [`is_ascii_separator`] as a table: one load per byte of the Authorization header.
const SEPARATORS: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = is_ascii_separator(c as u8);
        c += 1;
    }
    table
};

/// How an Authorization header's components may be separated, found once per header.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Separators {
    /// ASCII with no whitespace but spaces (every SDK's header): `,` and ` ` are found with
    /// `memchr2`, many bytes at a time.
    Plain,
    /// ASCII with other whitespace (tabs, line breaks): a table, one byte at a time.
    Ascii,
    /// Not ASCII: `char::is_whitespace` decides.
    Unicode,
}

impl Separators {
    fn of(s: &str) -> Separators {
        // One pass without early exit, which the compiler turns into vector instructions.
        let (wide, control) = s.bytes().fold((false, false), |(wide, control), b| {
            (wide | (b >= 0x80), control | (b.wrapping_sub(b'\t') < 5))
        });
        match (wide, control) {
            (true, _) => Separators::Unicode,
            (false, true) => Separators::Ascii,
            (false, false) => Separators::Plain,
        }
    }
}

/// `s.split_once(is_separator)`, by bytes when `s` is ASCII.
fn split_at_separator(s: &str, how: Separators) -> Option<(&str, &str)> {
    let i = match how {
        Separators::Plain => memchr::memchr2(b',', b' ', s.as_bytes())?,
        Separators::Ascii => s.bytes().position(|b| SEPARATORS[usize::from(b)])?,
        Separators::Unicode => return s.split_once(is_separator),
    };
    // The separator found is one ASCII byte, so both sides are on character boundaries.
    Some((&s[..i], &s[i + 1..]))
}

fn query_value<'q>(params: &'q [QueryParam], name: &str) -> Option<&'q [u8]> {
    params
        .iter()
        .find(|p| p.name == name.as_bytes())
        .map(|p| p.value.as_slice())
}

fn valid_region(region: &str) -> bool {
    (1..=64).contains(&region.len())
        && region
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

impl Verifier {
    /// A verifier for service `dynamodb` with 15 minutes of clock skew and a default-sized cache.
    pub fn new() -> Self {
        Verifier {
            service: DYNAMODB_SERVICE.to_owned(),
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            cache: SigningKeyCache::default(),
        }
    }

    /// Requires this service name in the credential scope instead of `dynamodb`.
    pub fn with_service(mut self, service: &str) -> Self {
        self.service = service.to_owned();
        self
    }

    /// Accepts signing times this far from now, either way, instead of 15 minutes.
    pub fn with_max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// Uses this cache of signing keys.
    pub fn with_cache(mut self, cache: SigningKeyCache) -> Self {
        self.cache = cache;
        self
    }

    /// The cache of signing keys.
    pub fn cache(&self) -> &SigningKeyCache {
        &self.cache
    }

    /// Verifies a request's signature; see the module documentation for the order of checks.
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        now: SystemTime,
        lookup: &dyn Fn(&str) -> Option<KeyMaterial>,
    ) -> Result<Verified, SigV4Error> {
        self.check(req, now, lookup, |presented, scope, _| Verified {
            access_key_id: scope.access_key_id.to_owned(),
            region: scope.region.to_owned(),
            service: scope.service.to_owned(),
            session_token: presented.security_token.as_deref().map(str::to_owned),
            presigned: presented.presigned,
        })
    }

    /// [`Verifier::verify`], returning the key `lookup` found instead of a [`Verified`].
    pub fn verify_key<K: Credential>(
        &self,
        req: &RequestParts<'_>,
        now: SystemTime,
        lookup: impl FnOnce(&str) -> Option<K>,
    ) -> Result<K, SigV4Error> {
        self.check(req, now, lookup, |_, _, key| key)
    }

    /// Every check, in order; `done` makes the answer of an accepted request. Nothing is
    /// allocated on the way: the canonical request and the string to sign are gathered on the
    /// stack, each hashed in one call from the state its leading blocks had the last time this
    /// thread hashed them (see [`prefix`]), and shown as they are when the signature differs.
    fn check<K: Credential, T>(
        &self,
        req: &RequestParts<'_>,
        now: SystemTime,
        lookup: impl FnOnce(&str) -> Option<K>,
        done: impl FnOnce(&Presented<'_>, &Scope<'_>, K) -> T,
    ) -> Result<T, SigV4Error> {
        let query = match req.query {
            Some(q) if !q.is_empty() => canonical::parse_query(q),
            _ => Vec::new(),
        };
        let headers = SigHeaders::of(req);
        let presented = self.presented(&headers, &query)?;
        let scope = self.check_before_lookup(&presented, now)?;

        let Some(key) = lookup(scope.access_key_id) else {
            return Err(SigV4Error::UnrecognizedClient(
                INVALID_TOKEN_MESSAGE.to_owned(),
            ));
        };

        // Everything below is only reached with a known key.
        let payload_hash = canonical::sha256_hex(req.body);
        let signed_headers = canonical::signed_header_list(&presented.signed_headers);
        let input = CanonicalInput {
            method: req.method,
            path: req.path,
            query: &query,
            exclude_param: presented.presigned.then_some(&b"X-Amz-Signature"[..]),
            headers: req.headers,
            signed_headers: &signed_headers,
            payload_hash: &payload_hash,
        };
        // Gathered whole, then hashed from the state its leading blocks had last time.
        let mut canonical_request = canonical::StackText::<1024>::new();
        canonical::canonical_request_to(&input, &mut canonical_request);
        let canonical_hash = canonical::hex32(
            &with_memo(
                &CANONICAL_MEMO,
                &[0; 32],
                &Sha256::new(),
                canonical_request.as_bytes(),
            )
            .finalize()
            .into(),
        );
        let signing = self.cache.signing(
            scope.credential_scope,
            key.secret_access_key(),
            scope.date,
            scope.region,
            scope.service,
        );
        let mut string_to_sign = canonical::StackText::<192>::new();
        string_to_sign_to(&scope, &canonical_hash, &mut string_to_sign);
        let inner = with_memo(
            &SIGNING_MEMO,
            signing.key(),
            signing.mac(),
            string_to_sign.as_bytes(),
        );
        let expected = canonical::hex32(&inner.finalize().into_bytes().into());
        let signature_ok = constant_time_eq(&expected, presented.signature.as_bytes());
        let content_hash_ok = headers
            .content_sha256
            .is_none_or(|h| h.eq_ignore_ascii_case(&payload_hash));
        if !(signature_ok && content_hash_ok) {
            return Err(SigV4Error::SignatureDoesNotMatch(Box::new(
                MismatchDetail {
                    canonical_request: String::from_utf8_lossy(canonical_request.as_bytes())
                        .into_owned(),
                    string_to_sign: String::from_utf8_lossy(string_to_sign.as_bytes()).into_owned(),
                },
            )));
        }

        let token_ok = match (key.session_token(), presented.security_token.as_deref()) {
            (None, None) => true,
            (Some(expected), Some(sent)) => constant_time_eq(expected.as_bytes(), sent.as_bytes()),
            _ => false,
        };
        if !token_ok {
            return Err(SigV4Error::UnrecognizedClient(
                INVALID_SESSION_TOKEN_MESSAGE.to_owned(),
            ));
        }
        Ok(done(&presented, &scope, key))
    }

    /// Steps 1 to 3: which form, and are its parts all there.
    fn presented<'r>(
        &self,
        req: &SigHeaders<'r>,
        query: &'r [QueryParam],
    ) -> Result<Presented<'r>, SigV4Error> {
        let header = req.authorization.filter(|v| !v.is_empty());
        let algorithm_param = query_value(query, "X-Amz-Algorithm");
        match (header, algorithm_param) {
            (Some(_), Some(_)) => Err(SigV4Error::InvalidSignature(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as \
                 HTTP header."
                    .to_owned(),
            )),
            (Some(h), None) => Self::from_header(req, lossy(h)),
            (None, Some(_)) => Self::from_query(query),
            (None, None) => Err(SigV4Error::MissingAuthenticationToken),
        }
    }

    fn from_header<'r>(
        req: &SigHeaders<'r>,
        header: Cow<'r, str>,
    ) -> Result<Presented<'r>, SigV4Error> {
        match header {
            Cow::Borrowed(h) => Self::parse_header(req, h, Cow::Borrowed),
            Cow::Owned(h) => Self::parse_header(req, &h, |s| Cow::Owned(s.to_owned())),
        }
    }

    /// The header's parts, each kept as `keep` says (borrowed from the request when its header
    /// was valid UTF-8).
    fn parse_header<'r, 'h>(
        req: &SigHeaders<'r>,
        header: &'h str,
        keep: impl Fn(&'h str) -> Cow<'r, str>,
    ) -> Result<Presented<'r>, SigV4Error> {
        let trimmed = header.trim();
        if !trimmed.starts_with("AWS4-") {
            return Err(SigV4Error::MissingAuthenticationToken);
        }
        let how = Separators::of(trimmed);
        let (algorithm, mut rest) = split_at_separator(trimmed, how).unwrap_or((trimmed, ""));
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        let mut more = !rest.is_empty();
        while more {
            let component = match split_at_separator(rest, how) {
                Some((component, tail)) => {
                    rest = tail;
                    component
                }
                None => {
                    more = false;
                    rest
                }
            };
            if component.is_empty() {
                continue;
            }
            let Some(eq) = component.bytes().position(|b| b == b'=') else {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "'{component}' not a valid key=value pair (missing equal-sign) in \
                     Authorization header: '{header}'."
                )));
            };
            let (key, value) = (&component[..eq], &component[eq + 1..]);
            match key {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
        let amz_date = req.amz_date.filter(|v| !v.is_empty());
        let date = amz_date.or_else(|| req.date.filter(|v| !v.is_empty()));

        let mut missing = String::new();
        if credential.is_none_or(str::is_empty) {
            missing.push_str("Authorization header requires 'Credential' parameter. ");
        }
        if signature.is_none_or(str::is_empty) {
            missing.push_str("Authorization header requires 'Signature' parameter. ");
        }
        // An empty SignedHeaders is accepted here; the Host check refuses it later.
        if signed_headers.is_none() {
            missing.push_str("Authorization header requires 'SignedHeaders' parameter. ");
        }
        if date.is_none() {
            missing.push_str(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header. ",
            );
        }
        if !missing.is_empty() {
            missing.push_str("Authorization=");
            missing.push_str(header);
            return Err(SigV4Error::IncompleteSignature(missing));
        }

        Ok(Presented {
            presigned: false,
            algorithm: keep(algorithm),
            credential: keep(credential.unwrap_or_default()),
            signed_headers: keep(signed_headers.unwrap_or_default()),
            signature: keep(signature.unwrap_or_default()),
            date: lossy(date.unwrap_or_default()),
            date_is_amz: amz_date.is_some(),
            expires: None,
            security_token: req.security_token.map(lossy),
        })
    }

    fn from_query(query: &[QueryParam]) -> Result<Presented<'_>, SigV4Error> {
        let get = |name: &str| query_value(query, name).filter(|v| !v.is_empty());
        let required = [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Signature",
            "X-Amz-SignedHeaders",
            "X-Amz-Date",
        ];
        let mut missing = String::new();
        for name in required {
            if get(name).is_none() {
                missing.push_str("AWS query-string parameters must include '");
                missing.push_str(name);
                missing.push_str("'. ");
            }
        }
        if !missing.is_empty() {
            missing.push_str("Re-examine the query-string parameters.");
            return Err(SigV4Error::IncompleteSignature(missing));
        }
        let value = |name: &str| lossy(get(name).unwrap_or_default());
        Ok(Presented {
            presigned: true,
            algorithm: value("X-Amz-Algorithm"),
            credential: value("X-Amz-Credential"),
            signed_headers: value("X-Amz-SignedHeaders"),
            signature: value("X-Amz-Signature"),
            date: value("X-Amz-Date"),
            date_is_amz: true,
            expires: query_value(query, "X-Amz-Expires").map(lossy),
            security_token: query_value(query, "X-Amz-Security-Token").map(lossy),
        })
    }

    /// Steps 4 to 9: everything that needs no key.
    fn check_before_lookup<'p>(
        &self,
        p: &'p Presented<'_>,
        now: SystemTime,
    ) -> Result<Scope<'p>, SigV4Error> {
        // 4. The date, and X-Amz-Expires.
        let parsed = if p.date_is_amz {
            datetime::parse_iso8601_basic(&p.date)
        } else {
            datetime::parse_http_date(&p.date)
        };
        let Some(request_time) = parsed else {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'. See \
                 http://en.wikipedia.org/wiki/ISO_8601",
                p.date
            )));
        };
        let mut window = self.max_clock_skew;
        if let Some(expires) = &p.expires {
            window = Duration::from_secs(parse_expires(expires)?);
        }

        // 5. Expired or not yet current.
        let now_secs = datetime::unix_seconds(now);
        let to_secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let earliest = now_secs.saturating_sub(to_secs(window));
        let latest = now_secs.saturating_add(to_secs(self.max_clock_skew));
        let iso = datetime::format_iso8601_basic;
        if request_time < earliest {
            return Err(SigV4Error::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({} - {})",
                iso(request_time),
                iso(earliest),
                iso(now_secs),
                datetime::describe_tolerance(window)
            )));
        }
        if request_time > latest {
            return Err(SigV4Error::InvalidSignature(format!(
                "Signature not yet current: {} is still later than {} ({} + {})",
                iso(request_time),
                iso(latest),
                iso(now_secs),
                datetime::describe_tolerance(self.max_clock_skew)
            )));
        }

        // 6. Host must be signed.
        if !split_ascii(&p.signed_headers, b';').any(|h| h.eq_ignore_ascii_case("host")) {
            return Err(SigV4Error::InvalidSignature(
                "'Host' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
            ));
        }

        // 7. The algorithm.
        if p.algorithm != ALGORITHM {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} for now). ",
                p.algorithm
            )));
        }

        // 8. Five parts in the credential.
        let credential: &'p str = &p.credential;
        let trimmed = credential.trim_end_matches('/');
        let mut parts = split_ascii(trimmed, b'/');
        let (
            Some(access_key_id),
            Some(scope_date),
            Some(region),
            Some(service),
            Some(terminator),
            None,
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. \
                 keyid/date/region/service/term, got '{credential}'"
            )));
        };

        // 9. The scope.
        let mut faults = Vec::new();
        if !valid_region(region) {
            faults.push(format!(
                "Credential should be scoped to a valid region, not '{region}'."
            ));
        }
        if service != self.service {
            faults.push(format!(
                "Credential should be scoped to correct service: '{}'.",
                self.service
            ));
        }
        if terminator != TERMINATOR {
            faults.push(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not \
                 '{terminator}'."
            ));
        }
        // A valid X-Amz-Date is already the ISO 8601 basic form of the signing time.
        let request_iso = match <[u8; 16]>::try_from(p.date.as_bytes()) {
            Ok(sent) if p.date_is_amz => sent,
            _ => datetime::iso8601_basic(request_time),
        };
        if scope_date.as_bytes() != &request_iso[..8] {
            let request_iso = iso(request_time);
            let request_day = request_iso.get(..8).unwrap_or_default();
            faults.push(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{scope_date}' != '{request_day}', from '{request_iso}'."
            ));
        }
        if !faults.is_empty() {
            return Err(SigV4Error::InvalidSignature(faults.join(" ")));
        }

        // The first four parts and the slashes between them; the last four likewise.
        let scope_len = trimmed.len() - terminator.len() - 1;
        Ok(Scope {
            access_key_id,
            credential_scope: &trimmed[..scope_len],
            date: scope_date,
            region,
            service,
            string_scope: &trimmed[access_key_id.len() + 1..],
            request_iso,
        })
    }
}

thread_local! {
    /// The leading blocks of the last canonical request hashed on this thread.
    static CANONICAL_MEMO: RefCell<PrefixMemo<Sha256>> = RefCell::default();
    /// The leading blocks of the last string to sign, and the signing key they were keyed with.
    static SIGNING_MEMO: RefCell<PrefixMemo<cache::HmacSha256>> = RefCell::default();
}

/// `text` absorbed into `initial` through this thread's memo (see [`prefix`]); plainly when the
/// memo is out of reach (a thread being torn down), which gives the same state.
fn with_memo<S: Update + Clone + 'static>(
    memo: &'static std::thread::LocalKey<RefCell<PrefixMemo<S>>>,
    origin: &[u8; 32],
    initial: &S,
    text: &[u8],
) -> S {
    memo.try_with(|m| {
        m.try_borrow_mut()
            .ok()
            .map(|mut m| m.absorb(origin, initial, text))
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        let mut state = initial.clone();
        state.update(text);
        state
    })
}

/// The string to sign: algorithm, signing time, scope, hash of the canonical request.
fn string_to_sign_to<S: Sink + ?Sized>(scope: &Scope<'_>, canonical_hash: &[u8], out: &mut S) {
    out.put(ALGORITHM.as_bytes());
    out.put_byte(b'\n');
    out.put(&scope.request_iso);
    out.put_byte(b'\n');
    out.put(scope.string_scope.as_bytes());
    out.put_byte(b'\n');
    out.put(canonical_hash);
}

/// `X-Amz-Expires`: whole seconds, 1..=604800.
fn parse_expires(raw: &str) -> Result<u64, SigV4Error> {
    let incomplete = |m: &str| Err(SigV4Error::IncompleteSignature(m.to_owned()));
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return incomplete("X-Amz-Expires should be a number");
    }
    if raw.starts_with('-') {
        return incomplete("X-Amz-Expires must be non-negative");
    }
    match digits.parse::<u64>() {
        Ok(0) => incomplete("X-Amz-Expires must be greater than 0"),
        Ok(n) if n <= MAX_PRESIGNED_EXPIRES => Ok(n),
        _ => incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The byte-wise splits agree with the character-wise one wherever they are chosen.
        #[test]
        fn every_separator_tier_splits_alike(s in "[ -~\t\n\r\u{b}\u{c},]{0,80}|[a-z=/, ]{0,80}") {
            let how = Separators::of(&s);
            prop_assert_eq!(split_at_separator(&s, how), s.split_once(is_separator));
            prop_assert_eq!(
                split_at_separator(&s, Separators::Ascii),
                s.split_once(is_separator)
            );
            if how == Separators::Plain {
                prop_assert!(!s.bytes().any(|b| (b'\t'..=b'\r').contains(&b)));
            }
        }

        #[test]
        fn non_ascii_headers_split_by_characters(s in "[a-z ,\u{a0}\u{2003}é]{0,40}") {
            let how = Separators::of(&s);
            prop_assert_eq!(how == Separators::Unicode, !s.is_ascii());
            prop_assert_eq!(split_at_separator(&s, how), s.split_once(is_separator));
        }
    }
}
