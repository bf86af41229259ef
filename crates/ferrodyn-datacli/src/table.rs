//! Tables through the control plane: describe, create one like another, wait for ACTIVE, count
//! items, and one-line summaries for plans.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, ProvisionedThroughput, ProvisionedThroughputDescription,
    ScalarAttributeType, Select, TableDescription, TableStatus,
};
use aws_sdk_dynamodb::Client;

use crate::conn::{api_error, error_code};
use crate::progress::{Display, Waiting};
use crate::{DataError, Result};

/// DescribeTable; None when the table does not exist.
pub async fn describe(client: &Client, table: &str) -> Result<Option<TableDescription>> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table),
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(api_error("DescribeTable", e)),
    }
}

/// DescribeTable of a table that must exist.
pub async fn describe_existing(client: &Client, table: &str) -> Result<TableDescription> {
    describe(client, table)
        .await?
        .ok_or_else(|| DataError::Api {
            operation: "DescribeTable",
            code: "ResourceNotFoundException".into(),
            message: format!("Requested resource not found: Table: {table} not found"),
        })
}

fn throughput(p: Option<&ProvisionedThroughputDescription>) -> Option<ProvisionedThroughput> {
    let p = p?;
    let read = p.read_capacity_units.filter(|r| *r > 0)?;
    let write = p.write_capacity_units.filter(|w| *w > 0)?;
    ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .ok()
}

/// The billing mode of a described table: its summary, else PROVISIONED when it has capacity.
pub fn billing_mode(desc: &TableDescription) -> BillingMode {
    desc.billing_mode_summary()
        .and_then(|b| b.billing_mode().cloned())
        .unwrap_or_else(|| {
            if throughput(desc.provisioned_throughput()).is_some() {
                BillingMode::Provisioned
            } else {
                BillingMode::PayPerRequest
            }
        })
}

/// CreateTable of `name` with `source`'s key schema, attribute definitions, secondary indexes
/// and billing (capacity included); streams, TTL, tags and encryption are not copied.
pub async fn create_like(client: &Client, name: &str, source: &TableDescription) -> Result<()> {
    let billing = billing_mode(source);
    let provisioned = billing == BillingMode::Provisioned;
    let mut req = client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(source.attribute_definitions().to_vec()))
        .set_key_schema(Some(source.key_schema().to_vec()))
        .billing_mode(billing);
    if provisioned {
        req = req.set_provisioned_throughput(throughput(source.provisioned_throughput()));
    }
    for g in source.global_secondary_indexes() {
        let mut b = GlobalSecondaryIndex::builder()
            .set_index_name(g.index_name().map(str::to_owned))
            .set_key_schema(Some(g.key_schema().to_vec()))
            .set_projection(g.projection().cloned());
        if provisioned {
            b = b.set_provisioned_throughput(throughput(g.provisioned_throughput()));
        }
        if let Some(o) = g.on_demand_throughput() {
            b = b.on_demand_throughput(o.clone());
        }
        let gsi = b
            .build()
            .map_err(|e| DataError::Failed(format!("index of {name}: {e}")))?;
        req = req.global_secondary_indexes(gsi);
    }
    for l in source.local_secondary_indexes() {
        let lsi = LocalSecondaryIndex::builder()
            .set_index_name(l.index_name().map(str::to_owned))
            .set_key_schema(Some(l.key_schema().to_vec()))
            .set_projection(l.projection().cloned())
            .build()
            .map_err(|e| DataError::Failed(format!("index of {name}: {e}")))?;
        req = req.local_secondary_indexes(lsi);
    }
    if let Some(o) = source.on_demand_throughput() {
        req = req.on_demand_throughput(o.clone());
    }
    req.send().await.map_err(|e| api_error("CreateTable", e))?;
    Ok(())
}

/// CreateTable on demand with a hash key and an optional range key.
pub async fn create_simple(
    client: &Client,
    name: &str,
    hash: &KeySpec,
    range: Option<&KeySpec>,
) -> Result<()> {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (spec, kind) in
        std::iter::once((hash, KeyType::Hash)).chain(range.map(|r| (r, KeyType::Range)))
    {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&spec.name)
                    .attribute_type(spec.kind.clone())
                    .build()
                    .map_err(|e| DataError::Failed(e.to_string()))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(&spec.name)
                    .key_type(kind)
                    .build()
                    .map_err(|e| DataError::Failed(e.to_string()))?,
            );
    }
    req.send().await.map_err(|e| api_error("CreateTable", e))?;
    Ok(())
}

/// A key attribute on the command line: `NAME:S`, `NAME:N` or `NAME:B`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub name: String,
    pub kind: ScalarAttributeType,
}

/// Parses `NAME:S|N|B` (the name may itself contain colons; the type is after the last one).
pub fn parse_key_spec(text: &str) -> std::result::Result<KeySpec, String> {
    let (name, kind) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?}: expected NAME:TYPE with TYPE S, N or B"))?;
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "{text:?}: the attribute name must be 1 to 255 characters"
        ));
    }
    let kind = match kind {
        "S" | "s" => ScalarAttributeType::S,
        "N" | "n" => ScalarAttributeType::N,
        "B" | "b" => ScalarAttributeType::B,
        other => return Err(format!("{text:?}: type {other:?} is not S, N or B")),
    };
    Ok(KeySpec {
        name: name.to_owned(),
        kind,
    })
}

/// How long a table that is being created or restored may stay invisible to DescribeTable.
const NOT_FOUND_GRACE: Duration = Duration::from_secs(60);

/// Polls DescribeTable until the table (and its indexes) are ACTIVE. A table that disappears
/// once seen (a failed restore is deleted) or never shows up is an error.
pub async fn wait_active(client: &Client, name: &str, display: Display) -> Result<()> {
    let mut waiting = Waiting::new(display, format!("table {name}"));
    let mut delay = Duration::from_millis(100);
    let start = std::time::Instant::now();
    let mut seen = false;
    loop {
        let status = match describe(client, name).await? {
            Some(d) => {
                seen = true;
                let table = d.table_status().map(|s| s.as_str().to_owned());
                let indexes_ready = d
                    .global_secondary_indexes()
                    .iter()
                    .all(|g| g.index_status().is_none_or(|s| s.as_str() == "ACTIVE"));
                if d.table_status() == Some(&TableStatus::Active) && indexes_ready {
                    return Ok(());
                }
                table.unwrap_or_else(|| "UNKNOWN".into())
            }
            None if seen || start.elapsed() > NOT_FOUND_GRACE => {
                return Err(DataError::Failed(format!(
                    "table {name} {} while waiting for it to become ACTIVE",
                    if seen {
                        "disappeared"
                    } else {
                        "did not appear"
                    }
                )))
            }
            None => "not found yet".to_owned(),
        };
        waiting.status(&status);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Exact number of items: a parallel Scan with Select=COUNT.
pub async fn count_items(client: &Client, table: &str, segments: i32) -> Result<u64> {
    let mut tasks = Vec::new();
    for segment in 0..segments {
        let client = client.clone();
        let table = table.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut count = 0u64;
            let mut start = None;
            loop {
                let out = client
                    .scan()
                    .table_name(&table)
                    .select(Select::Count)
                    .segment(segment)
                    .total_segments(segments)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| api_error("Scan", e))?;
                count += u64::try_from(out.count).unwrap_or(0);
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => return Ok::<u64, DataError>(count),
                }
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t
            .await
            .map_err(|e| DataError::Failed(format!("counting items: {e}")))??;
    }
    Ok(total)
}

/// Whether the table has at least one item (a Scan with Limit=1 until a page has one).
pub async fn has_items(client: &Client, table: &str) -> Result<bool> {
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .limit(1)
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| api_error("Scan", e))?;
        if out.count > 0 {
            return Ok(true);
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(false),
        }
    }
}

/// `pk (HASH, S), sk (RANGE, N)`.
pub fn key_summary(desc: &TableDescription) -> String {
    desc.key_schema()
        .iter()
        .map(|k| {
            let ty = desc
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name() == k.attribute_name())
                .map_or("?", |a| a.attribute_type().as_str());
            format!("{} ({}, {ty})", k.attribute_name(), k.key_type().as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `key pk (HASH, S), 2 global secondary indexes (byA, byB), 0 local, PAY_PER_REQUEST`.
/// The dry-run line for a target table that exists: `table NAME exists (SCHEMA)` and whether
/// items with the same keys would be overwritten.
pub fn existing_target(name: &str, desc: &TableDescription, has_items: bool) -> String {
    format!(
        "table {name} exists ({}){}",
        schema_summary(desc),
        if has_items {
            "; it already has items: items with the same keys would be overwritten \
             (asks for confirmation unless --yes)"
        } else {
            " and is empty"
        }
    )
}

pub fn schema_summary(desc: &TableDescription) -> String {
    let names = |v: Vec<&str>| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" ({})", v.join(", "))
        }
    };
    let gsis: Vec<&str> = desc
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    let lsis: Vec<&str> = desc
        .local_secondary_indexes()
        .iter()
        .filter_map(|l| l.index_name())
        .collect();
    format!(
        "key {}, {} global secondary index(es){}, {} local secondary index(es){}, {}",
        key_summary(desc),
        gsis.len(),
        names(gsis.clone()),
        lsis.len(),
        names(lsis.clone()),
        billing_mode(desc).as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_specs() {
        assert_eq!(
            parse_key_spec("pk:S").unwrap(),
            KeySpec {
                name: "pk".into(),
                kind: ScalarAttributeType::S
            }
        );
        assert_eq!(parse_key_spec("a:b:N").unwrap().name, "a:b");
        assert!(parse_key_spec("pk").is_err());
        assert!(parse_key_spec(":S").is_err());
        assert!(parse_key_spec("pk:X").is_err());
    }

    proptest! {
        #[test]
        fn key_spec_round_trip(name in "[a-zA-Z0-9_.:-]{1,40}", kind in prop::sample::select(vec!["S", "N", "B"])) {
            let spec = parse_key_spec(&format!("{name}:{kind}")).unwrap();
            prop_assert_eq!(spec.name, name);
            prop_assert_eq!(spec.kind.as_str(), kind);
        }

        #[test]
        fn key_spec_never_panics(s in ".{0,300}") {
            let _ = parse_key_spec(&s);
        }
    }
}
