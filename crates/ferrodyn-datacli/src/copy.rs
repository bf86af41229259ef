//! `ferrodyn copy TABLE --to NEW`: the source's schema (CreateTable of the same keys, indexes
//! and billing when the target is missing) and every item (parallel Scan into BatchWriteItem),
//! on one endpoint or from one endpoint to another.

use clap::Args;

use crate::confirm::confirm;
use crate::progress::{Display, Progress};
use crate::table;
use crate::transfer::{item_size, next_page, parallel_scan, write_items};
use crate::{CommonArgs, DataError, Result};

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The table to copy.
    pub table: String,
    /// The table to copy into; created like the source when it does not exist.
    #[arg(long = "to", value_name = "NEW_TABLE")]
    pub to: String,
    /// Endpoint of the target table [default: --endpoint, the source's].
    #[arg(long, value_name = "URL")]
    pub to_endpoint: Option<String>,
    /// Parallel Scan segments (and writers).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub segments: i32,
    /// Print what would be created and copied (counting the source's items), and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Copy into a target that already has items without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub async fn run(args: CopyArgs) -> Result<()> {
    let display = Display::new(args.common.progress, args.common.progress_interval);
    let source = args.common.conn.client().await?;
    let target_endpoint = args
        .to_endpoint
        .clone()
        .unwrap_or_else(|| args.common.conn.endpoint.clone());
    let target = args.common.conn.client_for(&target_endpoint).await?;
    let same_endpoint = target_endpoint == args.common.conn.endpoint;
    if same_endpoint && args.table == args.to {
        return Err(DataError::Usage(
            "the source and the target are the same table".to_owned(),
        ));
    }
    let desc = table::describe_existing(&source, &args.table).await?;
    let existing = table::describe(&target, &args.to).await?;
    let target_has_items = match &existing {
        Some(_) => table::has_items(&target, &args.to).await?,
        None => false,
    };
    let where_to = if same_endpoint {
        String::new()
    } else {
        format!(" at {target_endpoint}")
    };

    if args.dry_run {
        let count = table::count_items(&source, &args.table, args.segments).await?;
        println!(
            "source: table {} at {}: {}; {count} items (counted with Scan Select=COUNT), \
             ItemCount {}, {} bytes (TableSizeBytes)",
            args.table,
            args.common.conn.endpoint,
            table::schema_summary(&desc),
            desc.item_count().unwrap_or(0),
            desc.table_size_bytes().unwrap_or(0)
        );
        match &existing {
            None => println!(
                "would create table {}{where_to} with {}",
                args.to,
                table::schema_summary(&desc)
            ),
            Some(t) => println!(
                "target {}",
                table::existing_target(&format!("{}{where_to}", args.to), t, target_has_items)
            ),
        }
        println!(
            "would copy {count} items from {} to {}{where_to} with {} parallel Scan segments \
             and BatchWriteItem",
            args.table, args.to, args.segments
        );
        println!("dry run: nothing changed");
        return Ok(());
    }

    match &existing {
        None => {
            table::create_like(&target, &args.to, &desc).await?;
            eprintln!(
                "created table {}{where_to} ({})",
                args.to,
                table::schema_summary(&desc)
            );
        }
        Some(_) if target_has_items => confirm(
            &format!(
                "Table {}{where_to} already has items; items with the same keys will be \
                 overwritten.",
                args.to
            ),
            args.yes,
        )?,
        Some(_) => {}
    }
    table::wait_active(&target, &args.to, display).await?;

    let total = desc.item_count().and_then(|c| u64::try_from(c).ok());
    let progress = Progress::start(display, "copied", total.filter(|t| *t > 0));
    let progress = std::sync::Arc::new(progress);
    let pages = parallel_scan(&source, &args.table, args.segments);
    let mut writers = Vec::new();
    for _ in 0..args.segments {
        let pages = pages.clone();
        let target = target.clone();
        let to = args.to.clone();
        let progress = progress.clone();
        writers.push(tokio::spawn(async move {
            while let Some(page) = next_page(&pages).await {
                let items = page?;
                let n = items.len() as u64;
                let bytes: u64 = items.iter().map(item_size).sum();
                let rejected = write_items(&target, &to, items).await?;
                if let Some(r) = rejected.into_iter().next() {
                    return Err(r.error);
                }
                progress.add(n, bytes);
            }
            Ok::<(), DataError>(())
        }));
    }
    let mut failure = None;
    for w in writers {
        let outcome = w
            .await
            .map_err(|e| DataError::Failed(format!("copy worker: {e}")))
            .and_then(|r| r);
        if let Err(e) = outcome {
            failure.get_or_insert(e);
        }
    }
    let progress = std::sync::Arc::try_unwrap(progress)
        .map_err(|_| DataError::Failed("copy workers still running".to_owned()))?;
    let totals = progress.finish();
    if let Some(e) = failure {
        eprintln!(
            "copied {} items before the failure; rerunning the copy writes them again (puts \
             are idempotent)",
            totals.items
        );
        return Err(e);
    }
    println!(
        "copied {} from {} to {}{where_to}",
        totals.describe(),
        args.table,
        args.to
    );
    Ok(())
}
