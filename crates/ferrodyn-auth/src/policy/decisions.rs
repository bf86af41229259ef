//! Allow decisions already made for one access key, reused while nothing they depend on changes.
//!
//! Invariants:
//! - only decisions that no condition key could change are stored: neither the key's policy nor
//!   the resource's policy reads any (no condition, no policy variable), so the decision is a
//!   function of (key policy, resource policy, action, resource) alone;
//! - each decision is stored under the generation of the resource policies it was made with (the
//!   caller reads the generation before it reads the policy, and the owner of the policies bumps
//!   it after every change); a lookup under any other generation finds nothing;
//! - the key's own policy never changes: a reloaded key file brings new keys with empty caches;
//! - only allows are stored: a denial is evaluated again, for its message;
//! - the cache is bounded ([`DecisionCache::CAPACITY`] decisions per key) and starts over when
//!   full.

use std::collections::HashMap;

use parking_lot::RwLock;

#[derive(Default)]
struct Inner {
    generation: u64,
    /// Allowed actions by resource.
    allowed: HashMap<Box<str>, Vec<Box<str>>>,
    len: usize,
}

/// See the module documentation.
#[derive(Default)]
pub struct DecisionCache {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for DecisionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionCache")
            .field("len", &self.inner.read().len)
            .finish()
    }
}

impl DecisionCache {
    /// The most decisions one key keeps.
    pub const CAPACITY: usize = 4096;

    /// Whether `action` on `resource` was allowed under this generation of the resource
    /// policies.
    pub fn allowed(&self, generation: u64, action: &str, resource: &str) -> bool {
        let inner = self.inner.read();
        inner.generation == generation
            && inner
                .allowed
                .get(resource)
                .is_some_and(|actions| actions.iter().any(|a| **a == *action))
    }

    /// Remembers that `action` on `resource` is allowed under this generation (one made without
    /// any condition key: see the module documentation).
    pub fn remember_allowed(&self, generation: u64, action: &str, resource: &str) {
        let mut inner = self.inner.write();
        if inner.generation != generation {
            if generation < inner.generation {
                // Made with older policies than the ones already cached: not worth keeping.
                return;
            }
            inner.allowed.clear();
            inner.len = 0;
            inner.generation = generation;
        }
        if inner.len >= Self::CAPACITY {
            inner.allowed.clear();
            inner.len = 0;
        }
        let actions = inner.allowed.entry(resource.into()).or_default();
        if !actions.iter().any(|a| **a == *action) {
            actions.push(action.into());
            inner.len += 1;
        }
    }

    /// Decisions held now.
    pub fn len(&self) -> usize {
        self.inner.read().len
    }

    /// Whether no decision is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "arn:aws:dynamodb:r:1:table/T";

    #[test]
    fn found_only_under_its_generation() {
        let c = DecisionCache::default();
        assert!(!c.allowed(0, "dynamodb:GetItem", T));
        c.remember_allowed(3, "dynamodb:GetItem", T);
        assert!(c.allowed(3, "dynamodb:GetItem", T));
        assert!(!c.allowed(3, "dynamodb:PutItem", T));
        assert!(!c.allowed(3, "dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/U"));
        assert!(!c.allowed(4, "dynamodb:GetItem", T));
        assert!(!c.allowed(2, "dynamodb:GetItem", T));
    }

    #[test]
    fn a_newer_generation_drops_everything_an_older_one_is_ignored() {
        let c = DecisionCache::default();
        c.remember_allowed(5, "dynamodb:GetItem", T);
        c.remember_allowed(6, "dynamodb:PutItem", T);
        assert!(!c.allowed(6, "dynamodb:GetItem", T));
        assert!(c.allowed(6, "dynamodb:PutItem", T));
        c.remember_allowed(5, "dynamodb:GetItem", T);
        assert!(!c.allowed(5, "dynamodb:GetItem", T));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn bounded() {
        let c = DecisionCache::default();
        for i in 0..DecisionCache::CAPACITY + 10 {
            c.remember_allowed(1, "dynamodb:GetItem", &format!("{T}{i}"));
        }
        assert!(c.len() <= DecisionCache::CAPACITY);
        assert!(c.allowed(
            1,
            "dynamodb:GetItem",
            &format!("{T}{}", DecisionCache::CAPACITY + 9)
        ));
    }
}
