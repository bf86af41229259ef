//! The primitives of the synchronization units that are model-checked ([`crate::durable`],
//! [`crate::group`], [`crate::cache`]): `parking_lot` locks and `std` atomics here. The loom
//! model tests (`tests/loom_group.rs`, `tests/loom_cache.rs`) compile those same files against
//! `ferrodyn_sim::sync` instead, which has this API over loom's primitives, so the protocol
//! checked is the one that ships. Only re-exports: nothing here costs anything.

pub(crate) use parking_lot::{Condvar, Mutex, RwLock};
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
pub(crate) use std::sync::Arc;
