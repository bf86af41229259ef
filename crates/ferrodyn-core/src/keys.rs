//! Primary keys: validation against the key schema and the storage key layout.
//!
//! Storage key of an item: `hash64(enc(pk))` (8 bytes, big-endian) ++ `enc(pk)` ++ `enc(sk)?`,
//! where `enc` is the model's order-preserving key encoding.
//! Invariants: all items of one partition are contiguous and sorted by sort key (so Query is a
//! range read); partitions are ordered by the hash (so Scan visits partitions in a stable,
//! key-independent order and parallel-scan segments are hash ranges); the hash function is fixed
//! forever because it is part of the on-disk format.

use ferrodyn_model::keycodec::{encode_key_tuple, encode_key_value};
use ferrodyn_model::{AttributeValue, Error, Item};

use crate::table::{KeyAttr, TableDef};

/// Stable 64-bit hash (FNV-1a followed by a 64-bit finalizer). Part of the on-disk format.
pub fn partition_hash(encoded_pk: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in encoded_pk {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The storage prefix of a partition: hash ++ enc(pk).
pub fn partition_prefix(pk: &AttributeValue) -> Vec<u8> {
    partition_prefix_of([pk])
}

/// The storage prefix of a partition of a multi-attribute partition key (the values of the
/// HASH attributes in key-schema order): hash ++ enc(pk1) ++ enc(pk2) ++ ...; for one value,
/// exactly [`partition_prefix`].
pub fn partition_prefix_of<'a>(pk: impl IntoIterator<Item = &'a AttributeValue>) -> Vec<u8> {
    let mut enc = Vec::with_capacity(32);
    encode_key_tuple(pk, &mut enc);
    let mut out = Vec::with_capacity(8 + enc.len() + 16);
    out.extend_from_slice(&partition_hash(&enc).to_be_bytes());
    out.extend_from_slice(&enc);
    out
}

/// Full storage key for a validated primary key.
pub fn storage_key(pk: &AttributeValue, sk: Option<&AttributeValue>) -> Vec<u8> {
    let mut out = partition_prefix(pk);
    if let Some(sk) = sk {
        encode_key_value(sk, &mut out);
    }
    out
}

fn is_empty_key_value(v: &AttributeValue) -> bool {
    match v {
        AttributeValue::S(s) => s.is_empty(),
        AttributeValue::B(b) => b.is_empty(),
        _ => false,
    }
}

const MAX_PK_BYTES: usize = 2048;
const MAX_SK_BYTES: usize = 1024;

fn key_len(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        _ => 0,
    }
}

/// Checks the key attributes inside a full item (PutItem). Returns the storage key.
pub fn key_of_item(def: &TableDef, item: &Item) -> Result<Vec<u8>, Error> {
    let pk = item_key_attr(&def.hash_key, item)?;
    let sk = match &def.range_key {
        Some(r) => Some(item_key_attr(r, item)?),
        None => None,
    };
    check_key_sizes(def, pk, sk)?;
    Ok(storage_key(pk, sk))
}

fn item_key_attr<'a>(k: &KeyAttr, item: &'a Item) -> Result<&'a AttributeValue, Error> {
    let v = item.get(&k.name).ok_or_else(|| {
        Error::validation(format!(
            "One or more parameter values were invalid: Missing the key {} in the item",
            k.name
        ))
    })?;
    if v.scalar_type() != Some(k.ty) {
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
            k.name,
            k.ty.as_str(),
            v.type_name()
        )));
    }
    if is_empty_key_value(v) {
        return Err(Error::validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {}",
            if matches!(v, AttributeValue::S(_)) { "string" } else { "binary" },
            k.name
        )));
    }
    Ok(v)
}

fn check_key_sizes(
    def: &TableDef,
    pk: &AttributeValue,
    sk: Option<&AttributeValue>,
) -> Result<(), Error> {
    if key_len(pk) > MAX_PK_BYTES {
        return Err(Error::validation(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    if let (Some(sk), Some(_)) = (sk, &def.range_key) {
        if key_len(sk) > MAX_SK_BYTES {
            return Err(Error::validation(
                "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
            ));
        }
    }
    Ok(())
}

/// Checks a `Key` parameter (GetItem, DeleteItem, UpdateItem): exactly the key attributes, with
/// the right types. Returns the storage key.
pub fn key_of_key_param(def: &TableDef, key: &Item) -> Result<Vec<u8>, Error> {
    let expected = 1 + usize::from(def.range_key.is_some());
    let mismatch = || Error::validation("The provided key element does not match the schema");
    if key.len() != expected {
        return Err(mismatch());
    }
    let pk = key.get(&def.hash_key.name).ok_or_else(mismatch)?;
    if pk.scalar_type() != Some(def.hash_key.ty) {
        return Err(mismatch());
    }
    let sk = match &def.range_key {
        Some(r) => {
            let v = key.get(&r.name).ok_or_else(mismatch)?;
            if v.scalar_type() != Some(r.ty) {
                return Err(mismatch());
            }
            Some(v)
        }
        None => None,
    };
    for (k, v) in [
        (&def.hash_key, Some(pk)),
        (def.range_key.as_ref().unwrap_or(&def.hash_key), sk),
    ] {
        if let Some(v) = v {
            if is_empty_key_value(v) {
                return Err(Error::validation(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {}",
                    if matches!(v, AttributeValue::S(_)) { "string" } else { "binary" },
                    k.name
                )));
            }
        }
    }
    check_key_sizes(def, pk, sk)?;
    Ok(storage_key(pk, sk))
}

/// The key attributes of an item, as a `Key` map (for LastEvaluatedKey and similar).
pub fn key_map(def: &TableDef, item: &Item) -> Item {
    let mut m = Item::new();
    for name in def.key_names() {
        if let Some(v) = item.get(name) {
            m.insert(name.to_string(), v.clone());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable() {
        // Part of the on-disk format: these values must never change.
        assert_eq!(partition_hash(b""), partition_hash(b""));
        let a = partition_hash(b"abc");
        let b = partition_hash(b"abd");
        assert_ne!(a, b);
    }

    #[test]
    fn one_value_partition_prefix_is_the_single_key_layout() {
        let v = AttributeValue::S("abc".into());
        assert_eq!(partition_prefix_of([&v]), partition_prefix(&v));
        let w = AttributeValue::S("d".into());
        let two = partition_prefix_of([&v, &w]);
        let mut enc = Vec::new();
        encode_key_value(&v, &mut enc);
        encode_key_value(&w, &mut enc);
        assert_eq!(&two[8..], enc.as_slice());
        assert_eq!(two[..8], partition_hash(&enc).to_be_bytes());
    }
}
