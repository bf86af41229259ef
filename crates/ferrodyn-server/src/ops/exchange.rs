//! Export and import operations: ExportTableToPointInTime, DescribeExport, ListExports,
//! ImportTable, DescribeImport, ListImports (jobs run by ferrodyn-exchange).

use std::sync::Arc;

use ferrodyn_core::control::CreateTableInput;
use ferrodyn_core::Engine;
use ferrodyn_exchange::{
    CsvSettings, Exchange, ExportRecord, ExportRequest, ImportRecord, ImportRequest,
    IncrementalSpec,
};
use ferrodyn_model::Error;
use serde_json::{json, Map, Value};

use super::json::{i64_field, num, present, str_field, string_field, time_field};
use super::tables::{attribute_definitions, billing, indexes, key_schema, on_demand, throughput};

fn exchange(engine: &Engine) -> Result<Arc<Exchange>, Error> {
    engine
        .attached::<Exchange>()
        .ok_or_else(|| Error::validation("Exports and imports are not available on this server"))
}

fn put_opt(m: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), json!(v));
    }
}

fn export_json(e: &ExportRecord) -> Value {
    let mut m = Map::new();
    m.insert("ExportArn".into(), json!(e.arn));
    m.insert("ExportStatus".into(), json!(e.status));
    m.insert("StartTime".into(), num(e.start_time));
    if let Some(t) = e.end_time {
        m.insert("EndTime".into(), num(t));
    }
    put_opt(&mut m, "ExportManifest", &e.export_manifest);
    m.insert("TableArn".into(), json!(e.table_arn));
    m.insert("TableId".into(), json!(e.table_id));
    if let Some(t) = e.export_time {
        m.insert("ExportTime".into(), num(t));
    }
    put_opt(&mut m, "ClientToken", &e.client_token);
    m.insert("S3Bucket".into(), json!(e.s3_bucket));
    put_opt(&mut m, "S3BucketOwner", &e.s3_bucket_owner);
    put_opt(&mut m, "S3Prefix", &e.s3_prefix);
    m.insert(
        "S3SseAlgorithm".into(),
        json!(e.s3_sse_algorithm.as_deref().unwrap_or("AES256")),
    );
    put_opt(&mut m, "S3SseKmsKeyId", &e.s3_sse_kms_key_id);
    put_opt(&mut m, "FailureCode", &e.failure_code);
    put_opt(&mut m, "FailureMessage", &e.failure_message);
    m.insert("ExportFormat".into(), json!(e.export_format));
    if let Some(b) = e.billed_size_bytes {
        m.insert("BilledSizeBytes".into(), json!(b));
    }
    if let Some(c) = e.item_count {
        m.insert("ItemCount".into(), json!(c));
    }
    m.insert("ExportType".into(), json!(e.export_type));
    if let Some(spec) = &e.incremental {
        let mut s = Map::new();
        if let Some(t) = spec.from {
            s.insert("ExportFromTime".into(), num(t));
        }
        if let Some(t) = spec.to {
            s.insert("ExportToTime".into(), num(t));
        }
        put_opt(&mut s, "ExportViewType", &spec.view);
        m.insert("IncrementalExportSpecification".into(), Value::Object(s));
    }
    Value::Object(m)
}

pub fn export_table(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let incremental = present(v, "IncrementalExportSpecification").map(|s| IncrementalSpec {
        from: time_field(s, "ExportFromTime"),
        to: time_field(s, "ExportToTime"),
        view: string_field(s, "ExportViewType"),
    });
    let e = exchange(engine)?.export_table(ExportRequest {
        table_arn: string_field(v, "TableArn").unwrap_or_default(),
        export_time: time_field(v, "ExportTime"),
        client_token: string_field(v, "ClientToken"),
        s3_bucket: string_field(v, "S3Bucket").unwrap_or_default(),
        s3_bucket_owner: string_field(v, "S3BucketOwner"),
        s3_prefix: string_field(v, "S3Prefix"),
        s3_sse_algorithm: string_field(v, "S3SseAlgorithm"),
        s3_sse_kms_key_id: string_field(v, "S3SseKmsKeyId"),
        export_format: string_field(v, "ExportFormat"),
        export_type: string_field(v, "ExportType"),
        incremental,
    })?;
    Ok(json!({ "ExportDescription": export_json(&e) }))
}

pub fn describe_export(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let e = exchange(engine)?.describe_export(str_field(v, "ExportArn").unwrap_or_default())?;
    Ok(json!({ "ExportDescription": export_json(&e) }))
}

pub fn list_exports(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let (page, next) = exchange(engine)?.list_exports(
        str_field(v, "TableArn"),
        i64_field(v, "MaxResults").map(|n| n.clamp(1, 25) as usize),
        str_field(v, "NextToken"),
    )?;
    let summaries: Vec<Value> = page
        .iter()
        .map(|e| json!({"ExportArn": e.arn, "ExportStatus": e.status, "ExportType": e.export_type}))
        .collect();
    let mut m = Map::new();
    m.insert("ExportSummaries".into(), Value::Array(summaries));
    if let Some(n) = next {
        m.insert("NextToken".into(), json!(n));
    }
    Ok(Value::Object(m))
}

fn bucket_source_json(i: &ImportRecord) -> Value {
    let mut m = Map::new();
    put_opt(&mut m, "S3BucketOwner", &i.s3_bucket_owner);
    m.insert("S3Bucket".into(), json!(i.s3_bucket));
    put_opt(&mut m, "S3KeyPrefix", &i.s3_key_prefix);
    Value::Object(m)
}

fn log_group(engine: &Engine) -> String {
    let c = engine.config();
    format!(
        "arn:aws:logs:{}:{}:log-group:/aws-dynamodb/imports:*",
        c.region, c.account
    )
}

fn import_json(engine: &Engine, i: &ImportRecord) -> Value {
    let mut m = Map::new();
    m.insert("ImportArn".into(), json!(i.arn));
    m.insert("ImportStatus".into(), json!(i.status));
    m.insert("TableArn".into(), json!(i.table_arn));
    m.insert("TableId".into(), json!(i.table_id));
    put_opt(&mut m, "ClientToken", &i.client_token);
    m.insert("S3BucketSource".into(), bucket_source_json(i));
    m.insert("ErrorCount".into(), json!(i.error_count));
    m.insert("CloudWatchLogGroupArn".into(), json!(log_group(engine)));
    m.insert("InputFormat".into(), json!(i.input_format));
    if let Some(csv) = &i.csv {
        let mut c = Map::new();
        put_opt(&mut c, "Delimiter", &csv.delimiter);
        if let Some(h) = &csv.header_list {
            c.insert("HeaderList".into(), json!(h));
        }
        m.insert("InputFormatOptions".into(), json!({ "Csv": c }));
    }
    m.insert("InputCompressionType".into(), json!(i.compression));
    m.insert(
        "TableCreationParameters".into(),
        i.table_creation_parameters.clone(),
    );
    m.insert("StartTime".into(), num(i.start_time));
    if let Some(t) = i.end_time {
        m.insert("EndTime".into(), num(t));
    }
    m.insert("ProcessedSizeBytes".into(), json!(i.processed_size_bytes));
    m.insert("ProcessedItemCount".into(), json!(i.processed_item_count));
    m.insert("ImportedItemCount".into(), json!(i.imported_item_count));
    put_opt(&mut m, "FailureCode", &i.failure_code);
    put_opt(&mut m, "FailureMessage", &i.failure_message);
    Value::Object(m)
}

pub fn import_table(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let params = present(v, "TableCreationParameters")
        .cloned()
        .unwrap_or(Value::Null);
    let table = CreateTableInput {
        name: string_field(&params, "TableName").unwrap_or_default(),
        attribute_definitions: params
            .get("AttributeDefinitions")
            .map(attribute_definitions)
            .unwrap_or_default(),
        key_schema: key_schema(params.get("KeySchema")),
        billing_mode: billing(&params),
        provisioned: throughput(params.get("ProvisionedThroughput")),
        global_indexes: indexes(params.get("GlobalSecondaryIndexes")),
        on_demand: on_demand(&params),
        ..CreateTableInput::default()
    };
    let source = present(v, "S3BucketSource").unwrap_or(&Value::Null);
    let csv = present(v, "InputFormatOptions")
        .and_then(|o| present(o, "Csv"))
        .map(|c| CsvSettings {
            delimiter: string_field(c, "Delimiter"),
            header_list: present(c, "HeaderList").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect()
            }),
        });
    let i = exchange(engine)?.import_table(ImportRequest {
        client_token: string_field(v, "ClientToken"),
        s3_bucket: string_field(source, "S3Bucket").unwrap_or_default(),
        s3_bucket_owner: string_field(source, "S3BucketOwner"),
        s3_key_prefix: string_field(source, "S3KeyPrefix"),
        input_format: string_field(v, "InputFormat").unwrap_or_default(),
        csv,
        compression: string_field(v, "InputCompressionType"),
        table,
        table_creation_parameters: params,
    })?;
    Ok(json!({ "ImportTableDescription": import_json(engine, &i) }))
}

pub fn describe_import(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let i = exchange(engine)?.describe_import(str_field(v, "ImportArn").unwrap_or_default())?;
    Ok(json!({ "ImportTableDescription": import_json(engine, &i) }))
}

pub fn list_imports(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let (page, next) = exchange(engine)?.list_imports(
        str_field(v, "TableArn"),
        i64_field(v, "PageSize").map(|n| n.clamp(1, 25) as usize),
        str_field(v, "NextToken"),
    )?;
    let summaries: Vec<Value> = page
        .iter()
        .map(|i| {
            let mut m = Map::new();
            m.insert("ImportArn".into(), json!(i.arn));
            m.insert("ImportStatus".into(), json!(i.status));
            m.insert("TableArn".into(), json!(i.table_arn));
            m.insert("S3BucketSource".into(), bucket_source_json(i));
            m.insert("CloudWatchLogGroupArn".into(), json!(log_group(engine)));
            m.insert("InputFormat".into(), json!(i.input_format));
            m.insert("StartTime".into(), num(i.start_time));
            if let Some(t) = i.end_time {
                m.insert("EndTime".into(), num(t));
            }
            Value::Object(m)
        })
        .collect();
    let mut m = Map::new();
    m.insert("ImportSummaryList".into(), Value::Array(summaries));
    if let Some(n) = next {
        m.insert("NextToken".into(), json!(n));
    }
    Ok(Value::Object(m))
}
