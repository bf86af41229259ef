//! The expression language (ferrodyn-expr): Condition, Filter, KeyCondition, Update and
//! Projection expressions with a fixed set of names (`#a`, `#pk`, ...) and values (`:s`, `:n`,
//! one of each type).
//!
//! Input: a selector byte, then the expression text. Whatever parses is used the way a request
//! uses it: conditions are evaluated against an item (and analysed as key conditions), updates
//! applied to it, projections taken from it. Invariants: nothing panics; an updated item still
//! encodes and decodes to itself (what the engine would store); the resolver's final check
//! runs.
#![no_main]

use ferrodyn_expr::{key_condition, project, CondKind, Resolver};
use fuzz_support::{names, sample_item, values};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let names = names();
    let values = values();
    let mut r = Resolver::new(Some(&names), Some(&values));
    let item = sample_item();
    match mode % 5 {
        0 | 1 => {
            let kind = if mode % 5 == 0 {
                CondKind::Condition
            } else {
                CondKind::Filter
            };
            if let Ok(c) = r.condition(text, kind) {
                let _ = c.eval(&item);
                let _ = c.eval(&Default::default());
                let _ = c.paths();
            }
        }
        2 => {
            if let Ok(c) = r.condition(text, CondKind::KeyCondition) {
                let _ = key_condition(&c, &["pk"], &["sk"]);
                let _ = key_condition(&c, &["pk", "a"], &["sk", "b"]);
                let _ = c.eval(&item);
            }
        }
        3 => {
            if let Ok(u) = r.update(text) {
                let _ = u.only_removes();
                let _ = u.updated_paths();
                let _ = u.top_level_attributes().count();
                for start in [item.clone(), Default::default()] {
                    let mut updated = start;
                    if u.apply(&mut updated).is_ok() {
                        let bytes = ferrodyn_core::itemcodec::encode_item(&updated);
                        assert_eq!(
                            ferrodyn_core::itemcodec::decode_item(&bytes).expect("decodes"),
                            updated
                        );
                    }
                }
            }
        }
        _ => {
            if let Ok(paths) = r.projection(text) {
                let projected = project(&item, &paths);
                assert!(projected.len() <= item.len());
            }
        }
    }
    let _ = r.finish();
});
