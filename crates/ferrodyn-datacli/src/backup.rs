//! `ferrodyn backup create|list|describe|delete|restore` and `ferrodyn restore`: on-demand
//! backups and point-in-time restores through the DynamoDB API, waiting (with progress) until a
//! backup is AVAILABLE or a restored table is ACTIVE unless `--no-wait`.

use std::time::Duration;

use aws_sdk_dynamodb::types::{BackupDescription, BackupStatus, BackupSummary};
use aws_sdk_dynamodb::Client;
use clap::{Args, Subcommand};

use crate::confirm::confirm;
use crate::conn::api_error;
use crate::progress::{Display, Waiting};
use crate::timefmt::{format_time, parse_time};
use crate::{table, CommonArgs, DataError, Result};

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Create an on-demand backup of a table (CreateBackup) and wait until it is AVAILABLE.
    Create {
        /// The table to back up.
        table: String,
        /// Name of the backup [default: TABLE-YYYYMMDDTHHMMSSZ].
        #[arg(long)]
        name: Option<String>,
        /// Return once the backup is requested, without waiting for AVAILABLE.
        #[arg(long)]
        no_wait: bool,
        /// Print what would be backed up and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List backups (ListBackups): ARN, name, table, status, creation time, size.
    List {
        /// Only the backups of this table.
        #[arg(long)]
        table: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Describe one backup (DescribeBackup).
    Describe {
        /// The backup's ARN.
        arn: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Delete a backup (DeleteBackup); asks for confirmation unless --yes.
    Delete {
        /// The backup's ARN.
        arn: String,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
        /// Print which backup would be deleted and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Restore a backup into a new table (RestoreTableFromBackup) and wait until it is ACTIVE.
    Restore {
        /// The backup's ARN.
        arn: String,
        /// Name of the new table.
        #[arg(long, value_name = "NEW_TABLE")]
        into: String,
        /// Return once the restore is requested, without waiting for ACTIVE.
        #[arg(long)]
        no_wait: bool,
        /// Print what would be restored and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["to_time", "latest"])))]
pub struct RestoreArgs {
    /// The table whose history is restored (point-in-time recovery must be on).
    pub table: String,
    /// Restore the table as it was at this time (RFC 3339, e.g. 2026-12-05T14:02:31Z, or
    /// epoch seconds).
    #[arg(long, value_name = "TIME")]
    pub to_time: Option<String>,
    /// Restore the latest restorable time.
    #[arg(long)]
    pub latest: bool,
    /// Name of the new table.
    #[arg(long, value_name = "NEW_TABLE")]
    pub into: String,
    /// Return once the restore is requested, without waiting for ACTIVE.
    #[arg(long)]
    pub no_wait: bool,
    /// Print what would be restored and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub async fn run(cmd: BackupCommand) -> Result<()> {
    match cmd {
        BackupCommand::Create {
            table,
            name,
            no_wait,
            dry_run,
            common,
        } => create(table, name, no_wait, dry_run, common).await,
        BackupCommand::List { table, common } => list(table, common).await,
        BackupCommand::Describe { arn, common } => {
            let client = common.conn.client().await?;
            let d = describe_backup(&client, &arn).await?;
            print_description(&d);
            Ok(())
        }
        BackupCommand::Delete {
            arn,
            yes,
            dry_run,
            common,
        } => delete(arn, yes, dry_run, common).await,
        BackupCommand::Restore {
            arn,
            into,
            no_wait,
            dry_run,
            common,
        } => restore_backup(arn, into, no_wait, dry_run, common).await,
    }
}

fn default_name(table: &str) -> String {
    let now = aws_sdk_dynamodb::primitives::DateTime::from(std::time::SystemTime::now());
    let stamp: String = format_time(&now)
        .chars()
        .take(19)
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    // Backup names are 3 to 255 of [a-zA-Z0-9_.-]; so are table names.
    let mut name = format!("{table}-{stamp}Z");
    name.truncate(255);
    name
}

async fn create(
    table_name: String,
    name: Option<String>,
    no_wait: bool,
    dry_run: bool,
    common: CommonArgs,
) -> Result<()> {
    let display = Display::new(common.progress, common.progress_interval);
    let client = common.conn.client().await?;
    let name = name.unwrap_or_else(|| default_name(&table_name));
    if dry_run {
        let desc = table::describe_existing(&client, &table_name).await?;
        println!(
            "would create backup {name} of table {table_name} ({}; ItemCount {}, {} bytes)",
            table::schema_summary(&desc),
            desc.item_count().unwrap_or(0),
            desc.table_size_bytes().unwrap_or(0)
        );
        println!("dry run: nothing changed");
        return Ok(());
    }
    let out = client
        .create_backup()
        .table_name(&table_name)
        .backup_name(&name)
        .send()
        .await
        .map_err(|e| api_error("CreateBackup", e))?;
    let arn = out
        .backup_details
        .as_ref()
        .map(|d| d.backup_arn().to_owned())
        .ok_or_else(|| DataError::Failed("CreateBackup answered without BackupDetails".into()))?;
    if !no_wait {
        let mut waiting = Waiting::new(display, format!("backup {name}"));
        let mut delay = Duration::from_millis(100);
        loop {
            let d = describe_backup(&client, &arn).await?;
            let status = d
                .backup_details()
                .map(|b| b.backup_status().clone())
                .unwrap_or(BackupStatus::Creating);
            match status {
                BackupStatus::Available => break,
                BackupStatus::Deleted => {
                    return Err(DataError::Failed(format!(
                        "backup {arn} was deleted while being created"
                    )))
                }
                s => waiting.status(s.as_str()),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
    println!(
        "backup {name} of {table_name}: {arn}{}",
        if no_wait {
            " (requested)"
        } else {
            " (AVAILABLE)"
        }
    );
    Ok(())
}

async fn describe_backup(client: &Client, arn: &str) -> Result<BackupDescription> {
    client
        .describe_backup()
        .backup_arn(arn)
        .send()
        .await
        .map_err(|e| api_error("DescribeBackup", e))?
        .backup_description
        .ok_or_else(|| DataError::Failed("DescribeBackup answered without a description".into()))
}

fn print_description(d: &BackupDescription) {
    if let Some(b) = d.backup_details() {
        println!("BackupArn: {}", b.backup_arn());
        println!("BackupName: {}", b.backup_name());
        println!("BackupStatus: {}", b.backup_status().as_str());
        println!("BackupType: {}", b.backup_type().as_str());
        println!(
            "BackupCreationDateTime: {}",
            format_time(b.backup_creation_date_time())
        );
        if let Some(s) = b.backup_size_bytes() {
            println!("BackupSizeBytes: {s}");
        }
    }
    if let Some(s) = d.source_table_details() {
        println!("TableName: {}", s.table_name());
        println!("TableArn: {}", s.table_arn().unwrap_or(""));
        println!("ItemCount: {}", s.item_count().unwrap_or(0));
        println!("TableSizeBytes: {}", s.table_size_bytes().unwrap_or(0));
    }
}

async fn list(table_name: Option<String>, common: CommonArgs) -> Result<()> {
    let client = common.conn.client().await?;
    let mut start: Option<String> = None;
    let mut count = 0;
    loop {
        let out = client
            .list_backups()
            .set_table_name(table_name.clone())
            .set_exclusive_start_backup_arn(start.take())
            .send()
            .await
            .map_err(|e| api_error("ListBackups", e))?;
        for b in out.backup_summaries() {
            print_summary(b);
            count += 1;
        }
        match out.last_evaluated_backup_arn {
            Some(arn) => start = Some(arn),
            None => break,
        }
    }
    eprintln!("{count} backup(s)");
    Ok(())
}

fn print_summary(b: &BackupSummary) {
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        b.backup_arn().unwrap_or(""),
        b.backup_name().unwrap_or(""),
        b.table_name().unwrap_or(""),
        b.backup_status().map_or("", |s| s.as_str()),
        b.backup_creation_date_time()
            .map(format_time)
            .unwrap_or_default(),
        b.backup_size_bytes().unwrap_or(0)
    );
}

async fn delete(arn: String, yes: bool, dry_run: bool, common: CommonArgs) -> Result<()> {
    let client = common.conn.client().await?;
    let d = describe_backup(&client, &arn).await?;
    let (name, table_name) = (
        d.backup_details()
            .map_or("", |b| b.backup_name())
            .to_owned(),
        d.source_table_details()
            .map_or("", |s| s.table_name())
            .to_owned(),
    );
    if dry_run {
        println!("would delete backup {name} of table {table_name} ({arn})");
        println!("dry run: nothing changed");
        return Ok(());
    }
    confirm(
        &format!("Delete backup {name} of table {table_name} ({arn})? This cannot be undone."),
        yes,
    )?;
    client
        .delete_backup()
        .backup_arn(&arn)
        .send()
        .await
        .map_err(|e| api_error("DeleteBackup", e))?;
    println!("deleted backup {name} of {table_name}: {arn}");
    Ok(())
}

async fn restore_backup(
    arn: String,
    into: String,
    no_wait: bool,
    dry_run: bool,
    common: CommonArgs,
) -> Result<()> {
    let display = Display::new(common.progress, common.progress_interval);
    let client = common.conn.client().await?;
    if dry_run {
        let d = describe_backup(&client, &arn).await?;
        let exists = table::describe(&client, &into).await?.is_some();
        println!(
            "would restore backup {} of table {} ({} items, {} bytes) into new table {into}{}",
            d.backup_details().map_or("", |b| b.backup_name()),
            d.source_table_details().map_or("", |s| s.table_name()),
            d.source_table_details()
                .and_then(|s| s.item_count())
                .unwrap_or(0),
            d.backup_details()
                .and_then(|b| b.backup_size_bytes())
                .unwrap_or(0),
            if exists {
                " — but it already exists, so the restore would fail (TableAlreadyExistsException)"
            } else {
                ""
            }
        );
        println!("dry run: nothing changed");
        return Ok(());
    }
    client
        .restore_table_from_backup()
        .backup_arn(&arn)
        .target_table_name(&into)
        .send()
        .await
        .map_err(|e| api_error("RestoreTableFromBackup", e))?;
    if !no_wait {
        table::wait_active(&client, &into, display).await?;
    }
    println!(
        "restored backup {arn} into table {into}{}",
        if no_wait { " (requested)" } else { " (ACTIVE)" }
    );
    Ok(())
}

/// `ferrodyn restore TABLE --to-time TIME|--latest --into NEW`.
pub async fn restore(args: RestoreArgs) -> Result<()> {
    let display = Display::new(args.common.progress, args.common.progress_interval);
    let when = match &args.to_time {
        Some(t) => Some(parse_time(t).map_err(DataError::Usage)?),
        None => None,
    };
    let client = args.common.conn.client().await?;
    let when_text = match when {
        Some(t) => format_time(&t.to_sdk()),
        None => "the latest restorable time".to_owned(),
    };
    if args.dry_run {
        let desc = table::describe_existing(&client, &args.table).await?;
        let exists = table::describe(&client, &args.into).await?.is_some();
        println!(
            "would restore table {} ({}) as of {when_text} into new table {}{}",
            args.table,
            table::schema_summary(&desc),
            args.into,
            if exists {
                " — but it already exists, so the restore would fail (TableAlreadyExistsException)"
            } else {
                ""
            }
        );
        println!("dry run: nothing changed");
        return Ok(());
    }
    restore_to_point_in_time(&client, &args.table, &args.into, when).await?;
    if !args.no_wait {
        table::wait_active(&client, &args.into, display).await?;
    }
    println!(
        "restored table {} as of {when_text} into table {}{}",
        args.table,
        args.into,
        if args.no_wait {
            " (requested)"
        } else {
            " (ACTIVE)"
        }
    );
    Ok(())
}

/// RestoreTableToPointInTime of `table` into `into`, at `when` or the latest restorable time.
pub async fn restore_to_point_in_time(
    client: &Client,
    table: &str,
    into: &str,
    when: Option<crate::timefmt::Instant>,
) -> Result<()> {
    let mut req = client
        .restore_table_to_point_in_time()
        .source_table_name(table)
        .target_table_name(into);
    req = match when {
        Some(t) => req.restore_date_time(t.to_sdk()),
        None => req.use_latest_restorable_time(true),
    };
    req.send()
        .await
        .map_err(|e| api_error("RestoreTableToPointInTime", e))?;
    Ok(())
}
