//! The stored item format (`ferrodyn_core::itemcodec`).
//!
//! - Generated items: decode(encode(item)) == item, the recorded size is DynamoDB's item size,
//!   and walking the stored bytes succeeds.
//! - Raw bytes (as read from a damaged file): decoding never panics; an accepted item
//!   re-encodes to bytes that decode to the same item; walking accepts what decoding accepts;
//!   a format-1 item's computed size equals the decoded item's size.
#![no_main]

use ferrodyn_core::itemcodec::{decode_item, encode_item, stored_size, walk_stored};
use ferrodyn_model::size::item_size;
use ferrodyn_model::visit::EventLog;
use fuzz_support::Gen;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let item = Gen::new(rest).item();
        let bytes = encode_item(&item);
        assert_eq!(decode_item(&bytes).expect("own encoding decodes"), item);
        assert_eq!(
            stored_size(&bytes).expect("own encoding sizes"),
            item_size(&item)
        );
        let mut walked = EventLog::default();
        walk_stored(&bytes, &mut walked).expect("own encoding walks");
        let mut direct = EventLog::default();
        ferrodyn_model::visit::walk_item(&item, &mut direct);
        assert_eq!(walked.0, direct.0);
    } else {
        let decoded = decode_item(rest);
        let _ = stored_size(rest);
        let mut c = EventLog::default();
        let walked = walk_stored(rest, &mut c);
        if let Ok(item) = decoded {
            assert!(walked.is_ok(), "decodes but does not walk");
            let mut direct = EventLog::default();
            ferrodyn_model::visit::walk_item(&item, &mut direct);
            assert_eq!(
                c.0, direct.0,
                "walking the bytes differs from walking the item"
            );
            let again = encode_item(&item);
            assert_eq!(decode_item(&again).expect("re-encoding decodes"), item);
            if rest.first() == Some(&1) {
                assert_eq!(stored_size(rest).expect("format 1 sizes"), item_size(&item));
            }
        }
    }
});
