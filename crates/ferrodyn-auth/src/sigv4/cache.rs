//! Derivation of SigV4 signing keys, and a small bounded cache of them.
//!
//! A signing key is `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
//! "aws4_request")`: four HMACs per request that a cache turns into none. Entries are keyed by
//! the scope (access key id, date, region, service) and hold the secret they were derived from,
//! compared in constant time, so a rotated secret never meets the key derived from its
//! predecessor. Each entry also keeps an HMAC state already keyed with the signing key, so that
//! signing a string to sign costs no key setup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signing key for one secret and scope.
pub(crate) fn derive_signing_key(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
) -> [u8; 32] {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = hmac_sha256(&k_secret, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// One derived signing key.
struct Entry {
    /// `access_key_id/date/region/service`.
    scope: Box<str>,
    secret: Box<[u8]>,
    key: [u8; 32],
    /// An HMAC state keyed with `key`, to be cloned.
    mac: HmacSha256,
}

/// A signing key found or derived by [`SigningKeyCache::signing`].
pub(crate) struct Signing(Arc<Entry>);

impl Signing {
    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.0.key
    }

    /// An HMAC state keyed with [`Signing::key`].
    pub(crate) fn mac(&self) -> &HmacSha256 {
        &self.0.mac
    }
}

impl Entry {
    fn is(&self, scope: &str, secret: &str) -> bool {
        *self.scope == *scope && super::constant_time_eq(&self.secret, secret.as_bytes())
    }
}

/// How many recently used entries are tried before the map (most keys see one scope a day).
const RECENT: usize = 4;

#[derive(Default)]
struct Inner {
    /// Entries by scope; more than one per scope only while a rotated secret is still in use.
    map: HashMap<Box<str>, Vec<Arc<Entry>>>,
    len: usize,
    /// The entries found last, most recent first: compared before hashing anything.
    recent: Vec<Arc<Entry>>,
}

impl Inner {
    fn find(&mut self, scope: &str, secret: &str) -> Option<Arc<Entry>> {
        if let Some(i) = self.recent.iter().position(|e| e.is(scope, secret)) {
            let found = Arc::clone(&self.recent[i]);
            self.recent[..=i].rotate_right(1);
            return Some(found);
        }
        let found = self.map.get(scope)?.iter().find(|e| e.is(scope, secret))?;
        let found = Arc::clone(found);
        self.remember(&found);
        Some(found)
    }

    fn remember(&mut self, entry: &Arc<Entry>) {
        if self.recent.len() == RECENT {
            self.recent.pop();
        }
        self.recent.insert(0, Arc::clone(entry));
    }

    fn insert(&mut self, entry: Arc<Entry>, capacity: usize) {
        if self.len >= capacity {
            let victim_scope = self.map.keys().next().cloned();
            if let Some(scope) = victim_scope {
                if let Some(list) = self.map.get_mut(&scope) {
                    if let Some(victim) = list.pop() {
                        self.len -= 1;
                        self.recent.retain(|e| !Arc::ptr_eq(e, &victim));
                    }
                    if list.is_empty() {
                        self.map.remove(&scope);
                    }
                }
            }
        }
        self.remember(&entry);
        self.map.entry(entry.scope.clone()).or_default().push(entry);
        self.len += 1;
    }
}

/// A thread-safe, bounded cache of derived signing keys.
///
/// When full, an arbitrary entry makes room for the new one: keys are cheap to derive again and
/// the working set (keys in use × today's date) is normally far below the bound.
pub struct SigningKeyCache {
    inner: Mutex<Inner>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

impl Default for SigningKeyCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl SigningKeyCache {
    /// Room for this many signing keys by default.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A cache holding at most `capacity` keys; a capacity of 0 caches nothing.
    pub fn new(capacity: usize) -> Self {
        SigningKeyCache {
            inner: Mutex::new(Inner::default()),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The signing key for this secret and scope, derived now or taken from the cache.
    pub fn signing_key(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        let scope = [access_key_id, date, region, service].join("/");
        self.entry(&scope, secret_access_key, date, region, service)
            .key
    }

    /// The signing key of this secret and scope and an HMAC state keyed with it, `scope` being
    /// `access_key_id/date/region/service` (none of which holds a `/`).
    pub(crate) fn signing(
        &self,
        scope: &str,
        secret_access_key: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> Signing {
        Signing(self.entry(scope, secret_access_key, date, region, service))
    }

    fn entry(
        &self,
        scope: &str,
        secret_access_key: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> Arc<Entry> {
        if let Some(found) = self.lock().find(scope, secret_access_key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return found;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let key = derive_signing_key(secret_access_key, date, region, service);
        let entry = Arc::new(Entry {
            scope: scope.into(),
            secret: secret_access_key.as_bytes().into(),
            key,
            mac: keyed(&key),
        });
        if self.capacity > 0 {
            let mut inner = self.lock();
            // Another thread may have derived the same key meanwhile.
            if inner.find(scope, secret_access_key).is_none() {
                inner.insert(Arc::clone(&entry), self.capacity);
            }
        }
        entry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Look-ups answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Look-ups that derived a key so far.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Forgets every key (for instance after the key store was reloaded).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.recent.clear();
        inner.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The signing key of the worked example in AWS's SigV4 documentation (secret
    // wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam).
    #[test]
    fn derives_documented_key() {
        let k = derive_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(k),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn caches_and_separates_secrets() {
        let cache = SigningKeyCache::new(8);
        let a = cache.signing_key("AK", "secret-1", "20260101", "r", "dynamodb");
        let b = cache.signing_key("AK", "secret-1", "20260101", "r", "dynamodb");
        assert_eq!(a, b);
        assert_eq!((cache.hits(), cache.misses()), (1, 1));
        let rotated = cache.signing_key("AK", "secret-2", "20260101", "r", "dynamodb");
        assert_ne!(a, rotated);
        assert_eq!(
            rotated,
            derive_signing_key("secret-2", "20260101", "r", "dynamodb")
        );
        assert_eq!((cache.hits(), cache.misses()), (1, 2));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn stays_bounded() {
        let cache = SigningKeyCache::new(4);
        for i in 0..100 {
            let k = cache.signing_key(&format!("AK{i}"), "s", "20260101", "r", "dynamodb");
            assert_eq!(k, derive_signing_key("s", "20260101", "r", "dynamodb"));
            assert!(cache.len() <= 4);
        }
        let none = SigningKeyCache::new(0);
        none.signing_key("AK", "s", "20260101", "r", "dynamodb");
        assert!(none.is_empty());
    }
}
