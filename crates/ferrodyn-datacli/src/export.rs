//! `ferrodyn export TABLE --to DIR`: a client-side export. A parallel Scan feeds one writer
//! thread that lays out the files (the format is behind [`crate::format::ItemWriter`]). With
//! `--at TIME` the table is first restored as of that time into a temporary table
//! (RestoreTableToPointInTime), which is exported and then deleted, also when the export fails
//! or is interrupted with Ctrl-C.

use std::path::PathBuf;

use aws_sdk_dynamodb::Client;
use clap::Args;

use crate::format::{export_writer, Compression, ExportInfo, Format};
use crate::progress::{format_mb, Display, Progress};
use crate::timefmt::{format_time, parse_time};
use crate::transfer::{item_size, next_page, parallel_scan, Item};
use crate::{backup, table, CommonArgs, DataError, Result};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The table to export.
    pub table: String,
    /// Directory to write into (created if missing); DynamoDB JSON lands in
    /// DIR/AWSDynamoDB/<export id>/, CSV in DIR/TABLE.csv.
    #[arg(long = "to", value_name = "DIR")]
    pub to: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::DynamodbJson)]
    pub format: Format,
    /// Compression of the data files [default: gzip for dynamodb-json and ion (the only choice
    /// of DynamoDB's layout), none for csv].
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// Export the table as it was at this time (RFC 3339 or epoch seconds), through a temporary
    /// table restored with RestoreTableToPointInTime and deleted afterwards.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Parallel Scan segments.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub segments: i32,
    /// Print what would be exported (counting the items) and where, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub async fn run(args: ExportArgs) -> Result<()> {
    let display = Display::new(args.common.progress, args.common.progress_interval);
    let at = match &args.at {
        Some(t) => Some(parse_time(t).map_err(DataError::Usage)?),
        None => None,
    };
    let compression = args.compression.unwrap_or(match args.format {
        Format::Csv => Compression::None,
        _ => Compression::Gzip,
    });
    crate::format::check_export_compression(args.format, compression)?;
    let client = args.common.conn.client().await?;
    let desc = table::describe_existing(&client, &args.table).await?;
    let temp = at.map(|t| {
        let mut name = format!("{}-at-{}", args.table, t.secs);
        name.truncate(255);
        name
    });

    if args.dry_run {
        let count = table::count_items(&client, &args.table, args.segments).await?;
        if let (Some(t), Some(temp)) = (at, &temp) {
            println!(
                "would restore table {} as of {} into temporary table {temp} \
                 (RestoreTableToPointInTime), export it, then delete it; the table has {count} \
                 items now (counted with Scan Select=COUNT)",
                args.table,
                format_time(&t.to_sdk())
            );
        } else {
            println!(
                "would export {count} items (counted with Scan Select=COUNT) of table {} ({})",
                args.table,
                table::schema_summary(&desc)
            );
        }
        let layout = match args.format {
            Format::Csv => format!("{}.csv", args.table),
            _ => "AWSDynamoDB/<export id>/ (manifest-summary.json, manifest-files.json, data/)"
                .to_owned(),
        };
        println!(
            "would write {} {} files{} into {}/{layout} with {} parallel Scan segments",
            args.format.as_str(),
            match compression {
                Compression::Gzip => "gzip",
                Compression::Zstd => "zstd",
                Compression::None => "uncompressed",
            },
            if args.to.exists() {
                ""
            } else {
                " (directory created)"
            },
            args.to.display(),
            args.segments
        );
        println!("dry run: nothing changed");
        return Ok(());
    }

    let (Some(t), Some(temp)) = (at, &temp) else {
        return export(&client, &args, &args.table, compression, display).await;
    };
    backup::restore_to_point_in_time(&client, &args.table, temp, Some(t)).await?;
    eprintln!(
        "restoring {} as of {} into temporary table {temp}",
        args.table,
        format_time(&t.to_sdk())
    );
    // From here on the temporary table is deleted however the export ends, Ctrl-C included.
    let work = async {
        table::wait_active(&client, temp, display).await?;
        export(&client, &args, temp, compression, display).await
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        _ = tokio::signal::ctrl_c() => Err(DataError::Failed("interrupted".into())),
    };
    match client.delete_table().table_name(temp).send().await {
        Ok(_) => eprintln!("deleted temporary table {temp}"),
        Err(e) => eprintln!(
            "warning: could not delete temporary table {temp}: {}",
            crate::conn::api_error("DeleteTable", e)
        ),
    }
    outcome
}

async fn export(
    client: &Client,
    args: &ExportArgs,
    source: &str,
    compression: Compression,
    display: Display,
) -> Result<()> {
    let desc = table::describe_existing(client, source).await?;
    let info = ExportInfo {
        // The exported table's identity, also when read from a temporary restore.
        table_arn: desc
            .table_arn()
            .map(|a| {
                a.replacen(
                    &format!("table/{source}"),
                    &format!("table/{}", args.table),
                    1,
                )
            })
            .unwrap_or_default(),
        table_id: desc.table_id().unwrap_or_default().to_owned(),
        key_names: desc
            .key_schema()
            .iter()
            .map(|k| k.attribute_name().to_owned())
            .collect(),
    };
    let mut writer = export_writer(&args.to, args.format, compression, info)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Item>>(16);
    let writing = tokio::task::spawn_blocking(move || {
        while let Some(items) = rx.blocking_recv() {
            for item in &items {
                writer.write(item)?;
            }
        }
        writer.finish()
    });
    let total = desc.item_count().and_then(|c| u64::try_from(c).ok());
    let progress = Progress::start(display, "exported", total.filter(|t| *t > 0));
    let pages = parallel_scan(client, source, args.segments);
    let mut failure = None;
    while let Some(page) = next_page(&pages).await {
        match page {
            Ok(items) => {
                let bytes: u64 = items.iter().map(item_size).sum();
                let n = items.len() as u64;
                if tx.send(items).await.is_err() {
                    break;
                }
                progress.add(n, bytes);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let files = writing
        .await
        .map_err(|e| DataError::Failed(format!("export writer: {e}")))?
        .map_err(|e| DataError::io(args.to.display().to_string(), e));
    let totals = progress.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    let files = files?;
    let mut bytes = 0;
    for f in &files {
        eprintln!(
            "wrote {} ({} items, {} bytes)",
            f.path.display(),
            f.items,
            f.bytes
        );
        bytes += f.bytes;
    }
    println!(
        "exported {} of {} to {} ({} files, {} on disk)",
        totals.describe(),
        args.table,
        args.to.display(),
        files.len(),
        format_mb(bytes)
    );
    Ok(())
}
