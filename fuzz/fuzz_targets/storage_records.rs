//! The readers of bytes the engine persists (`ferrodyn_core::formats`): stream records and lane
//! rows, point-in-time history keys and values, audit records, anchors and chain heads, leases,
//! catalog records, and the shard iterators handed to clients.
//!
//! Input: a selector byte, then the bytes as read from storage. Invariants: no reader panics;
//! fixed-layout rows re-encode to the bytes they were read from; an accepted shard iterator
//! has one canonical form.
#![no_main]

use ferrodyn_core::formats;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => {
            if let Ok(r) = formats::stream_record(rest) {
                assert!(r.size_bytes < 1 << 40);
            }
        }
        1 => {
            if let Some(row) = formats::stream_lane_row(rest) {
                assert_eq!(row, &rest[..32]);
            }
        }
        2 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Some(canonical) = formats::shard_iterator(text) {
                    assert_eq!(
                        formats::shard_iterator(&canonical).as_deref(),
                        Some(canonical.as_str())
                    );
                }
            }
        }
        3 => {
            if let Some((key, _time)) = formats::history_key(rest) {
                assert!(key.len() < rest.len());
            }
            let _ = formats::history_value(rest);
        }
        4 => {
            // An audit record: the first 8 bytes are its key.
            let (key, value) = rest.split_at(rest.len().min(8));
            let _ = formats::audit_record(key, value);
            let _ = formats::audit_record(&1u64.to_be_bytes(), rest);
        }
        5 => {
            let _ = formats::audit_anchor(rest);
            if let Some(head) = formats::audit_head(rest) {
                assert_eq!(head, &rest[..48]);
            }
        }
        6 => {
            if let Some((holder, expiry)) = formats::lease(rest) {
                assert_eq!(&holder[..], &rest[..16]);
                assert_eq!(expiry.to_be_bytes(), rest[16..24]);
            }
        }
        _ => {
            let _ = formats::table_def(rest);
        }
    }
});
