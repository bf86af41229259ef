//! Access keys: who may sign requests, with which secret, under which policy.
//!
//! Keys come from JSON files in one format (the `--keys-file` an operator writes, and the file
//! in the data directory that `ferrodyn keys ...` manages):
//!
//! ```json
//! {"keys": [{"name": "reporting", "access_key_id": "AKIA...", "secret_access_key": "...",
//!            "session_token": "optional", "policy": { "Version": "2012-10-17", ... }}]}
//! ```
//!
//! Invariants:
//! - a [`Keyring`] is immutable once built; [`KeyStore`] swaps whole keyrings, so a request sees
//!   either the old keys or the new ones, never a mix, and a reload never blocks a request;
//! - a file that does not parse, or names a key twice, is rejected whole and the previous
//!   keyring stays in force;
//! - secrets never appear in `Debug` output, in errors or in logs.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::policy::{PolicyDocument, PolicyKind};

/// The file of a data directory that holds the keys `ferrodyn keys ...` manages.
pub const DATA_DIR_KEYS_FILE: &str = "access-keys.json";

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One access key as it is written in a key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Temporary credentials: requests must carry this as `X-Amz-Security-Token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
    /// The key's identity-based IAM policy; without one the key may do nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
}

/// The whole content of a key file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub keys: Vec<KeyRecord>,
}

/// A key ready for use: its record and its parsed policy.
#[derive(Debug)]
pub struct AccessKey {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub policy: Option<PolicyDocument>,
    /// `arn:aws:iam::ACCOUNT:user/NAME`, made at the first request (see [`AccessKey::arn`]).
    arn: std::sync::OnceLock<String>,
    /// Allow decisions made for this key that no condition key could change.
    decisions: crate::policy::DecisionCache,
}

impl crate::sigv4::Credential for AccessKey {
    fn secret_access_key(&self) -> &str {
        self.secret_access_key.expose()
    }
    fn session_token(&self) -> Option<&str> {
        self.session_token.as_ref().map(Secret::expose)
    }
}

impl AccessKey {
    /// Allow decisions already made for this key (see [`crate::policy::DecisionCache`]).
    pub fn decisions(&self) -> &crate::policy::DecisionCache {
        &self.decisions
    }

    /// The key's principal ARN in `account`. A server has one account, so the ARN is made
    /// once per key (per keyring) and later calls return it whatever `account` they pass.
    pub fn arn(&self, account: &str) -> &str {
        self.arn
            .get_or_init(|| format!("arn:aws:iam::{account}:user/{}", self.name))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl KeysError {
    fn in_file(path: &Path, e: impl fmt::Display) -> KeysError {
        KeysError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// Characters allowed in a key's name (IAM user names: alphanumerics and `+=,.@_-`).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c))
}

/// Access key ids: 1 to 128 word characters (AWS uses 16 to 128).
fn valid_key_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl KeyFile {
    pub fn parse(text: &str) -> Result<KeyFile, KeysError> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            KeysError::Invalid(format!(
                "not a valid key file: {}",
                mask_quoted(&e.to_string())
            ))
        })?;
        file.check()?;
        Ok(file)
    }

    /// Names and key ids unique and well formed, secrets non-empty, policies valid.
    pub fn check(&self) -> Result<(), KeysError> {
        let mut names = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            if !valid_name(&k.name) {
                return Err(KeysError::Invalid(format!(
                    "keys[{i}]: name {:?} must be 1 to 64 characters of letters, digits and +=,.@_-",
                    k.name
                )));
            }
            if !valid_key_id(&k.access_key_id) {
                return Err(KeysError::Invalid(format!(
                    "keys[{i}] ({}): access_key_id must be 1 to 128 letters, digits or _",
                    k.name
                )));
            }
            if k.secret_access_key.expose().is_empty() {
                return Err(KeysError::Invalid(format!(
                    "keys[{i}] ({}): secret_access_key is empty",
                    k.name
                )));
            }
            if !names.insert(k.name.as_str()) {
                return Err(KeysError::Invalid(format!(
                    "keys[{i}]: the name {:?} is used twice",
                    k.name
                )));
            }
            if !ids.insert(k.access_key_id.as_str()) {
                return Err(KeysError::Invalid(format!(
                    "keys[{i}] ({}): its access_key_id is used by another key",
                    k.name
                )));
            }
            if let Some(p) = &k.policy {
                parse_policy(p).map_err(|e| {
                    KeysError::Invalid(format!("keys[{i}] ({}): policy: {e}", k.name))
                })?;
            }
        }
        Ok(())
    }

    /// Reads a key file; a missing file is an empty one when `missing_ok`.
    pub fn read(path: &Path, missing_ok: bool) -> Result<KeyFile, KeysError> {
        match std::fs::read_to_string(path) {
            Ok(text) => KeyFile::parse(&text).map_err(|e| KeysError::in_file(path, e)),
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(KeyFile::default())
            }
            Err(e) => Err(KeysError::in_file(path, e)),
        }
    }

    /// Replaces the file atomically (temporary file, fsync, rename, fsync of the directory),
    /// readable by its owner only.
    pub fn write(&self, path: &Path) -> Result<(), KeysError> {
        use std::io::Write;
        self.check()?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let text =
            serde_json::to_string_pretty(self).map_err(|e| KeysError::Invalid(e.to_string()))?;
        let result = (|| -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(|e| KeysError::in_file(path, e))
    }

    /// Adds a key with a fresh id and secret; returns it (the only time the secret is shown).
    pub fn create(
        &mut self,
        name: &str,
        policy: Option<serde_json::Value>,
    ) -> Result<KeyRecord, KeysError> {
        if self.keys.iter().any(|k| k.name == name) {
            return Err(KeysError::Invalid(format!("a key named {name:?} exists")));
        }
        let record = KeyRecord {
            name: name.to_string(),
            access_key_id: new_key_id(),
            secret_access_key: new_secret(),
            session_token: None,
            policy,
        };
        self.keys.push(record.clone());
        self.check()?;
        Ok(record)
    }

    /// Gives the key `name` a new id and secret (the old ones stop working at the next reload).
    pub fn rotate(&mut self, name: &str) -> Result<KeyRecord, KeysError> {
        let k = self
            .keys
            .iter_mut()
            .find(|k| k.name == name)
            .ok_or_else(|| KeysError::Invalid(format!("no key named {name:?}")))?;
        k.access_key_id = new_key_id();
        k.secret_access_key = new_secret();
        Ok(k.clone())
    }

    pub fn delete(&mut self, name: &str) -> Result<(), KeysError> {
        let before = self.keys.len();
        self.keys.retain(|k| k.name != name);
        if self.keys.len() == before {
            return Err(KeysError::Invalid(format!("no key named {name:?}")));
        }
        Ok(())
    }
}

/// Replaces the contents of every double-quoted string of a parser message by `…`: serde
/// quotes the values it could not use, and such a value may be a secret. Field names (quoted
/// with backticks) and positions stay.
fn mask_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push('…');
            }
            inside = !inside;
            out.push(c);
        } else if !inside {
            out.push(c);
        }
    }
    out
}

fn parse_policy(v: &serde_json::Value) -> Result<PolicyDocument, String> {
    PolicyDocument::parse(&v.to_string(), PolicyKind::Identity).map_err(|e| e.to_string())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS random source does not fail on supported platforms; a failure here would mean
    // no key can be made safely, so it is fatal for the CLI that asked for one.
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

/// `FDAK` + 16 characters of RFC 4648 base32 (80 random bits), shaped like AWS key ids.
fn new_key_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes = random_bytes::<16>();
    let mut id = String::from("FDAK");
    id.extend(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[(b & 31) as usize])),
    );
    id
}

/// 40 characters from a 64-letter alphabet (240 random bits), shaped like AWS secrets.
fn new_secret() -> Secret {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = random_bytes::<40>();
    Secret(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[(b & 63) as usize]))
            .collect(),
    )
}

/// The keys in force at one moment, by access key id.
#[derive(Debug, Default)]
pub struct Keyring {
    by_id: HashMap<String, Arc<AccessKey>>,
}

impl Keyring {
    /// Builds a keyring from several files' contents (a key id or name in two files is an
    /// error: which secret would win is not obvious to an operator).
    pub fn build(files: &[(PathBuf, KeyFile)]) -> Result<Keyring, KeysError> {
        let mut by_id = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for (path, file) in files {
            for k in &file.keys {
                let policy = match &k.policy {
                    Some(p) => Some(parse_policy(p).map_err(|e| KeysError::in_file(path, e))?),
                    None => None,
                };
                if !names.insert(k.name.clone()) || by_id.contains_key(&k.access_key_id) {
                    return Err(KeysError::in_file(
                        path,
                        format!("key {:?} is also defined in another key file", k.name),
                    ));
                }
                by_id.insert(
                    k.access_key_id.clone(),
                    Arc::new(AccessKey {
                        name: k.name.clone(),
                        access_key_id: k.access_key_id.clone(),
                        secret_access_key: k.secret_access_key.clone(),
                        session_token: k.session_token.clone(),
                        policy,
                        arn: std::sync::OnceLock::new(),
                        decisions: Default::default(),
                    }),
                );
            }
        }
        Ok(Keyring { by_id })
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Arc<AccessKey>> {
        self.by_id.get(access_key_id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// What a file looked like when last read, to notice changes without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Option<(SystemTime, u64, u64)>);

fn fingerprint(path: &Path) -> Fingerprint {
    Fingerprint(std::fs::metadata(path).ok().map(|m| {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let ino = 0;
        (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), ino)
    }))
}

/// A key file the store reads: `required` files must exist; the data directory's may not yet.
#[derive(Debug, Clone)]
pub struct KeySource {
    pub path: PathBuf,
    pub required: bool,
}

/// The keys in force, reloaded from their files when they change.
pub struct KeyStore {
    sources: Vec<KeySource>,
    current: arc_swap::ArcSwap<Keyring>,
    seen: Mutex<Vec<Fingerprint>>,
}

impl KeyStore {
    /// Reads every source now; any error is returned (the server refuses to start).
    pub fn open(sources: Vec<KeySource>) -> Result<KeyStore, KeysError> {
        let seen = sources.iter().map(|s| fingerprint(&s.path)).collect();
        let ring = Self::read_all(&sources)?;
        Ok(KeyStore {
            sources,
            current: arc_swap::ArcSwap::from_pointee(ring),
            seen: Mutex::new(seen),
        })
    }

    fn read_all(sources: &[KeySource]) -> Result<Keyring, KeysError> {
        let files = sources
            .iter()
            .map(|s| Ok((s.path.clone(), KeyFile::read(&s.path, !s.required)?)))
            .collect::<Result<Vec<_>, KeysError>>()?;
        Keyring::build(&files)
    }

    /// The keyring in force (cheap; never waits for a reload).
    pub fn keys(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.current.load()
    }

    /// Re-reads the files if any changed since the last look (or always, with `force`).
    /// `Ok(true)`: a new keyring is in force. `Err`: the files are broken and the previous
    /// keyring stays in force (the change is not looked at again until the files change).
    pub fn reload(&self, force: bool) -> Result<bool, KeysError> {
        let mut seen = self.seen.lock();
        let now: Vec<Fingerprint> = self.sources.iter().map(|s| fingerprint(&s.path)).collect();
        if !force && now == *seen {
            return Ok(false);
        }
        *seen = now;
        let ring = Self::read_all(&self.sources)?;
        self.current.store(Arc::new(ring));
        Ok(true)
    }

    pub fn sources(&self) -> &[KeySource] {
        &self.sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"keys": [
        {"name": "reporting", "access_key_id": "AKIDREPORTING", "secret_access_key": "s3cr3t",
         "policy": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]}},
        {"name": "admin", "access_key_id": "AKIDADMIN", "secret_access_key": "other",
         "session_token": "tok"}
    ]}"#;

    #[test]
    fn parses_a_key_file_and_hides_secrets() {
        let f = KeyFile::parse(FILE).unwrap();
        let ring = Keyring::build(&[(PathBuf::from("k.json"), f)]).unwrap();
        let k = ring.get("AKIDREPORTING").unwrap();
        assert_eq!(k.name, "reporting");
        assert_eq!(k.secret_access_key.expose(), "s3cr3t");
        assert!(k.policy.is_some());
        let shown = format!("{k:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let admin = ring.get("AKIDADMIN").unwrap();
        assert!(!format!("{admin:?}").contains("tok\""));
        assert!(ring.get("nobody").is_none());
    }

    #[test]
    fn rejects_broken_files() {
        for (text, want) in [
            ("{", "not a valid key file"),
            (r#"{"keys": [], "extra": 1}"#, "unknown field"),
            (
                r#"{"keys": [{"name": "a", "access_key_id": "X", "secret_access_key": "s"},
                            {"name": "a", "access_key_id": "Y", "secret_access_key": "s"}]}"#,
                "used twice",
            ),
            (
                r#"{"keys": [{"name": "a", "access_key_id": "X", "secret_access_key": "s"},
                            {"name": "b", "access_key_id": "X", "secret_access_key": "s"}]}"#,
                "used by another key",
            ),
            (
                r#"{"keys": [{"name": "a b", "access_key_id": "X", "secret_access_key": "s"}]}"#,
                "name",
            ),
            (
                r#"{"keys": [{"name": "a", "access_key_id": "X", "secret_access_key": ""}]}"#,
                "empty",
            ),
            (
                r#"{"keys": [{"name": "a", "access_key_id": "X", "secret_access_key": "s",
                              "policy": {"Statement": 5}}]}"#,
                "policy",
            ),
        ] {
            let err = KeyFile::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains("\"s\""), "secret in error: {err}");
        }
    }

    #[test]
    fn parse_errors_never_repeat_values() {
        for text in [
            r#"{"keys": "hunter2-secret"}"#,
            r#"{"keys": [{"name": "a", "access_key_id": "X", "secret_access_key": ["hunter2-secret"]}]}"#,
            r#"{"keys": [{"name": "a", "access_key_id": "X", "secret_access_key": "hunter2-secret", "session_token": 7}]}"#,
        ] {
            let err = KeyFile::parse(text).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("line 1"), "{err}");
        }
        assert_eq!(
            mask_quoted(r#"invalid type: string "s3cr3t", expected `keys`"#),
            r#"invalid type: string "…", expected `keys`"#
        );
    }

    #[test]
    fn create_rotate_delete_and_write_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut f = KeyFile::read(&path, true).unwrap();
        let k = f.create("ops", None).unwrap();
        assert!(k.access_key_id.starts_with("FDAK") && k.access_key_id.len() == 20);
        assert_eq!(k.secret_access_key.expose().len(), 40);
        assert!(f.create("ops", None).is_err());
        f.write(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut again = KeyFile::read(&path, false).unwrap();
        assert_eq!(again.keys[0].access_key_id, k.access_key_id);
        let r = again.rotate("ops").unwrap();
        assert_ne!(r.access_key_id, k.access_key_id);
        assert_ne!(r.secret_access_key, k.secret_access_key);
        again.delete("ops").unwrap();
        assert!(again.delete("ops").is_err());
        assert!(again.rotate("ops").is_err());
    }

    #[test]
    fn store_reloads_on_change_and_keeps_keys_on_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, FILE).unwrap();
        let store = KeyStore::open(vec![KeySource {
            path: path.clone(),
            required: true,
        }])
        .unwrap();
        assert_eq!(store.keys().len(), 2);
        assert!(!store.reload(false).unwrap(), "unchanged");
        std::fs::write(&path, "{ broken").unwrap();
        assert!(store.reload(false).is_err());
        assert_eq!(store.keys().len(), 2, "previous keys stay in force");
        let one =
            r#"{"keys": [{"name": "x", "access_key_id": "AKIDX", "secret_access_key": "y"}]}"#;
        std::fs::write(&path, one).unwrap();
        assert!(store.reload(true).unwrap());
        assert_eq!(store.keys().len(), 1);
        assert!(store.keys().get("AKIDX").is_some());
    }

    #[test]
    fn missing_optional_source_is_empty_and_duplicates_across_files_fail() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        std::fs::write(&a, FILE).unwrap();
        let store = KeyStore::open(vec![
            KeySource {
                path: a.clone(),
                required: true,
            },
            KeySource {
                path: dir.path().join("absent.json"),
                required: false,
            },
        ])
        .unwrap();
        assert_eq!(store.keys().len(), 2);
        assert!(KeyStore::open(vec![KeySource {
            path: dir.path().join("absent.json"),
            required: true,
        }])
        .is_err());
        let b = dir.path().join("b.json");
        std::fs::write(&b, FILE).unwrap();
        let err = KeyStore::open(vec![
            KeySource {
                path: a,
                required: true,
            },
            KeySource {
                path: b,
                required: true,
            },
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("also defined"), "{err}");
    }
}
