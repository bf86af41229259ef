//! The primitives of the synchronization units that are model-checked ([`crate::stripes`]):
//! `parking_lot` here. The loom model tests (`tests/loom_stripes.rs`) compile those same files
//! against `ferrodyn_sim::sync` instead, which has this API over loom's primitives, so the
//! protocol checked is the one that ships. Only re-exports: nothing here costs anything.

pub(crate) use parking_lot::{Mutex, MutexGuard};
