//! Walking an item's contents as a sequence of events, without building it.
//!
//! A stored item can be written out as JSON straight from its stored bytes: the
//! storage codec walks the bytes and a [`Visitor`] consumes the events. [`walk_item`] produces
//! the same events from an [`Item`] in memory, so any visitor gives the same result for an item
//! and for its stored form.
//!
//! Event order (names in ascending byte order, as `Item` and `M` hold them):
//! * an item: for each attribute, [`Visitor::name`] with `top_level = true`, then its value;
//! * a value: [`Visitor::begin`] with its kind, its content, [`Visitor::end`] with the same kind;
//! * content of S / N / B / BOOL: one [`Visitor::string`] / [`Visitor::number`] /
//!   [`Visitor::binary`] / [`Visitor::boolean`]; NULL has none;
//! * content of M: for each entry, [`Visitor::name`] with `top_level = false`, then its value;
//! * content of L: for each element, [`Visitor::element`] with `in_set = false`, then its value;
//! * content of SS / NS / BS: for each member, [`Visitor::element`] with `in_set = true`, then
//!   one bare `string` / `number` / `binary` (set members have no begin/end of their own).

use crate::number::Number;
use crate::value::{AttributeValue, Item};

/// The type of an attribute value, as its wire tag names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    S,
    N,
    B,
    Bool,
    Null,
    M,
    L,
    SS,
    NS,
    BS,
}

/// Consumer of the events described in the module documentation.
pub trait Visitor {
    fn begin(&mut self, kind: Kind);
    fn end(&mut self, kind: Kind);
    /// An attribute name (`top_level`) or an M entry's name; `first` within its map.
    fn name(&mut self, name: &str, top_level: bool, first: bool);
    /// Before each element of an L (`in_set = false`) or member of a set; `first` within it.
    fn element(&mut self, first: bool, in_set: bool);
    fn string(&mut self, s: &str);
    /// A string whose bytes nobody checked for UTF-8 yet (read from storage). Returns false,
    /// having produced nothing, when they are not UTF-8; otherwise acts as [`Visitor::string`].
    /// Visitors that can check UTF-8 more cheaply while they work override it.
    fn string_bytes(&mut self, b: &[u8]) -> bool {
        match std::str::from_utf8(b) {
            Ok(s) => {
                self.string(s);
                true
            }
            Err(_) => false,
        }
    }
    /// [`Visitor::name`] for unchecked bytes, as [`Visitor::string_bytes`] is to `string`.
    fn name_bytes(&mut self, b: &[u8], top_level: bool, first: bool) -> bool {
        match std::str::from_utf8(b) {
            Ok(s) => {
                self.name(s, top_level, first);
                true
            }
            Err(_) => false,
        }
    }
    fn number(&mut self, n: &Number);
    fn binary(&mut self, b: &[u8]);
    fn boolean(&mut self, b: bool);
}

/// A visitor that records every event as a line of text, so that two walks (of an item in
/// memory and of its stored bytes, say) can be compared event for event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EventLog(pub Vec<String>);

impl Visitor for EventLog {
    fn begin(&mut self, kind: Kind) {
        self.0.push(format!("begin {kind:?}"));
    }
    fn end(&mut self, kind: Kind) {
        self.0.push(format!("end {kind:?}"));
    }
    fn name(&mut self, name: &str, top_level: bool, first: bool) {
        self.0.push(format!("name {name:?} {top_level} {first}"));
    }
    fn element(&mut self, first: bool, in_set: bool) {
        self.0.push(format!("element {first} {in_set}"));
    }
    fn string(&mut self, s: &str) {
        self.0.push(format!("S {s:?}"));
    }
    fn number(&mut self, n: &Number) {
        self.0.push(format!("N {n}"));
    }
    fn binary(&mut self, b: &[u8]) {
        self.0.push(format!("B {b:?}"));
    }
    fn boolean(&mut self, b: bool) {
        self.0.push(format!("BOOL {b}"));
    }
}

/// Walks an item in memory.
pub fn walk_item<V: Visitor + ?Sized>(item: &Item, v: &mut V) {
    for (i, (name, value)) in item.iter().enumerate() {
        v.name(name, true, i == 0);
        walk_value(value, v);
    }
}

/// Walks one value. Recursion is bounded by the nesting depth of values, which requests limit
/// to 32 levels.
pub fn walk_value<V: Visitor + ?Sized>(value: &AttributeValue, v: &mut V) {
    match value {
        AttributeValue::S(s) => {
            v.begin(Kind::S);
            v.string(s);
            v.end(Kind::S);
        }
        AttributeValue::N(n) => {
            v.begin(Kind::N);
            v.number(n);
            v.end(Kind::N);
        }
        AttributeValue::B(b) => {
            v.begin(Kind::B);
            v.binary(b);
            v.end(Kind::B);
        }
        AttributeValue::Bool(b) => {
            v.begin(Kind::Bool);
            v.boolean(*b);
            v.end(Kind::Bool);
        }
        AttributeValue::Null => {
            v.begin(Kind::Null);
            v.end(Kind::Null);
        }
        AttributeValue::M(m) => {
            v.begin(Kind::M);
            for (i, (name, x)) in m.iter().enumerate() {
                v.name(name, false, i == 0);
                walk_value(x, v);
            }
            v.end(Kind::M);
        }
        AttributeValue::L(l) => {
            v.begin(Kind::L);
            for (i, x) in l.iter().enumerate() {
                v.element(i == 0, false);
                walk_value(x, v);
            }
            v.end(Kind::L);
        }
        AttributeValue::SS(s) => walk_set(v, Kind::SS, s, |v, x| v.string(x)),
        AttributeValue::NS(s) => walk_set(v, Kind::NS, s, |v, x| v.number(x)),
        AttributeValue::BS(s) => walk_set(v, Kind::BS, s, |v, x| v.binary(x)),
    }
}

/// A set: bare members, each after an `element` event.
fn walk_set<V: Visitor + ?Sized, T>(
    v: &mut V,
    kind: Kind,
    members: &[T],
    member: impl Fn(&mut V, &T),
) {
    v.begin(kind);
    for (i, x) in members.iter().enumerate() {
        v.element(i == 0, true);
        member(v, x);
    }
    v.end(kind);
}
