//! Records of the layers above the engine (export and import jobs, triggers and their checkpoints): small byte values under
//! string keys, in keyspaces of their own, on whatever storage the engine runs (so they are
//! shared by the nodes of a cluster, like the catalog). The engine never interprets them.
//!
//! Invariant: record keyspaces are named `r-<space>`, apart from every keyspace the engine
//! uses itself; writes are durable when they return.

use std::ops::Bound;

use ferrodyn_model::Error;
use ferrodyn_storage::{Durability, WriteBatch};

use crate::{storage_err, Engine};

fn keyspace(space: &str) -> String {
    format!("r-{space}")
}

impl Engine {
    /// Stores `value` under `key` in `space` (durable when it returns).
    pub fn put_record(&self, space: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        let ks = keyspace(space);
        self.storage.create_keyspace(&ks).map_err(storage_err)?;
        let mut batch = WriteBatch::default();
        batch.put(&ks, key.as_bytes(), value);
        self.storage
            .write(batch, Durability::Sync)
            .map_err(storage_err)
    }

    /// Removes the record under `key` in `space` (durable when it returns; no error if absent).
    pub fn delete_record(&self, space: &str, key: &str) -> Result<(), Error> {
        let ks = keyspace(space);
        if !self.storage.keyspace_exists(&ks) {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.delete(&ks, key.as_bytes());
        self.storage
            .write(batch, Durability::Sync)
            .map_err(storage_err)
    }

    /// The record under `key` in `space`.
    pub fn get_record(&self, space: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let ks = keyspace(space);
        if !self.storage.keyspace_exists(&ks) {
            return Ok(None);
        }
        self.storage.get(&ks, key.as_bytes()).map_err(storage_err)
    }

    /// Every record of `space`, in key order.
    pub fn list_records(&self, space: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let ks = keyspace(space);
        if !self.storage.keyspace_exists(&ks) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        self.storage
            .scan(
                &ks,
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    out.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()));
                    true
                },
            )
            .map_err(storage_err)?;
        Ok(out)
    }

    /// Attaches a service of a layer above (one per type) to this engine, so that every
    /// request path that has the engine finds it; replaces an earlier one of the same type.
    pub fn attach<T: std::any::Any + Send + Sync>(&self, service: std::sync::Arc<T>) {
        let mut slots = self.attached.write();
        slots.retain(|s| !s.is::<T>());
        slots.push(service);
    }

    /// The service of type `T` attached with [`Engine::attach`].
    pub fn attached<T: std::any::Any + Send + Sync>(&self) -> Option<std::sync::Arc<T>> {
        self.attached
            .read()
            .iter()
            .find_map(|s| s.clone().downcast::<T>().ok())
    }

    /// True while table `name` exists and is still being loaded by an import or a restore.
    pub fn is_loading(&self, name: &str) -> bool {
        self.tables
            .read()
            .get(name)
            .is_some_and(|t| t.def.loading())
    }
}
