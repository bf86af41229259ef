//! ImportTable, DescribeImport, ListImports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ferrodyn_core::control::CreateTableInput;
use ferrodyn_dataio::csv::CsvOptions;
use ferrodyn_dataio::{Compression, ImportSource, InputFormat, Position, ReadOptions};
use ferrodyn_model::{Error, Item};
use ferrodyn_storage::CommitTicket;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{internal, new_id, now, page, Exchange, HEARTBEAT, IMPORTS};

/// Items per load step.
const LOAD_BATCH: usize = 256;
/// Bad records logged per import (all are counted).
const LOGGED_ERRORS: u64 = 100;

/// InputFormatOptions.Csv.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CsvSettings {
    pub delimiter: Option<String>,
    pub header_list: Option<Vec<String>>,
}

/// An ImportTable request, decoded.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub client_token: Option<String>,
    pub s3_bucket: String,
    pub s3_bucket_owner: Option<String>,
    pub s3_key_prefix: Option<String>,
    /// DYNAMODB_JSON, ION or CSV.
    pub input_format: String,
    pub csv: Option<CsvSettings>,
    /// GZIP, ZSTD or NONE.
    pub compression: Option<String>,
    /// The table to create.
    pub table: CreateTableInput,
    /// TableCreationParameters as given (DescribeImport repeats them).
    pub table_creation_parameters: Value,
}

/// An import as recorded (ImportTableDescription).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub id: String,
    pub arn: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub status: String,
    pub table_arn: String,
    pub table_name: String,
    pub table_id: String,
    pub client_token: Option<String>,
    pub s3_bucket: String,
    pub s3_bucket_owner: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub error_count: u64,
    pub input_format: String,
    pub csv: Option<CsvSettings>,
    pub compression: String,
    pub table_creation_parameters: Value,
    pub start_time: f64,
    pub end_time: Option<f64>,
    pub processed_size_bytes: u64,
    pub processed_item_count: u64,
    pub imported_item_count: u64,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// Where a resumed run continues: (file, line, index) after the last durable record.
    pub position: (usize, u64, u32),
    /// When the runner last reported (epoch seconds).
    pub heartbeat: f64,
}

impl ImportRecord {
    fn fail(&mut self, code: &str, message: &str) {
        self.status = "FAILED".into();
        self.failure_code = Some(code.into());
        self.failure_message = Some(message.into());
        self.end_time = Some(now());
    }
}

impl Exchange {
    fn save_import(&self, i: &ImportRecord) -> Result<(), Error> {
        let raw = serde_json::to_vec(i).map_err(internal)?;
        self.engine()?.put_record(IMPORTS, &i.id, &raw)
    }

    pub(crate) fn imports(&self) -> Result<Vec<ImportRecord>, Error> {
        let mut out: Vec<ImportRecord> = self
            .engine()?
            .list_records(IMPORTS)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect();
        out.sort_by(|a, b| a.start_time.total_cmp(&b.start_time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// ImportTable: creates the table (`CREATING`), records the import and starts it.
    pub fn import_table(self: &Arc<Self>, req: ImportRequest) -> Result<ImportRecord, Error> {
        let engine = self.engine()?;
        if InputFormat::parse(&req.input_format).is_none() {
            return Err(Error::validation(format!(
                "Unknown InputFormat: {}",
                req.input_format
            )));
        }
        let compression = req.compression.clone().unwrap_or("NONE".into());
        if Compression::parse(&compression).is_none() {
            return Err(Error::validation(format!(
                "Unknown InputCompressionType: {compression}"
            )));
        }
        if req.csv.is_some() && req.input_format != "CSV" {
            return Err(Error::validation(
                "InputFormatOptions can only be specified for the CSV input format",
            ));
        }
        if let Some(d) = req.csv.as_ref().and_then(|c| c.delimiter.as_deref()) {
            if d.len() != 1 {
                return Err(Error::validation(format!("Invalid CSV delimiter: {d}")));
            }
        }
        self.bucket_dir(&req.s3_bucket)?;
        if let Some(token) = &req.client_token {
            if let Some(existing) = self
                .imports()?
                .into_iter()
                .find(|i| i.client_token.as_deref() == Some(token))
            {
                let same = existing.s3_bucket == req.s3_bucket
                    && existing.s3_key_prefix == req.s3_key_prefix
                    && existing.input_format == req.input_format
                    && existing.table_creation_parameters == req.table_creation_parameters;
                if same {
                    return Ok(existing);
                }
                return Err(Error::ImportConflict(
                    "There was a conflict when importing from the specified S3 source. This can occur when the current import conflicts with a previous import request that had the same client token.".into(),
                ));
            }
        }
        let id = new_id();
        let desc = engine.create_loading_table(req.table.clone(), &id)?;
        let record = ImportRecord {
            arn: format!("{}/import/{id}", desc.arn),
            id,
            status: "IN_PROGRESS".into(),
            table_arn: desc.arn.clone(),
            table_name: desc.def.name.clone(),
            table_id: desc.def.id.clone(),
            client_token: req.client_token.clone(),
            s3_bucket: req.s3_bucket.clone(),
            s3_bucket_owner: req.s3_bucket_owner.clone(),
            s3_key_prefix: req.s3_key_prefix.clone(),
            error_count: 0,
            input_format: req.input_format.clone(),
            csv: req.csv.clone(),
            compression,
            table_creation_parameters: req.table_creation_parameters.clone(),
            start_time: now(),
            end_time: None,
            processed_size_bytes: 0,
            processed_item_count: 0,
            imported_item_count: 0,
            failure_code: None,
            failure_message: None,
            position: (0, 0, 0),
            heartbeat: now(),
        };
        if let Err(e) = self.save_import(&record) {
            let _ = engine.fail_load(&record.table_name);
            return Err(e);
        }
        self.spawn_import(record.clone());
        Ok(record)
    }

    /// Runs an import (new or resumed) in the background.
    pub(crate) fn spawn_import(self: &Arc<Self>, record: ImportRecord) {
        if !self.running.lock().insert(record.id.clone()) {
            return;
        }
        let me = self.clone();
        let id = record.id.clone();
        let spawned = std::thread::Builder::new()
            .name("import".into())
            .spawn(move || {
                let id = record.id.clone();
                me.finish_import(record);
                me.running.lock().remove(&id);
            });
        if let Err(e) = spawned {
            self.running.lock().remove(&id);
            tracing::error!(error = %e, "cannot start an import");
        }
    }

    fn finish_import(&self, mut job: ImportRecord) {
        let engine = match self.engine() {
            Ok(e) => e,
            Err(_) => return,
        };
        if !engine.is_loading(&job.table_name) {
            job.fail("InternalError", "The table being imported no longer exists");
        } else {
            match self.run_import(&mut job) {
                Ok(()) => {
                    job.status = "COMPLETED".into();
                    job.end_time = Some(now());
                }
                Err((code, message)) => {
                    tracing::error!(import = %job.arn, %message, "import failed; its table is dropped");
                    if let Err(e) = engine.fail_load(&job.table_name) {
                        tracing::error!(import = %job.arn, error = %e, "cannot drop a failed import's table");
                    }
                    job.fail(code, &message);
                }
            }
        }
        if let Err(e) = self.save_import(&job) {
            tracing::error!(import = %job.arn, error = %e, "cannot record the end of an import");
        }
    }

    /// Loads the import's records from its saved position; `Err((FailureCode, message))`.
    fn run_import(&self, job: &mut ImportRecord) -> Result<(), (&'static str, String)> {
        let engine = self
            .engine()
            .map_err(|e| ("InternalError", e.to_string()))?;
        let internal = |e: Error| ("InternalError", e.to_string());
        let format = InputFormat::parse(&job.input_format)
            .ok_or(("InvalidInput", "Unknown input format".to_string()))?;
        let compression = Compression::parse(&job.compression)
            .ok_or(("InvalidInput", "Unknown compression".to_string()))?;
        let mut options = ReadOptions::new(format, compression);
        if let Some(csv) = &job.csv {
            options.csv = CsvOptions {
                delimiter: csv
                    .delimiter
                    .as_deref()
                    .and_then(|d| d.bytes().next())
                    .unwrap_or(b','),
                header_list: csv.header_list.clone(),
            };
        }
        options.key_types = key_types(&job.table_creation_parameters);
        let bucket_dir = self
            .bucket_dir(&job.s3_bucket)
            .map_err(|e| ("InvalidInput", e.to_string()))?;
        let prefix = job.s3_key_prefix.clone().unwrap_or_default();
        let source = ImportSource::open(&bucket_dir, &prefix, options)
            .map_err(|e| ("InvalidInput", e.to_string()))?;
        if source.files().is_empty() {
            return Err((
                "InvalidInput",
                format!(
                    "No objects were found in bucket {} under the key prefix {prefix:?}",
                    job.s3_bucket
                ),
            ));
        }
        let total_bytes: u64 = source.files().iter().map(|f| f.size).sum();
        let (file, line, index) = job.position;
        let start = Position { file, line, index };
        let mut batch: Vec<Item> = Vec::with_capacity(LOAD_BATCH);
        let mut last: Option<Position> = None;
        let mut ticket = CommitTicket::DURABLE;
        let mut reported = Instant::now();
        let mut processed = job.processed_item_count;
        let mut errors = job.error_count;
        let mut imported = job.imported_item_count;
        let name = job.table_name.clone();
        let flush = |batch: &mut Vec<Item>,
                     ticket: &mut CommitTicket,
                     imported: &mut u64|
         -> Result<(), (&'static str, String)> {
            if !batch.is_empty() {
                *ticket = (*ticket).max(engine.load_items(&name, batch).map_err(internal)?);
                *imported += batch.len() as u64;
                batch.clear();
            }
            Ok(())
        };
        for (position, record) in source.items(start) {
            processed += 1;
            last = Some(position);
            match record {
                Ok(item) => match engine.check_load_item(&job.table_name, &item) {
                    Ok(()) => batch.push(item),
                    Err(e) => {
                        errors += 1;
                        log_bad(job, errors, &source, position, &e.to_string());
                    }
                },
                Err(e) => {
                    errors += 1;
                    if errors <= LOGGED_ERRORS {
                        tracing::warn!(import = %job.arn, error = %e, "import: record skipped");
                    }
                }
            }
            if batch.len() >= LOAD_BATCH {
                flush(&mut batch, &mut ticket, &mut imported)?;
            }
            if reported.elapsed() >= HEARTBEAT && batch.is_empty() {
                // Save a resume point only once everything before it is durable.
                reported = Instant::now();
                engine.wait_durable(ticket).map_err(internal)?;
                job.position = pos_tuple(position.after());
                job.processed_item_count = processed;
                job.error_count = errors;
                job.imported_item_count = imported;
                job.heartbeat = now();
                self.save_import(job).map_err(internal)?;
            }
        }
        flush(&mut batch, &mut ticket, &mut imported)?;
        engine
            .finish_load(&job.table_name, ticket)
            .map_err(internal)?;
        if let Some(p) = last {
            job.position = pos_tuple(p.after());
        }
        job.processed_item_count = processed;
        job.error_count = errors;
        job.imported_item_count = imported;
        job.processed_size_bytes = total_bytes;
        Ok(())
    }

    /// DescribeImport.
    pub fn describe_import(self: &Arc<Self>, arn: &str) -> Result<ImportRecord, Error> {
        self.recover(false)?;
        let not_found = || Error::ImportNotFound(format!("Import not found: {arn}"));
        let id = arn
            .rsplit_once("/import/")
            .map(|(_, id)| id)
            .ok_or_else(not_found)?;
        let raw = self
            .engine()?
            .get_record(IMPORTS, id)?
            .ok_or_else(not_found)?;
        let record: ImportRecord = serde_json::from_slice(&raw).map_err(internal)?;
        if record.arn != arn {
            return Err(not_found());
        }
        Ok(record)
    }

    /// ListImports: by start time, optionally of one table, paged.
    pub fn list_imports(
        self: &Arc<Self>,
        table_arn: Option<&str>,
        page_size: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<ImportRecord>, Option<String>), Error> {
        self.recover(false)?;
        let all: Vec<ImportRecord> = self
            .imports()?
            .into_iter()
            .filter(|i| table_arn.is_none_or(|t| i.table_arn == t))
            .collect();
        page(
            &all,
            |i| i.arn.as_str(),
            page_size.unwrap_or(25),
            next_token,
        )
    }
}

fn pos_tuple(p: Position) -> (usize, u64, u32) {
    (p.file, p.line, p.index)
}

fn log_bad(job: &ImportRecord, errors: u64, source: &ImportSource, p: Position, message: &str) {
    if errors <= LOGGED_ERRORS {
        let file = source.files().get(p.file).map_or("?", |f| f.key.as_str());
        tracing::warn!(import = %job.arn, file, line = p.line, message, "import: item skipped");
    }
}

/// Key attributes of the table and its indexes, from TableCreationParameters'
/// AttributeDefinitions (CSV columns with these names get their type).
fn key_types(params: &Value) -> HashMap<String, ferrodyn_model::ScalarType> {
    let mut out = HashMap::new();
    for d in params
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(ty)) = (
            d.get("AttributeName").and_then(Value::as_str),
            d.get("AttributeType").and_then(Value::as_str),
        ) else {
            continue;
        };
        let ty = match ty {
            "N" => ferrodyn_model::ScalarType::N,
            "B" => ferrodyn_model::ScalarType::B,
            _ => ferrodyn_model::ScalarType::S,
        };
        out.insert(name.to_owned(), ty);
    }
    out
}
