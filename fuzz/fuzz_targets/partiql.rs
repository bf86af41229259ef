//! The PartiQL parser and translator (ferrodyn-partiql).
//!
//! Input: statement text. Whatever parses is translated the way the engine does it: WHERE
//! clauses into condition text, SET/REMOVE into update text, INSERT values into items, with
//! `?` parameters bound to strings; generated text is then parsed by ferrodyn-expr with the
//! generated placeholder maps. Invariant: nothing panics.
#![no_main]

use ferrodyn_expr::{CondKind, Resolver};
use ferrodyn_model::AttributeValue;
use ferrodyn_partiql::{constant, parse, Placeholders, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse(text) else {
        return;
    };
    let params: Vec<AttributeValue> = (0..parsed.params.min(64))
        .map(|i| AttributeValue::S(format!("p{i}")))
        .collect();
    let _ = parsed.statement.table();
    let mut ph = Placeholders::new(&params);
    let mut cond = None;
    let mut update = None;
    match &parsed.statement {
        Statement::Select(s) | Statement::Exists(s) => {
            if let Some(w) = &s.where_ {
                cond = ph.condition(w).ok();
            }
        }
        Statement::Insert(i) => {
            let _ = constant(&i.value, &params);
        }
        Statement::Update(u) => {
            update = ph.update(&u.actions).ok();
            if let Some(w) = &u.where_ {
                cond = ph.condition(w).ok();
            }
        }
        Statement::Delete(d) => {
            if let Some(w) = &d.where_ {
                cond = ph.condition(w).ok();
            }
        }
    }
    let (names, values) = ph.into_maps();
    let mut r = Resolver::new(names.as_ref(), values.as_ref());
    if let Some(c) = cond {
        let _ = r.condition(&c, CondKind::Condition);
    }
    if let Some(u) = update {
        let _ = r.update(&u);
    }
    let _ = r.finish();
});
