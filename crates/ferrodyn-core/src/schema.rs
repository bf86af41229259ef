//! Read-only answers about a table's key schema for callers outside the engine (the server's
//! authorization needs a request's partition key values before the operation runs).

use crate::Engine;

/// The key attribute names of a table or of one of its indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNames {
    pub hash: String,
    pub range: Option<String>,
}

impl Engine {
    /// Key attribute names of `table`, or of its index `index`; `None` if either is unknown.
    pub fn key_names(&self, table: &str, index: Option<&str>) -> Option<KeyNames> {
        let tables = self.tables.read();
        let def = &tables.get(table)?.def;
        let (hash, range) = match index {
            None => (&def.hash_key, &def.range_key),
            Some(name) => {
                let ix = def
                    .local_indexes
                    .iter()
                    .chain(&def.global_indexes)
                    .find(|i| i.name == name)?;
                (&ix.hash_key, &ix.range_key)
            }
        };
        Some(KeyNames {
            hash: hash.name.clone(),
            range: range.as_ref().map(|r| r.name.clone()),
        })
    }
}
