//! The DynamoDB Streams API (`DynamoDBStreams_20120810.*`): ListStreams, DescribeStream,
//! GetShardIterator and GetRecords, mapped onto the engine's stream methods.
//!
//! Invariant: images and keys are encoded with the protocol codec, the same as item responses,
//! so a stream record's image is byte-for-byte what GetItem would have returned.

use ferrodyn_core::streams::{ShardInfo, StreamRecord};
use ferrodyn_core::{Engine, KeyAttr};
use ferrodyn_model::Error;
use ferrodyn_protocol::codec;
use serde_json::{json, Map, Value};

use super::json::{i64_field, present, str_field};

fn key_schema(hash: &KeyAttr, range: Option<&KeyAttr>) -> Value {
    let mut out = vec![json!({"AttributeName": hash.name, "KeyType": "HASH"})];
    if let Some(r) = range {
        out.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    Value::Array(out)
}

pub fn list_streams(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let (streams, last) = engine.list_streams(
        str_field(v, "TableName"),
        str_field(v, "ExclusiveStartStreamArn"),
        i64_field(v, "Limit"),
    )?;
    let list: Vec<Value> = streams
        .iter()
        .map(|s| json!({"StreamArn": s.arn, "TableName": s.table_name, "StreamLabel": s.label}))
        .collect();
    let mut out = Map::new();
    out.insert("Streams".into(), Value::Array(list));
    if let Some(l) = last {
        out.insert("LastEvaluatedStreamArn".into(), Value::String(l));
    }
    Ok(Value::Object(out))
}

fn shard_json(s: &ShardInfo) -> Value {
    let mut range = Map::new();
    range.insert(
        "StartingSequenceNumber".into(),
        Value::String(s.starting_sequence_number.clone()),
    );
    if let Some(e) = &s.ending_sequence_number {
        range.insert("EndingSequenceNumber".into(), Value::String(e.clone()));
    }
    let mut m = Map::new();
    m.insert("ShardId".into(), Value::String(s.shard_id.clone()));
    m.insert("SequenceNumberRange".into(), Value::Object(range));
    if let Some(p) = &s.parent_shard_id {
        m.insert("ParentShardId".into(), Value::String(p.clone()));
    }
    Value::Object(m)
}

pub fn describe_stream(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let filter = match present(v, "ShardFilter") {
        Some(f) => {
            match str_field(f, "Type") {
                Some("CHILD_SHARDS") => {}
                Some(t) => {
                    return Err(Error::validation(format!(
                        "1 validation error detected: Value '{t}' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [CHILD_SHARDS]"
                    )))
                }
                None => return Err(Error::validation("ShardFilter.Type is required")),
            }
            Some(
                str_field(f, "ShardId")
                    .ok_or_else(|| Error::validation("ShardFilter.ShardId is required"))?,
            )
        }
        None => None,
    };
    let d = engine.describe_stream(
        str_field(v, "StreamArn").unwrap_or(""),
        str_field(v, "ExclusiveStartShardId"),
        i64_field(v, "Limit"),
        filter,
    )?;
    let mut m = Map::new();
    m.insert("StreamArn".into(), Value::String(d.arn));
    m.insert("StreamLabel".into(), Value::String(d.label));
    m.insert("StreamStatus".into(), Value::String(d.status.into()));
    m.insert("StreamViewType".into(), Value::String(d.view_type));
    m.insert(
        "CreationRequestDateTime".into(),
        json!(d.created.floor() as i64),
    );
    m.insert("TableName".into(), Value::String(d.table_name));
    m.insert(
        "KeySchema".into(),
        key_schema(&d.hash_key, d.range_key.as_ref()),
    );
    m.insert(
        "Shards".into(),
        Value::Array(d.shards.iter().map(shard_json).collect()),
    );
    if let Some(l) = d.last_evaluated_shard_id {
        m.insert("LastEvaluatedShardId".into(), Value::String(l));
    }
    Ok(json!({ "StreamDescription": Value::Object(m) }))
}

pub fn get_shard_iterator(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let it = engine.get_shard_iterator(
        str_field(v, "StreamArn").unwrap_or(""),
        str_field(v, "ShardId").unwrap_or(""),
        str_field(v, "ShardIteratorType").unwrap_or(""),
        str_field(v, "SequenceNumber"),
    )?;
    Ok(json!({ "ShardIterator": it }))
}

fn record_json(r: &StreamRecord, region: &str) -> Value {
    let mut d = Map::new();
    d.insert(
        "ApproximateCreationDateTime".into(),
        json!(r.created.floor() as i64),
    );
    d.insert("Keys".into(), codec::encode_item(&r.keys));
    if let Some(n) = &r.new_image {
        d.insert("NewImage".into(), codec::encode_item(n));
    }
    if let Some(o) = &r.old_image {
        d.insert("OldImage".into(), codec::encode_item(o));
    }
    d.insert(
        "SequenceNumber".into(),
        Value::String(r.sequence_number.clone()),
    );
    d.insert("SizeBytes".into(), json!(r.size_bytes));
    d.insert("StreamViewType".into(), Value::String(r.view_type.clone()));
    let mut m = Map::new();
    m.insert("eventID".into(), Value::String(r.event_id.clone()));
    m.insert("eventName".into(), Value::String(r.event_name.into()));
    m.insert("eventVersion".into(), Value::String("1.1".into()));
    m.insert("eventSource".into(), Value::String("aws:dynamodb".into()));
    m.insert("awsRegion".into(), Value::String(region.into()));
    m.insert("dynamodb".into(), Value::Object(d));
    if r.by_service {
        m.insert(
            "userIdentity".into(),
            json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"}),
        );
    }
    Value::Object(m)
}

pub fn get_records(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let page = engine.get_records(
        str_field(v, "ShardIterator").unwrap_or(""),
        i64_field(v, "Limit"),
    )?;
    let region = engine.config().region.clone();
    let mut m = Map::new();
    m.insert(
        "Records".into(),
        Value::Array(
            page.records
                .iter()
                .map(|r| record_json(r, &region))
                .collect(),
        ),
    );
    if let Some(n) = page.next_iterator {
        m.insert("NextShardIterator".into(), Value::String(n));
    }
    Ok(Value::Object(m))
}
