//! Binary encoding of items as stored values.
//!
//! Layout: `FORMAT_V1` byte, then a map body. Values are tagged; lengths and counts are LEB128.
//! Numbers use the model's order-preserving number encoding (self-delimiting, exact).
//! Invariant: `decode(encode(item)) == item` and decoding corrupt bytes returns an error, never
//! panics. Nesting depth of stored items is bounded by request validation (32 levels), so the
//! decoder's recursion is bounded too (it still refuses anything deeper than `MAX_DEPTH`).

use std::collections::BTreeMap;

use ferrodyn_model::{AttributeValue, Error, Item, Number};

const FORMAT_V1: u8 = 1;
const MAX_DEPTH: usize = 64;

const T_S: u8 = 0;
const T_N: u8 = 1;
const T_B: u8 = 2;
const T_FALSE: u8 = 3;
const T_TRUE: u8 = 4;
const T_NULL: u8 = 5;
const T_M: u8 = 6;
const T_L: u8 = 7;
const T_SS: u8 = 8;
const T_NS: u8 = 9;
const T_BS: u8 = 10;

pub fn encode_item(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(FORMAT_V1);
    encode_map(item, &mut out);
    out
}

pub fn decode_item(bytes: &[u8]) -> Result<Item, Error> {
    let (&v, rest) = bytes.split_first().ok_or_else(|| corrupt("empty item"))?;
    if v != FORMAT_V1 {
        return Err(corrupt("unknown item format"));
    }
    let mut r = Reader { b: rest, pos: 0 };
    let m = r.map(0)?;
    if r.pos != r.b.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(m)
}

fn corrupt(what: &str) -> Error {
    Error::internal(format!("corrupt stored item: {what}"))
}

fn put_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    put_len(b.len(), out);
    out.extend_from_slice(b);
}

fn encode_map(m: &BTreeMap<String, AttributeValue>, out: &mut Vec<u8>) {
    put_len(m.len(), out);
    for (k, v) in m {
        put_bytes(k.as_bytes(), out);
        encode_value(v, out);
    }
}

fn encode_value(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => {
            out.push(T_S);
            put_bytes(s.as_bytes(), out);
        }
        AttributeValue::N(n) => {
            out.push(T_N);
            n.encode_ordered(out);
        }
        AttributeValue::B(b) => {
            out.push(T_B);
            put_bytes(b, out);
        }
        AttributeValue::Bool(false) => out.push(T_FALSE),
        AttributeValue::Bool(true) => out.push(T_TRUE),
        AttributeValue::Null => out.push(T_NULL),
        AttributeValue::M(m) => {
            out.push(T_M);
            encode_map(m, out);
        }
        AttributeValue::L(l) => {
            out.push(T_L);
            put_len(l.len(), out);
            for x in l {
                encode_value(x, out);
            }
        }
        AttributeValue::SS(s) => {
            out.push(T_SS);
            put_len(s.len(), out);
            for x in s {
                put_bytes(x.as_bytes(), out);
            }
        }
        AttributeValue::NS(s) => {
            out.push(T_NS);
            put_len(s.len(), out);
            for x in s {
                x.encode_ordered(out);
            }
        }
        AttributeValue::BS(s) => {
            out.push(T_BS);
            put_len(s.len(), out);
            for x in s {
                put_bytes(x, out);
            }
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Error> {
        let v = *self.b.get(self.pos).ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(v)
    }
    fn len(&mut self) -> Result<usize, Error> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= ((byte & 0x7f) as usize) << shift;
            if byte & 0x80 == 0 {
                if n > self.b.len() {
                    return Err(corrupt("length out of range"));
                }
                return Ok(n);
            }
        }
        Err(corrupt("length overflow"))
    }
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = self.len()?;
        let end = self.pos.checked_add(n).ok_or_else(|| corrupt("length"))?;
        let s = self
            .b
            .get(self.pos..end)
            .ok_or_else(|| corrupt("truncated bytes"))?;
        self.pos = end;
        Ok(s)
    }
    fn string(&mut self) -> Result<String, Error> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| corrupt("invalid utf-8"))
    }
    fn number(&mut self) -> Result<Number, Error> {
        let rest = self
            .b
            .get(self.pos..)
            .ok_or_else(|| corrupt("truncated number"))?;
        let (n, used) = Number::decode_ordered(rest).ok_or_else(|| corrupt("bad number"))?;
        self.pos += used;
        Ok(n)
    }
    fn map(&mut self, depth: usize) -> Result<BTreeMap<String, AttributeValue>, Error> {
        let n = self.len()?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.string()?;
            let v = self.value(depth + 1)?;
            m.insert(k, v);
        }
        Ok(m)
    }
    fn value(&mut self, depth: usize) -> Result<AttributeValue, Error> {
        if depth > MAX_DEPTH {
            return Err(corrupt("nesting too deep"));
        }
        Ok(match self.byte()? {
            T_S => AttributeValue::S(self.string()?),
            T_N => AttributeValue::N(self.number()?),
            T_B => AttributeValue::B(self.bytes()?.to_vec()),
            T_FALSE => AttributeValue::Bool(false),
            T_TRUE => AttributeValue::Bool(true),
            T_NULL => AttributeValue::Null,
            T_M => AttributeValue::M(self.map(depth)?),
            T_L => {
                let n = self.len()?;
                let mut l = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    l.push(self.value(depth + 1)?);
                }
                AttributeValue::L(l)
            }
            T_SS => {
                let n = self.len()?;
                let mut l = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    l.push(self.string()?);
                }
                AttributeValue::SS(l)
            }
            T_NS => {
                let n = self.len()?;
                let mut l = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    l.push(self.number()?);
                }
                AttributeValue::NS(l)
            }
            T_BS => {
                let n = self.len()?;
                let mut l = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    l.push(self.bytes()?.to_vec());
                }
                AttributeValue::BS(l)
            }
            _ => return Err(corrupt("unknown tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let mut inner = BTreeMap::new();
        inner.insert(
            "x".to_string(),
            AttributeValue::L(vec![AttributeValue::Null, AttributeValue::Bool(true)]),
        );
        let mut item = Item::new();
        item.insert("s".into(), AttributeValue::S("héllo".into()));
        item.insert(
            "n".into(),
            AttributeValue::N(Number::parse("-12.5e3").unwrap()),
        );
        item.insert("b".into(), AttributeValue::B(vec![0, 1, 255]));
        item.insert("f".into(), AttributeValue::Bool(false));
        item.insert("m".into(), AttributeValue::M(inner));
        item.insert(
            "ss".into(),
            AttributeValue::SS(vec!["a".into(), "b".into()]),
        );
        item.insert(
            "ns".into(),
            AttributeValue::NS(vec![
                Number::parse("1").unwrap(),
                Number::parse("2.5").unwrap(),
            ]),
        );
        item.insert("bs".into(), AttributeValue::BS(vec![vec![1], vec![]]));
        let enc = encode_item(&item);
        assert_eq!(decode_item(&enc).unwrap(), item);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut item = Item::new();
        item.insert("s".into(), AttributeValue::S("hello".into()));
        let enc = encode_item(&item);
        for cut in 0..enc.len() {
            assert!(decode_item(&enc[..cut]).is_err());
        }
        assert!(
            decode_item(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err()
        );
        assert!(decode_item(&[9]).is_err());
    }
}
