//! Read-only answers about a table's key schema for callers outside the engine (the server's
//! authorization needs a request's partition key values before the operation runs).

use crate::Engine;

/// The key attribute names of a table or of one of its indexes, in key-schema order (an index
/// with a multi-attribute key has several of each kind; a table one HASH and at most one RANGE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNames {
    pub hash: Vec<String>,
    pub range: Vec<String>,
}

impl Engine {
    /// Key attribute names of `table`, or of its index `index`; `None` if either is unknown.
    pub fn key_names(&self, table: &str, index: Option<&str>) -> Option<KeyNames> {
        let tables = self.tables.read();
        let def = &tables.get(table)?.def;
        let names = |keys: &mut dyn Iterator<Item = &crate::table::KeyAttr>| {
            keys.map(|k| k.name.clone()).collect::<Vec<_>>()
        };
        Some(match index {
            None => KeyNames {
                hash: vec![def.hash_key.name.clone()],
                range: names(&mut def.range_key.iter()),
            },
            Some(name) => {
                let (ix, _) = def.index(name)?;
                KeyNames {
                    hash: names(&mut ix.hash_keys()),
                    range: names(&mut ix.range_keys()),
                }
            }
        })
    }
}
