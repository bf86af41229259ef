//! `ferrodyn triggers`: creates, lists, describes, enables, disables and deletes stream
//! triggers of a running server through its admin API (`FerrodynAdmin_20261201.CreateTrigger`,
//! `ListTriggers`, `DescribeTrigger`, `UpdateTrigger`, `DeleteTrigger`), SigV4-signed like
//! `ferrodyn audit`. Answers are printed as JSON, one trigger per line.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::audit_cli::{Client, Endpoint};

#[derive(Args)]
pub struct TriggersArgs {
    #[command(subcommand)]
    command: TriggersCommand,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(Subcommand)]
enum TriggersCommand {
    /// Attach a trigger to a table's stream (CreateTrigger).
    Create(Box<CreateArgs>),
    /// Every trigger, or those of one table (ListTriggers).
    List {
        #[arg(long)]
        table: Option<String>,
    },
    /// One trigger: settings, state, lag in records and seconds, last error (DescribeTrigger).
    Describe { id: String },
    /// Stop delivering; the checkpoint stays (UpdateTrigger Enabled=false).
    Disable { id: String },
    /// Resume delivering after the checkpoint (UpdateTrigger Enabled=true).
    Enable { id: String },
    /// Remove a trigger and its checkpoints (DeleteTrigger).
    Delete { id: String },
}

#[derive(Args)]
struct CreateArgs {
    /// The table whose stream is delivered (its stream must be enabled).
    #[arg(long)]
    table: String,
    /// HTTP(S) endpoint that receives Lambda's DynamoDB event as a POST.
    #[arg(long, conflicts_with_all = ["nats", "subject"], required_unless_present = "nats")]
    url: Option<String>,
    /// NATS server (nats://host:4222) whose JetStream receives one message per record.
    #[arg(long, requires = "subject")]
    nats: Option<String>,
    /// NATS subject to publish to.
    #[arg(long, requires = "nats")]
    subject: Option<String>,
    /// BatchSize (1..10000).
    #[arg(long)]
    batch_size: Option<u32>,
    /// MaximumBatchingWindowInSeconds (0..300).
    #[arg(long)]
    batch_window: Option<u32>,
    /// StartingPosition: TRIM_HORIZON, LATEST, or AT_TIMESTAMP=<epoch seconds>.
    #[arg(long)]
    starting_position: Option<String>,
    /// MaximumRetryAttempts (-1: until the record expires).
    #[arg(long, allow_negative_numbers = true)]
    max_retries: Option<i64>,
    /// MaximumRecordAgeInSeconds (-1, or 60..604800).
    #[arg(long, allow_negative_numbers = true)]
    max_record_age: Option<i64>,
    /// BisectBatchOnFunctionError.
    #[arg(long)]
    bisect_on_error: bool,
    /// FunctionResponseTypes ReportBatchItemFailures (partial batch responses).
    #[arg(long)]
    report_batch_item_failures: bool,
    /// A filter pattern (Lambda's event filter syntax); repeat for several (any matches).
    #[arg(long)]
    filter: Vec<String>,
    /// DestinationConfig.OnFailure: a table (created if missing) receiving failed records.
    #[arg(long)]
    on_failure_table: Option<String>,
    /// ParallelizationFactor (1..10).
    #[arg(long)]
    parallelization: Option<u32>,
    /// Seconds the target may take per batch (default 30).
    #[arg(long)]
    timeout: Option<u32>,
}

/// The CreateTrigger request of `ferrodyn triggers create`.
fn create_body(a: &CreateArgs) -> anyhow::Result<Value> {
    let mut b = Map::new();
    b.insert("TableName".into(), json!(a.table));
    let target = match (&a.url, &a.nats, &a.subject) {
        (Some(u), _, _) => json!({ "Url": u }),
        (None, Some(n), Some(s)) => json!({ "Nats": n, "Subject": s }),
        _ => anyhow::bail!("give --url, or --nats with --subject"),
    };
    b.insert("Target".into(), target);
    if let Some(n) = a.batch_size {
        b.insert("BatchSize".into(), json!(n));
    }
    if let Some(n) = a.batch_window {
        b.insert("MaximumBatchingWindowInSeconds".into(), json!(n));
    }
    if let Some(p) = &a.starting_position {
        match p.split_once('=') {
            Some(("AT_TIMESTAMP", t)) => {
                let t: f64 = t
                    .parse()
                    .with_context(|| format!("AT_TIMESTAMP={t}: epoch seconds"))?;
                b.insert("StartingPosition".into(), json!("AT_TIMESTAMP"));
                b.insert("StartingPositionTimestamp".into(), json!(t));
            }
            _ => {
                b.insert("StartingPosition".into(), json!(p));
            }
        }
    }
    if let Some(n) = a.max_retries {
        b.insert("MaximumRetryAttempts".into(), json!(n));
    }
    if let Some(n) = a.max_record_age {
        b.insert("MaximumRecordAgeInSeconds".into(), json!(n));
    }
    if a.bisect_on_error {
        b.insert("BisectBatchOnFunctionError".into(), json!(true));
    }
    if a.report_batch_item_failures {
        b.insert(
            "FunctionResponseTypes".into(),
            json!(["ReportBatchItemFailures"]),
        );
    }
    if !a.filter.is_empty() {
        let filters: Vec<Value> = a.filter.iter().map(|p| json!({ "Pattern": p })).collect();
        b.insert("FilterCriteria".into(), json!({ "Filters": filters }));
    }
    if let Some(t) = &a.on_failure_table {
        b.insert(
            "DestinationConfig".into(),
            json!({ "OnFailure": { "Destination": t } }),
        );
    }
    if let Some(n) = a.parallelization {
        b.insert("ParallelizationFactor".into(), json!(n));
    }
    if let Some(n) = a.timeout {
        b.insert("TimeoutSeconds".into(), json!(n));
    }
    Ok(Value::Object(b))
}

pub fn run(args: TriggersArgs) -> anyhow::Result<()> {
    let mut client = Client::new(&args.endpoint)?;
    let v = match &args.command {
        TriggersCommand::Create(a) => client.call("CreateTrigger", &create_body(a)?)?,
        TriggersCommand::List { table } => {
            let body = match table {
                Some(t) => json!({ "TableName": t }),
                None => json!({}),
            };
            let v = client.call("ListTriggers", &body)?;
            for t in v["Triggers"].as_array().into_iter().flatten() {
                println!("{t}");
            }
            return Ok(());
        }
        TriggersCommand::Describe { id } => {
            client.call("DescribeTrigger", &json!({ "TriggerId": id }))?
        }
        TriggersCommand::Disable { id } => client.call(
            "UpdateTrigger",
            &json!({ "TriggerId": id, "Enabled": false }),
        )?,
        TriggersCommand::Enable { id } => client.call(
            "UpdateTrigger",
            &json!({ "TriggerId": id, "Enabled": true }),
        )?,
        TriggersCommand::Delete { id } => {
            client.call("DeleteTrigger", &json!({ "TriggerId": id }))?
        }
    };
    println!("{v}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CreateArgs,
    }

    #[test]
    fn create_flags_become_lambda_settings() {
        let cli = Cli::parse_from([
            "x",
            "--table",
            "Orders",
            "--url",
            "http://127.0.0.1:9/hook",
            "--batch-size",
            "10",
            "--starting-position",
            "AT_TIMESTAMP=12.5",
            "--max-retries",
            "-1",
            "--bisect-on-error",
            "--report-batch-item-failures",
            "--filter",
            r#"{"eventName":["INSERT"]}"#,
            "--on-failure-table",
            "dlq",
            "--parallelization",
            "2",
        ]);
        let b = create_body(&cli.args).unwrap();
        assert_eq!(
            b,
            json!({"TableName": "Orders", "Target": {"Url": "http://127.0.0.1:9/hook"},
                "BatchSize": 10, "StartingPosition": "AT_TIMESTAMP",
                "StartingPositionTimestamp": 12.5, "MaximumRetryAttempts": -1,
                "BisectBatchOnFunctionError": true,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "FilterCriteria": {"Filters": [{"Pattern": "{\"eventName\":[\"INSERT\"]}"}]},
                "DestinationConfig": {"OnFailure": {"Destination": "dlq"}},
                "ParallelizationFactor": 2})
        );
        let cli = Cli::parse_from([
            "x",
            "--table",
            "T",
            "--nats",
            "nats://h:4222",
            "--subject",
            "s.t",
        ]);
        assert_eq!(
            create_body(&cli.args).unwrap()["Target"],
            json!({"Nats": "nats://h:4222", "Subject": "s.t"})
        );
    }
}
