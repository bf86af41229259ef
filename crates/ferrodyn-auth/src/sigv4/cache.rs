//! Derivation of SigV4 signing keys, and a small bounded cache of them.
//!
//! A signing key is `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
//! "aws4_request")`: four HMACs per request that a cache turns into one. Entries are keyed by
//! access key id, scope date, region, service and a SHA-256 fingerprint of the secret, so a
//! rotated secret never meets the key derived from its predecessor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
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

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    secret_fingerprint: [u8; 32],
}

/// A thread-safe, bounded cache of derived signing keys.
///
/// When full, an arbitrary entry makes room for the new one: keys are cheap to derive again and
/// the working set (keys in use × today's date) is normally far below the bound.
pub struct SigningKeyCache {
    entries: Mutex<HashMap<CacheKey, [u8; 32]>>,
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
            entries: Mutex::new(HashMap::new()),
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
        let key = CacheKey {
            access_key_id: access_key_id.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            secret_fingerprint: Sha256::digest(secret_access_key.as_bytes()).into(),
        };
        if let Some(found) = self.lock().get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return *found;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let derived = derive_signing_key(secret_access_key, date, region, service);
        if self.capacity > 0 {
            let mut entries = self.lock();
            if entries.len() >= self.capacity && !entries.contains_key(&key) {
                if let Some(victim) = entries.keys().next().cloned() {
                    entries.remove(&victim);
                }
            }
            entries.insert(key, derived);
        }
        derived
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, [u8; 32]>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.lock().len()
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
        self.lock().clear();
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
