//! Helpers shared by the fuzz targets: a byte-driven generator of attribute values and items
//! (so targets can check round trips and orderings on well-formed values, not only feed junk
//! to decoders), and the fixed placeholder maps of the expression targets.
//!
//! The generator never fails: when the input runs out it reads zeros, so every input yields
//! values and libFuzzer's mutations stay meaningful.

use std::collections::{BTreeMap, HashMap};

use ferrodyn_model::{AttributeValue, Item, Number, ScalarType};

/// Reads choices from the fuzzer's bytes.
pub struct Gen<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Gen<'a> {
    pub fn new(data: &'a [u8]) -> Gen<'a> {
        Gen { data, pos: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A choice in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u8) -> u8 {
        self.byte() % n
    }

    /// Up to `max` raw bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.byte() as usize) % (max + 1);
        let start = self.pos.min(self.data.len());
        let end = (start + len).min(self.data.len());
        self.pos += len;
        self.data[start..end].to_vec()
    }

    /// A short string: usually from a small alphabet (so orderings and equalities get hit),
    /// sometimes any UTF-8 (lossily converted bytes).
    pub fn string(&mut self) -> String {
        if self.below(4) == 0 {
            String::from_utf8_lossy(&self.bytes(12)).into_owned()
        } else {
            let len = self.below(6);
            (0..len).map(|_| (b'a' + self.below(4)) as char).collect()
        }
    }

    /// A number in DynamoDB's range: up to 38 significant digits, exponent within bounds.
    pub fn number(&mut self) -> Number {
        let digits = 1 + self.below(38) as usize;
        let mut text = String::new();
        if self.below(2) == 0 {
            text.push('-');
        }
        for i in 0..digits {
            let d = self.below(10);
            // Small numbers often, so equal values are common.
            text.push((b'0' + if i > 3 && self.below(2) == 0 { 0 } else { d }) as char);
        }
        let exp = (self.byte() as i32 % 200) - 100;
        text.push_str(&format!("e{exp}"));
        Number::parse(&text).unwrap_or_else(|_| Number::from_i64(self.byte() as i64 - 128))
    }

    pub fn scalar_type(&mut self) -> ScalarType {
        match self.below(3) {
            0 => ScalarType::S,
            1 => ScalarType::N,
            _ => ScalarType::B,
        }
    }

    /// A key value of type `t` (S and B not empty, as DynamoDB requires of keys).
    pub fn key_value(&mut self, t: ScalarType) -> AttributeValue {
        match t {
            ScalarType::S => {
                let mut s = self.string();
                if s.is_empty() {
                    s.push('k');
                }
                AttributeValue::S(s)
            }
            ScalarType::N => AttributeValue::N(self.number()),
            ScalarType::B => {
                let mut b = self.bytes(8);
                if b.is_empty() {
                    b.push(self.byte());
                }
                AttributeValue::B(b)
            }
        }
    }

    /// Any attribute value, nested at most `depth` more levels.
    pub fn value(&mut self, depth: u8) -> AttributeValue {
        let kinds = if depth == 0 { 8 } else { 10 };
        match self.below(kinds) {
            0 => AttributeValue::S(self.string()),
            1 => AttributeValue::N(self.number()),
            2 => AttributeValue::B(self.bytes(8)),
            3 => AttributeValue::Bool(self.below(2) == 1),
            4 => AttributeValue::Null,
            5 => {
                let mut v: Vec<String> = (0..1 + self.below(3)).map(|_| self.string()).collect();
                v.sort();
                v.dedup();
                AttributeValue::SS(v)
            }
            6 => {
                let mut v: Vec<Number> = (0..1 + self.below(3)).map(|_| self.number()).collect();
                v.sort();
                v.dedup();
                AttributeValue::NS(v)
            }
            7 => {
                let mut v: Vec<Vec<u8>> = (0..1 + self.below(3)).map(|_| self.bytes(4)).collect();
                v.sort();
                v.dedup();
                AttributeValue::BS(v)
            }
            8 => AttributeValue::L((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => AttributeValue::M(
                (0..self.below(4))
                    .map(|_| (self.string(), self.value(depth - 1)))
                    .collect(),
            ),
        }
    }

    pub fn item(&mut self) -> Item {
        let mut item = BTreeMap::new();
        for _ in 0..1 + self.below(6) {
            let name = self.string();
            let v = self.value(3);
            item.insert(name, v);
        }
        item
    }
}

/// The ExpressionAttributeNames of the expression targets.
pub fn names() -> HashMap<String, String> {
    [
        ("#a", "a"),
        ("#b", "b"),
        ("#c", "c"),
        ("#pk", "pk"),
        ("#sk", "sk"),
        ("#l", "list"),
        ("#m", "map"),
        ("#dot", "a.b"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The ExpressionAttributeValues of the expression targets: one of each type.
pub fn values() -> HashMap<String, AttributeValue> {
    use AttributeValue as V;
    let num = |s: &str| Number::parse(s).expect("a valid number");
    let n = |s: &str| V::N(num(s));
    [
        (":s", V::S("x".into())),
        (":t", V::S("y".into())),
        (":e", V::S(String::new())),
        (":n", n("1")),
        (":big", n("9.9999999999999999999999999999999999999E+125")),
        (":neg", n("-1E-130")),
        (":b", V::B(vec![0, 1, 2])),
        (":true", V::Bool(true)),
        (":null", V::Null),
        (":ss", V::SS(vec!["x".into(), "z".into()])),
        (":ns", V::NS(vec![num("1"), num("2")])),
        (":bs", V::BS(vec![vec![1], vec![2]])),
        (":l", V::L(vec![n("1"), V::S("x".into())])),
        (
            ":m",
            V::M([("k".to_string(), n("3"))].into_iter().collect()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The item expressions are evaluated against and updates applied to.
pub fn sample_item() -> Item {
    let mut v = values();
    let mut item: Item = BTreeMap::new();
    item.insert("pk".into(), AttributeValue::S("p".into()));
    item.insert("sk".into(), v.remove(":n").unwrap_or(AttributeValue::Null));
    item.insert("a".into(), AttributeValue::S("x".into()));
    item.insert("b".into(), v.remove(":ns").unwrap_or(AttributeValue::Null));
    item.insert("c".into(), v.remove(":ss").unwrap_or(AttributeValue::Null));
    item.insert(
        "list".into(),
        v.remove(":l").unwrap_or(AttributeValue::Null),
    );
    item.insert("map".into(), v.remove(":m").unwrap_or(AttributeValue::Null));
    item.insert("a.b".into(), AttributeValue::Bool(false));
    item
}
