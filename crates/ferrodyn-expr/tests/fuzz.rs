//! Property tests: the parsers never panic, whatever the input.

use std::collections::HashMap;

use ferrodyn_expr::{CondKind, Resolver};
use ferrodyn_model::AttributeValue;
use proptest::prelude::*;

fn parse_all(text: &str) {
    let mut names = HashMap::new();
    names.insert("#a".to_string(), "a".to_string());
    let mut values = HashMap::new();
    values.insert(":v".to_string(), AttributeValue::S("x".into()));
    values.insert(":l".to_string(), AttributeValue::L(vec![]));
    let mut r = Resolver::new(Some(&names), Some(&values));
    if let Ok(c) = r.condition(text, CondKind::Condition) {
        let _ = c.eval(&Default::default());
    }
    if let Ok(u) = r.update(text) {
        let _ = u.apply(&mut Default::default());
    }
    let _ = r.projection(text);
    let _ = r.finish();
}

proptest! {
    #[test]
    fn arbitrary_strings(text in ".{0,200}") {
        parse_all(&text);
    }

    #[test]
    fn token_soup(parts in proptest::collection::vec(
        prop_oneof![
            Just("a"), Just("#a"), Just(":v"), Just(":l"), Just("("), Just(")"), Just("["),
            Just("]"), Just("1"), Just("."), Just(","), Just("="), Just("<>"), Just("<"),
            Just("+"), Just("-"), Just(" AND "), Just(" OR "), Just(" NOT "), Just(" BETWEEN "),
            Just(" IN "), Just("SET "), Just("REMOVE "), Just("ADD "), Just("DELETE "),
            Just("size"), Just("if_not_exists"), Just("list_append"), Just("contains"),
            Just("attribute_exists"), Just(" "),
        ], 0..60)) {
        parse_all(&parts.concat());
    }

    #[test]
    fn deep_nesting(depth in 0usize..3000, kind in 0u8..4) {
        let text = match kind {
            0 => format!("{}a = :v{}", "(".repeat(depth), ")".repeat(depth)),
            1 => format!("{}a = :v", "NOT ".repeat(depth)),
            2 => format!("a = {}a{}", "size(".repeat(depth), ")".repeat(depth)),
            _ => format!("SET a = {}a, :l{}", "if_not_exists(a, ".repeat(depth), ")".repeat(depth)),
        };
        parse_all(&text);
    }
}
