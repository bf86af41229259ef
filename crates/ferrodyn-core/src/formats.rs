//! The readers of bytes the engine persists, gathered behind one public surface for the fuzz
//! targets (`fuzz/`) and offline tools: stream records and lane rows, point-in-time history
//! entries, audit records, anchors and chain heads, leases and catalog records, plus the shard
//! iterators handed to clients (which come back as request data). Items and keys have their
//! own public codecs (`itemcodec`, `keys`, `ferrodyn_model::keycodec`).
//!
//! Owns no format: each function calls the reader its module uses, unchanged.
//! Invariant: every reader returns an error or `None` for bytes it cannot read, and never
//! panics, whatever the bytes; where a writer exists, what a reader accepts re-encodes to the
//! bytes it consumed (checked by the fuzz targets).

use ferrodyn_model::{Error, Item};

use crate::audit::AuditRecord;
use crate::streams::StreamRecord;
use crate::TableDef;

/// A stream record as stored under sequence number 0 (the view type only selects images).
pub fn stream_record(raw: &[u8]) -> Result<StreamRecord, Error> {
    crate::streams::decode_record(0, raw, "NEW_AND_OLD_IMAGES")
}

/// A stream lane row, re-encoded: `Some` exactly when the first 32 bytes are one, and then the
/// re-encoding equals them.
pub fn stream_lane_row(raw: &[u8]) -> Option<Vec<u8>> {
    crate::streams::LaneRow::decode(raw).map(|r| r.encode())
}

/// A shard iterator string, re-encoded in its canonical form (`None`: not an iterator this
/// engine issued).
pub fn shard_iterator(text: &str) -> Option<String> {
    crate::streams::Position::decode(text).map(|p| p.encode())
}

/// A history key split into the item's storage key and the change time (microseconds).
pub fn history_key(key: &[u8]) -> Option<(&[u8], u64)> {
    crate::pitr::split(key)
}

/// A history value: the item before the change (`None`: it was absent).
pub fn history_value(value: &[u8]) -> Result<Option<Item>, Error> {
    crate::pitr::image(value)?
        .map(crate::itemcodec::decode_item)
        .transpose()
}

/// An audit record stored under `key`.
pub fn audit_record(key: &[u8], value: &[u8]) -> Result<AuditRecord, String> {
    crate::audit::decode_record(key, value)
}

/// The audit anchor (first sequence number kept, hash before it).
pub fn audit_anchor(raw: &[u8]) -> Option<u64> {
    crate::audit::decode_anchor(raw).map(|(seq, _)| seq)
}

/// The audit chain head of shared storage, re-encoded (equal to the first 48 bytes read).
pub fn audit_head(raw: &[u8]) -> Option<Vec<u8>> {
    crate::audit::Head::decode(raw).map(|h| h.encode())
}

/// A lease row: holder id and expiry (milliseconds since the epoch).
pub fn lease(raw: &[u8]) -> Option<([u8; 16], u64)> {
    crate::leases::decode(raw)
}

/// A catalog record (a table's definition).
pub fn table_def(raw: &[u8]) -> Result<TableDef, Error> {
    serde_json::from_slice(raw).map_err(|e| Error::internal(format!("catalog record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_refuse_short_and_junk_input() {
        assert!(stream_record(b"").is_err());
        assert!(stream_record(&[1; 10]).is_err());
        assert!(stream_lane_row(&[0; 31]).is_none());
        assert_eq!(stream_lane_row(&[7; 40]).unwrap(), vec![7; 32]);
        assert!(shard_iterator("").is_none());
        assert!(shard_iterator("zz").is_none());
        assert!(history_key(b"short").is_none());
        assert!(history_value(&[]).is_err());
        assert_eq!(history_value(&[0]).unwrap(), None);
        assert!(history_value(&[2]).is_err());
        assert!(audit_record(b"", b"").is_err());
        assert!(audit_anchor(&[]).is_none());
        assert!(audit_head(&[0; 47]).is_none());
        assert_eq!(audit_head(&[3; 48]).unwrap(), vec![3; 48]);
        assert!(lease(&[0; 23]).is_none());
        assert!(table_def(b"{").is_err());
    }
}
