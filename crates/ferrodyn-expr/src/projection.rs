//! ProjectionExpression / AttributesToGet semantics.
//!
//! Owns: building the projected item. The requested paths are merged into a tree; a path that
//! does not exist in the item contributes nothing (never an error); a list index selects that
//! element, and several indexes of one list yield the selected elements in index order; a map
//! or list with no selected descendant is omitted. If two paths overlap, the shorter wins.
//! Recursion depth is bounded by the longest path (32 elements for parsed expressions).

use std::collections::BTreeMap;

use ferrodyn_model::{AttributeValue, Item};

use crate::ast::{Path, PathElem};

#[derive(Debug, Default)]
struct Node {
    /// The whole value at this node is selected.
    whole: bool,
    keys: BTreeMap<String, Node>,
    indexes: BTreeMap<usize, Node>,
}

impl Node {
    fn insert(&mut self, elems: &[PathElem]) {
        let mut cur = self;
        for e in elems {
            if cur.whole {
                return;
            }
            cur = match e {
                PathElem::Attr(k) => cur.keys.entry(k.clone()).or_default(),
                PathElem::Index(i) => cur.indexes.entry(*i).or_default(),
            };
        }
        cur.whole = true;
        cur.keys.clear();
        cur.indexes.clear();
    }

    fn apply(&self, v: &AttributeValue) -> Option<AttributeValue> {
        if self.whole {
            return Some(v.clone());
        }
        match v {
            AttributeValue::M(m) if !self.keys.is_empty() => {
                let out: BTreeMap<String, AttributeValue> = self
                    .keys
                    .iter()
                    .filter_map(|(k, n)| Some((k.clone(), n.apply(m.get(k)?)?)))
                    .collect();
                (!out.is_empty()).then_some(AttributeValue::M(out))
            }
            AttributeValue::L(l) if !self.indexes.is_empty() => {
                let out: Vec<AttributeValue> = self
                    .indexes
                    .iter()
                    .filter_map(|(i, n)| n.apply(l.get(*i)?))
                    .collect();
                (!out.is_empty()).then_some(AttributeValue::L(out))
            }
            _ => None,
        }
    }
}

/// Projects `item` on `paths`.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut root: BTreeMap<&str, Node> = BTreeMap::new();
    for p in paths {
        if let Some((PathElem::Attr(a), rest)) = p.elems.split_first() {
            root.entry(a.as_str()).or_default().insert(rest);
        }
    }
    root.into_iter()
        .filter_map(|(k, n)| Some((k.to_string(), n.apply(item.get(k)?)?)))
        .collect()
}
