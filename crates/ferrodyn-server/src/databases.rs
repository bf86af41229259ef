//! One database per access key id and signing region: DynamoDB Local's default (its command
//! line without `-sharedDb`), where two keys, or one key in two regions, see different tables.
//!
//! Each database is a whole [`Engine`] of its own (its own storage, catalog, streams and
//! background work), opened on the first request that names its key and region, by a function
//! the binary supplies (it knows the storage flags). The request's database is chosen after
//! authentication from the `Credential=KEY/DATE/REGION/...` of its Authorization header (or the
//! `X-Amz-Credential` of a presigned query); nothing else in the request path changes.
//!
//! Invariants: a key and region map to the same engine for the life of the process (the map
//! only grows, so a directory is never opened twice); the number of databases is bounded by
//! [`MAX_DATABASES`], so arbitrary credentials cannot exhaust memory or disk.

use std::collections::HashMap;
use std::sync::Arc;

use ferrodyn_core::Engine;
use std::sync::Mutex;

/// Most databases one server opens; a request for another gets LimitExceededException.
pub const MAX_DATABASES: usize = 256;

/// Opens the database of an access key id and region.
pub type OpenDatabase = dyn Fn(&DatabaseId) -> Result<Arc<Engine>, String> + Send + Sync;

/// The access key id and signing region a database belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatabaseId {
    pub access_key_id: String,
    pub region: String,
}

impl DatabaseId {
    /// A file name for the database, `KEY_REGION` as DynamoDB Local names its files: bytes
    /// outside `[A-Za-z0-9-]` are written `%XX`, so distinct ids never share a name and a name
    /// is never `.`, `..` or a path.
    pub fn file_name(&self) -> String {
        let mut out = String::new();
        escape(&self.access_key_id, &mut out);
        out.push('_');
        escape(&self.region, &mut out);
        out
    }
}

fn escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Longest access key id or region accepted (AWS's ids are 16–128 characters).
const MAX_PART: usize = 128;

/// The databases of a server, by access key id and region.
pub struct Databases {
    open: Box<OpenDatabase>,
    /// The region of requests whose credential names none.
    default_region: String,
    engines: Mutex<HashMap<DatabaseId, Arc<Engine>>>,
}

/// Why a request has no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseError {
    /// Too many databases are open already.
    Limit,
    /// The database could not be opened (the message names the cause, never a secret).
    Open(String),
}

impl Databases {
    pub fn new(default_region: String, open: Box<OpenDatabase>) -> Databases {
        Databases {
            open,
            default_region,
            engines: Mutex::new(HashMap::new()),
        }
    }

    /// The database of a request's credential (`None`: the credential names no key).
    ///
    /// Opening happens under the map's lock, so two first requests never open one directory
    /// twice; it is short (an in-memory engine, or an embedded store's recovery).
    pub(crate) fn engine_for(
        &self,
        credential: Option<(&str, Option<&str>)>,
    ) -> Result<Option<(Arc<Engine>, bool)>, DatabaseError> {
        let Some((key, region)) = credential else {
            return Ok(None);
        };
        let id = DatabaseId {
            access_key_id: key.to_owned(),
            region: region.unwrap_or(&self.default_region).to_owned(),
        };
        let mut engines = self.engines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = engines.get(&id) {
            return Ok(Some((e.clone(), false)));
        }
        if engines.len() >= MAX_DATABASES {
            return Err(DatabaseError::Limit);
        }
        let engine = (self.open)(&id).map_err(DatabaseError::Open)?;
        tracing::info!(
            access_key_id = %id.access_key_id,
            region = %id.region,
            "opened the database of an access key and region"
        );
        engines.insert(id, engine.clone());
        Ok(Some((engine, true)))
    }

    /// Every database opened so far.
    pub fn engines(&self) -> Vec<Arc<Engine>> {
        let engines = self.engines.lock().unwrap_or_else(|e| e.into_inner());
        engines.values().cloned().collect()
    }

    /// Flushes and closes every database (at shutdown, after the last request).
    pub fn close_all(&self) -> Result<(), String> {
        let mut first = Ok(());
        for e in self.engines() {
            if let Err(err) = e.close() {
                if first.is_ok() {
                    first = Err(err.to_string());
                }
            }
        }
        first
    }
}

/// The access key id and region a request's credential names: `Credential=KEY/DATE/REGION/...`
/// in a SigV4 Authorization header, else `X-Amz-Credential` in a presigned query. The region is
/// `None` when the credential stops before it (DynamoDB Local then fails; Ferrodyn uses its own
/// region). Parts longer than [`MAX_PART`] or empty keys are treated as no credential.
pub(crate) fn credential<'a>(
    authorization: Option<&'a [u8]>,
    query: Option<&'a str>,
) -> Option<(String, Option<String>)> {
    let from_header = authorization
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| {
            let at = h.find("Credential=")? + "Credential=".len();
            let rest = &h[at..];
            let end = rest
                .find(|c: char| c == ',' || c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            Some(rest[..end].to_owned())
        });
    let scope = from_header.or_else(|| {
        query?.split('&').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.eq_ignore_ascii_case("X-Amz-Credential")
                .then(|| percent_decode(v))
                .flatten()
        })
    })?;
    let mut parts = scope.split('/');
    let key = parts
        .next()
        .filter(|k| !k.is_empty() && k.len() <= MAX_PART)?;
    let _date = parts.next();
    let region = parts.next().filter(|r| !r.is_empty());
    if region.is_some_and(|r| r.len() > MAX_PART) {
        return None;
    }
    Some((key.to_owned(), region.map(str::to_owned)))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cred(h: &str) -> Option<(String, Option<String>)> {
        credential(Some(h.as_bytes()), None)
    }

    #[test]
    fn credential_of_a_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIA1/20261206/eu-west-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=abc";
        assert_eq!(cred(h), Some(("AKIA1".into(), Some("eu-west-1".into()))));
        assert_eq!(
            cred("AWS4-HMAC-SHA256 Credential=AKIA1/20261206/eu-west-1"),
            Some(("AKIA1".into(), Some("eu-west-1".into())))
        );
        assert_eq!(
            cred("AWS4-HMAC-SHA256 Credential=AKIA1"),
            Some(("AKIA1".into(), None))
        );
        assert_eq!(cred("foo"), None);
        assert_eq!(cred("AWS4-HMAC-SHA256 Credential=/x/y"), None);
        let long = format!("Credential={}/d/r", "k".repeat(MAX_PART + 1));
        assert_eq!(cred(&long), None);
        let long = format!("Credential=k/d/{}", "r".repeat(MAX_PART + 1));
        assert_eq!(cred(&long), None);
    }

    #[test]
    fn credential_of_a_presigned_query() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA2%2F20261206%2Fus-west-2%2Fdynamodb%2Faws4_request&X-Amz-Signature=00";
        assert_eq!(
            credential(None, Some(q)),
            Some(("AKIA2".into(), Some("us-west-2".into())))
        );
        assert_eq!(credential(None, Some("X-Amz-Credential=%zz")), None);
        assert_eq!(credential(None, None), None);
    }

    #[test]
    fn file_names_are_distinct_and_plain() {
        let id = |k: &str, r: &str| DatabaseId {
            access_key_id: k.into(),
            region: r.into(),
        };
        assert_eq!(id("AKIA1", "us-east-1").file_name(), "AKIA1_us-east-1");
        assert_eq!(id("..", "..").file_name(), "%2E%2E_%2E%2E");
        assert_ne!(id("a_b", "c").file_name(), id("a", "b_c").file_name());
        assert_eq!(id("a/b", "c").file_name(), "a%2Fb_c");
    }

    proptest! {
        #[test]
        fn credential_never_panics(h in proptest::collection::vec(any::<u8>(), 0..200),
                                   q in ".{0,200}") {
            let _ = credential(Some(&h), Some(&q));
        }

        #[test]
        fn file_names_are_injective(a in ".{0,20}", b in ".{0,20}", c in ".{0,20}", d in ".{0,20}") {
            let x = DatabaseId { access_key_id: a.clone(), region: b.clone() };
            let y = DatabaseId { access_key_id: c.clone(), region: d.clone() };
            let name = x.file_name();
            prop_assert!(!name.contains('/') && name != "." && name != "..");
            if x != y {
                prop_assert_ne!(name, y.file_name());
            }
        }
    }
}
