//! A stream record as Lambda hands it to a function: one element of the `Records` array of the
//! DynamoDB event (`eventVersion` 1.1, `eventSource` `aws:dynamodb`), images in DynamoDB JSON.
//! Filters are evaluated on exactly this shape, as Lambda does.

use ferrodyn_core::streams::StreamRecord;
use ferrodyn_protocol::codec;
use serde_json::{json, Map, Value};

/// One record on its way to a target.
#[derive(Debug, Clone)]
pub struct Event {
    /// The record's sequence number (as in `dynamodb.SequenceNumber`).
    pub seq: String,
    /// Epoch seconds the change was written.
    pub created: f64,
    /// INSERT, MODIFY or REMOVE.
    pub event_name: &'static str,
    /// The item's key, rendered (lanes are chosen by it).
    pub key_text: String,
    /// The Lambda event record.
    pub json: Value,
}

/// The Lambda event record of `r`, from stream `stream_arn` in `region`.
pub fn event(r: &StreamRecord, stream_arn: &str, region: &str) -> Event {
    let keys = codec::encode_item(&r.keys);
    let mut ddb = Map::new();
    ddb.insert(
        "ApproximateCreationDateTime".into(),
        json!(r.created.floor() as i64),
    );
    ddb.insert("Keys".into(), keys.clone());
    if let Some(n) = &r.new_image {
        ddb.insert("NewImage".into(), codec::encode_item(n));
    }
    if let Some(o) = &r.old_image {
        ddb.insert("OldImage".into(), codec::encode_item(o));
    }
    ddb.insert("SequenceNumber".into(), json!(r.sequence_number));
    ddb.insert("SizeBytes".into(), json!(r.size_bytes));
    ddb.insert("StreamViewType".into(), json!(r.view_type));
    let mut m = Map::new();
    m.insert("eventID".into(), json!(r.event_id));
    m.insert("eventName".into(), json!(r.event_name));
    m.insert("eventVersion".into(), json!("1.1"));
    m.insert("eventSource".into(), json!("aws:dynamodb"));
    m.insert("awsRegion".into(), json!(region));
    m.insert("dynamodb".into(), Value::Object(ddb));
    m.insert("eventSourceARN".into(), json!(stream_arn));
    if r.by_service {
        m.insert(
            "userIdentity".into(),
            json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"}),
        );
    }
    Event {
        seq: r.sequence_number.clone(),
        created: r.created,
        event_name: r.event_name,
        key_text: keys.to_string(),
        json: Value::Object(m),
    }
}

/// The body POSTed to an HTTP target: `{"Records": [...]}`.
pub fn batch_body(events: &[Event]) -> Vec<u8> {
    let records: Vec<&Value> = events.iter().map(|e| &e.json).collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap_or_default()
}

/// The lane (0..n) of an item: records of one item always share it.
pub fn lane(key_text: &str, n: u32) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key_text.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrodyn_model::{AttributeValue, Item};

    #[test]
    fn lambda_shape() {
        let mut keys = Item::new();
        keys.insert("pk".into(), AttributeValue::S("a".into()));
        let r = StreamRecord {
            event_id: "e1".into(),
            event_name: "INSERT",
            sequence_number: "000000000000000000042".into(),
            created: 1_700_000_000.7,
            keys: keys.clone(),
            old_image: None,
            new_image: Some(keys),
            size_bytes: 5,
            view_type: "NEW_AND_OLD_IMAGES".into(),
            by_service: false,
        };
        let e = event(&r, "arn:s", "us-east-1");
        assert_eq!(
            e.json,
            json!({"eventID": "e1", "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000,
                    "Keys": {"pk": {"S": "a"}}, "NewImage": {"pk": {"S": "a"}},
                    "SequenceNumber": "000000000000000000042", "SizeBytes": 5,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"},
                "eventSourceARN": "arn:s"})
        );
        assert!(lane(&e.key_text, 4) < 4);
        assert_eq!(lane(&e.key_text, 1), 0);
    }
}
