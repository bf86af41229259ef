//! Items between the SDK's types (what the endpoint sends and takes) and ferrodyn-model's
//! (what ferrodyn-dataio reads and writes files of).

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as Sdk, ScalarAttributeType};
use ferrodyn_model::{AttributeValue as Model, Number, ScalarType};

use crate::transfer::Item;

/// An SDK item as a model item; fails on a number the model cannot hold (never one a DynamoDB
/// endpoint returns) or a value type this SDK version does not know.
pub fn to_model(item: &Item) -> Result<ferrodyn_model::Item, String> {
    item.iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                value_to_model(v).map_err(|e| format!("{k}: {e}"))?,
            ))
        })
        .collect()
}

fn number(n: &str) -> Result<Number, String> {
    Number::parse(n).map_err(|e| format!("number {n:?}: {e}"))
}

fn value_to_model(v: &Sdk) -> Result<Model, String> {
    Ok(match v {
        Sdk::S(s) => Model::S(s.clone()),
        Sdk::N(n) => Model::N(number(n)?),
        Sdk::B(b) => Model::B(b.as_ref().to_vec()),
        Sdk::Bool(b) => Model::Bool(*b),
        Sdk::Null(_) => Model::Null,
        Sdk::Ss(v) => Model::SS(v.clone()),
        Sdk::Ns(v) => Model::NS(v.iter().map(|n| number(n)).collect::<Result<_, _>>()?),
        Sdk::Bs(v) => Model::BS(v.iter().map(|b| b.as_ref().to_vec()).collect()),
        Sdk::L(l) => Model::L(l.iter().map(value_to_model).collect::<Result<_, _>>()?),
        Sdk::M(m) => Model::M(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), value_to_model(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("unknown attribute value type {other:?}")),
    })
}

/// A model item as an SDK item.
pub fn from_model(item: ferrodyn_model::Item) -> Item {
    item.into_iter()
        .map(|(k, v)| (k, value_from_model(v)))
        .collect()
}

fn value_from_model(v: Model) -> Sdk {
    match v {
        Model::S(s) => Sdk::S(s),
        Model::N(n) => Sdk::N(n.to_string()),
        Model::B(b) => Sdk::B(Blob::new(b)),
        Model::Bool(b) => Sdk::Bool(b),
        Model::Null => Sdk::Null(true),
        Model::M(m) => Sdk::M(
            m.into_iter()
                .map(|(k, v)| (k, value_from_model(v)))
                .collect(),
        ),
        Model::L(l) => Sdk::L(l.into_iter().map(value_from_model).collect()),
        Model::SS(v) => Sdk::Ss(v),
        Model::NS(v) => Sdk::Ns(v.iter().map(Number::to_string).collect()),
        Model::BS(v) => Sdk::Bs(v.into_iter().map(Blob::new).collect()),
    }
}

pub fn scalar_type(t: &ScalarAttributeType) -> Option<ScalarType> {
    match t {
        ScalarAttributeType::S => Some(ScalarType::S),
        ScalarAttributeType::N => Some(ScalarType::N),
        ScalarAttributeType::B => Some(ScalarType::B),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = Sdk> {
        let leaf = prop_oneof![
            ".{0,8}".prop_map(Sdk::S),
            (-100_000i64..100_000, 0u32..4).prop_map(|(n, d)| Sdk::N(if d == 0 {
                n.to_string()
            } else {
                format!("{n}.{d}")
            })),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(|b| Sdk::B(Blob::new(b))),
            any::<bool>().prop_map(Sdk::Bool),
            Just(Sdk::Null(true)),
            prop::collection::btree_set(".{1,4}", 1..4)
                .prop_map(|s| Sdk::Ss(s.into_iter().collect())),
            prop::collection::btree_set(1u32..100, 1..4)
                .prop_map(|s| Sdk::Ns(s.into_iter().map(|n| n.to_string()).collect())),
            prop::collection::btree_set(prop::collection::vec(any::<u8>(), 1..4), 1..3)
                .prop_map(|s| Sdk::Bs(s.into_iter().map(Blob::new).collect())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Sdk::L),
                prop::collection::hash_map(".{1,4}", inner, 0..4).prop_map(Sdk::M),
            ]
        })
    }

    proptest! {
        /// SDK → model → SDK is the identity for numbers in canonical form.
        #[test]
        fn round_trip(item in prop::collection::hash_map(".{1,6}", arb_value(), 0..6)) {
            let model = to_model(&item).unwrap();
            prop_assert_eq!(from_model(model), item);
        }
    }

    #[test]
    fn numbers_come_back_canonical() {
        let mut item = Item::new();
        item.insert("n".into(), Sdk::N("1E+2".into()));
        let back = from_model(to_model(&item).unwrap());
        assert_eq!(back["n"], Sdk::N("100".into()));
        item.insert("bad".into(), Sdk::N("x".into()));
        assert!(to_model(&item).unwrap_err().starts_with("bad: number"));
    }
}
