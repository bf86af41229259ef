//! ExportTableToPointInTime, DescribeExport, ListExports.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrodyn_core::pitr::Change;
use ferrodyn_dataio::{
    ChangeRecord, ExportFormat, ExportKind, ExportSpec, ExportViewType, ExportWriter, FileLimits,
};
use ferrodyn_model::Error;
use serde::{Deserialize, Serialize};

use crate::{internal, new_id, now, page, Exchange, EXPORTS, HEARTBEAT};

/// IncrementalExportSpecification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncrementalSpec {
    /// Epoch seconds.
    pub from: Option<f64>,
    pub to: Option<f64>,
    /// NEW_IMAGE or NEW_AND_OLD_IMAGES.
    pub view: Option<String>,
}

/// An ExportTableToPointInTime request, decoded.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub table_arn: String,
    /// Epoch seconds.
    pub export_time: Option<f64>,
    pub client_token: Option<String>,
    pub s3_bucket: String,
    pub s3_bucket_owner: Option<String>,
    pub s3_prefix: Option<String>,
    pub s3_sse_algorithm: Option<String>,
    pub s3_sse_kms_key_id: Option<String>,
    pub export_format: Option<String>,
    pub export_type: Option<String>,
    pub incremental: Option<IncrementalSpec>,
}

/// An export as recorded (ExportDescription).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub id: String,
    pub arn: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub status: String,
    pub start_time: f64,
    pub end_time: Option<f64>,
    /// The key of `manifest-summary.json`, once completed.
    pub export_manifest: Option<String>,
    pub table_arn: String,
    pub table_name: String,
    pub table_id: String,
    /// Full exports: the instant exported.
    pub export_time: Option<f64>,
    pub client_token: Option<String>,
    pub s3_bucket: String,
    pub s3_bucket_owner: Option<String>,
    pub s3_prefix: Option<String>,
    pub s3_sse_algorithm: Option<String>,
    pub s3_sse_kms_key_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// DYNAMODB_JSON or ION.
    pub export_format: String,
    pub billed_size_bytes: Option<u64>,
    pub item_count: Option<u64>,
    /// FULL_EXPORT or INCREMENTAL_EXPORT.
    pub export_type: String,
    pub incremental: Option<IncrementalSpec>,
    /// When the runner last reported (epoch seconds).
    pub heartbeat: f64,
}

impl ExportRecord {
    pub(crate) fn fail(&mut self, code: &str, message: &str) {
        self.status = "FAILED".into();
        self.failure_code = Some(code.into());
        self.failure_message = Some(message.into());
        self.end_time = Some(now());
    }

    /// True if `req` asks for the same export (ClientToken idempotency).
    fn same_request(&self, req: &ExportRequest, format: &str, kind: &str) -> bool {
        self.table_arn == req.table_arn
            && self.s3_bucket == req.s3_bucket
            && self.s3_prefix == req.s3_prefix
            && self.export_format == format
            && self.export_type == kind
            && (req.export_time.is_none() || self.export_time == req.export_time)
    }
}

fn system_time(epoch: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(epoch.max(0.0))
}

/// The table name of a table ARN (`arn:…:table/NAME`).
fn table_of(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":table/")?;
    let name = rest.split('/').next()?;
    (!name.is_empty() && !rest.contains('/')).then_some(name)
}

impl Exchange {
    pub(crate) fn save_export(&self, e: &ExportRecord) -> Result<(), Error> {
        let raw = serde_json::to_vec(e).map_err(internal)?;
        self.engine()?.put_record(EXPORTS, &e.id, &raw)
    }

    pub(crate) fn exports(&self) -> Result<Vec<ExportRecord>, Error> {
        let mut out: Vec<ExportRecord> = self
            .engine()?
            .list_records(EXPORTS)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect();
        out.sort_by(|a, b| a.start_time.total_cmp(&b.start_time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// ExportTableToPointInTime: validates, records the export `IN_PROGRESS` and starts it.
    pub fn export_table(self: &Arc<Self>, req: ExportRequest) -> Result<ExportRecord, Error> {
        let engine = self.engine()?;
        let format = req.export_format.clone().unwrap_or("DYNAMODB_JSON".into());
        let output = ExportFormat::parse(&format)
            .ok_or_else(|| Error::validation(format!("Unknown ExportFormat: {format}")))?;
        let kind = req.export_type.clone().unwrap_or("FULL_EXPORT".into());
        let incremental = kind == "INCREMENTAL_EXPORT";
        if incremental && req.export_time.is_some() {
            return Err(Error::validation(
                "ExportTime cannot be specified for an incremental export",
            ));
        }
        if !incremental && req.incremental.is_some() {
            return Err(Error::validation(
                "IncrementalExportSpecification can only be specified for an incremental export",
            ));
        }
        let bucket_dir = self.bucket_dir(&req.s3_bucket)?;
        if let Some(token) = &req.client_token {
            if let Some(existing) = self
                .exports()?
                .into_iter()
                .find(|e| e.client_token.as_deref() == Some(token))
            {
                if existing.same_request(&req, &format, &kind) {
                    return Ok(existing);
                }
                return Err(Error::ExportConflict(
                    "There was a conflict when writing to the specified S3 bucket.".into(),
                ));
            }
        }
        let name = table_of(&req.table_arn)
            .ok_or_else(|| Error::validation(format!("Invalid TableArn: {}", req.table_arn)))?
            .to_owned();
        let window = engine.describe_continuous_backups(&name)?.ok_or_else(|| {
            Error::PointInTimeRecoveryUnavailable(format!(
                "Point in time recovery is not enabled for table '{name}'"
            ))
        })?;
        let started = now();
        let in_window = |t: f64| t >= window.earliest.floor() && t <= window.latest.max(started);
        let (export_time, spec) = if incremental {
            let spec = req.incremental.clone().unwrap_or(IncrementalSpec {
                from: None,
                to: None,
                view: None,
            });
            let from = spec.from.ok_or_else(|| {
                Error::validation("ExportFromTime must be specified for an incremental export")
            })?;
            let to = spec.to.unwrap_or(started);
            let length = to - from;
            if length < self.config.min_incremental.as_secs_f64()
                || length > self.config.max_incremental.as_secs_f64()
            {
                return Err(Error::validation(
                    "The difference between ExportFromTime and ExportToTime must be at least 15 minutes and at most 24 hours",
                ));
            }
            if !in_window(from) || !in_window(to) {
                return Err(Error::InvalidExportTime(
                    "The export period must be within the point in time recovery window of the table".into(),
                ));
            }
            let view = spec.view.clone().unwrap_or("NEW_AND_OLD_IMAGES".into());
            if ExportViewType::parse(&view).is_none() {
                return Err(Error::validation(format!("Unknown ExportViewType: {view}")));
            }
            (
                None,
                Some(IncrementalSpec {
                    from: Some(from),
                    to: Some(to),
                    view: Some(view),
                }),
            )
        } else {
            let at = req.export_time.unwrap_or(started);
            if !in_window(at) {
                return Err(Error::InvalidExportTime(
                    "Export time is outside of the point in time recovery window of the table"
                        .into(),
                ));
            }
            (Some(at), None)
        };
        let table = engine
            .describe_table(&name)
            .map_err(|_| Error::TableNotFound(format!("Table not found: {name}")))?;
        let id = new_id();
        let record = ExportRecord {
            arn: format!("{}/export/{id}", table.arn),
            id,
            status: "IN_PROGRESS".into(),
            start_time: started,
            end_time: None,
            export_manifest: None,
            table_arn: table.arn.clone(),
            table_name: name,
            table_id: table.def.id.clone(),
            export_time,
            client_token: req.client_token.clone(),
            s3_bucket: req.s3_bucket.clone(),
            s3_bucket_owner: req.s3_bucket_owner.clone(),
            s3_prefix: req.s3_prefix.clone(),
            s3_sse_algorithm: req.s3_sse_algorithm.clone(),
            s3_sse_kms_key_id: req.s3_sse_kms_key_id.clone(),
            failure_code: None,
            failure_message: None,
            export_format: output.as_str().to_owned(),
            billed_size_bytes: None,
            item_count: None,
            export_type: kind,
            incremental: spec,
            heartbeat: started,
        };
        self.save_export(&record)?;
        self.running.lock().insert(record.id.clone());
        let me = self.clone();
        let job = record.clone();
        let spawned = std::thread::Builder::new()
            .name("export".into())
            .spawn(move || {
                let id = job.id.clone();
                me.finish_export(job, &bucket_dir);
                me.running.lock().remove(&id);
            });
        if let Err(e) = spawned {
            self.running.lock().remove(&record.id);
            let mut failed = record.clone();
            failed.fail("InternalError", "The export could not be started");
            self.save_export(&failed)?;
            return Err(internal(e));
        }
        Ok(record)
    }

    /// Runs an export and records its outcome.
    fn finish_export(&self, mut job: ExportRecord, bucket_dir: &std::path::Path) {
        let outcome = self.run_export(&mut job, bucket_dir);
        match outcome {
            Ok(()) => job.status = "COMPLETED".into(),
            Err(e) => {
                tracing::error!(export = %job.arn, error = %e, "export failed");
                job.fail("InternalError", &e.to_string());
            }
        }
        job.end_time = Some(now());
        if let Err(e) = self.save_export(&job) {
            tracing::error!(export = %job.arn, error = %e, "cannot record the end of an export");
        }
    }

    fn run_export(
        &self,
        job: &mut ExportRecord,
        bucket_dir: &std::path::Path,
    ) -> Result<(), Error> {
        let engine = self.engine()?;
        let format = ExportFormat::parse(&job.export_format)
            .ok_or_else(|| Error::internal("unknown export format"))?;
        let kind = match (&job.incremental, job.export_time) {
            (Some(spec), _) => ExportKind::Incremental {
                from: system_time(spec.from.unwrap_or(0.0)),
                to: system_time(spec.to.unwrap_or(0.0)),
                view: spec
                    .view
                    .as_deref()
                    .and_then(ExportViewType::parse)
                    .unwrap_or(ExportViewType::NewAndOldImages),
            },
            (None, Some(at)) => ExportKind::Full {
                export_time: system_time(at),
            },
            (None, None) => return Err(Error::internal("export without a time")),
        };
        let spec = ExportSpec {
            export_id: job.id.clone(),
            export_arn: job.arn.clone(),
            table_arn: job.table_arn.clone(),
            table_id: job.table_id.clone(),
            s3_bucket: job.s3_bucket.clone(),
            s3_prefix: job.s3_prefix.clone(),
            s3_sse_algorithm: job.s3_sse_algorithm.clone(),
            s3_sse_kms_key_id: job.s3_sse_kms_key_id.clone(),
            format,
            kind,
            start_time: system_time(job.start_time),
        };
        let mut writer =
            ExportWriter::create(bucket_dir, spec, FileLimits::default()).map_err(internal)?;
        let mut reported = Instant::now();
        let mut beat = |job: &mut ExportRecord, count: u64| -> Result<(), Error> {
            if reported.elapsed() >= HEARTBEAT {
                reported = Instant::now();
                job.heartbeat = now();
                job.item_count = Some(count);
                self.save_export(job)?;
            }
            Ok(())
        };
        let mut count = 0u64;
        let table = job.table_name.clone();
        match (&job.incremental.clone(), job.export_time) {
            (Some(spec), _) => {
                let (from, to) = (spec.from.unwrap_or(0.0), spec.to.unwrap_or(0.0));
                engine.read_changes(&table, from, to, &mut |c: Change| {
                    writer
                        .write_change(&ChangeRecord {
                            write_timestamp_micros: c.write_time_us,
                            keys: c.keys,
                            new_image: c.new,
                            old_image: c.old,
                        })
                        .map_err(internal)?;
                    count += 1;
                    beat(job, count)?;
                    Ok(true)
                })?;
            }
            (None, Some(at)) => {
                engine.read_table_at(&table, at, &mut |item| {
                    writer.write_item(&item).map_err(internal)?;
                    count += 1;
                    beat(job, count)?;
                    Ok(true)
                })?;
            }
            (None, None) => {}
        }
        let export_key = writer.export_key().to_owned();
        let summary = writer.finish(SystemTime::now()).map_err(internal)?;
        job.item_count = Some(summary.item_count);
        job.billed_size_bytes = Some(summary.billed_size_bytes);
        job.export_manifest = Some(format!("{export_key}/manifest-summary.json"));
        Ok(())
    }

    /// DescribeExport.
    pub fn describe_export(self: &Arc<Self>, arn: &str) -> Result<ExportRecord, Error> {
        self.recover(false)?;
        let not_found = || Error::ExportNotFound(format!("Export not found: {arn}"));
        let id = arn
            .rsplit_once("/export/")
            .map(|(_, id)| id)
            .ok_or_else(not_found)?;
        let raw = self
            .engine()?
            .get_record(EXPORTS, id)?
            .ok_or_else(not_found)?;
        let record: ExportRecord = serde_json::from_slice(&raw).map_err(internal)?;
        if record.arn != arn {
            return Err(not_found());
        }
        Ok(record)
    }

    /// ListExports: by start time, optionally of one table, paged.
    pub fn list_exports(
        self: &Arc<Self>,
        table_arn: Option<&str>,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<ExportRecord>, Option<String>), Error> {
        self.recover(false)?;
        let all: Vec<ExportRecord> = self
            .exports()?
            .into_iter()
            .filter(|e| table_arn.is_none_or(|t| e.table_arn == t))
            .collect();
        page(
            &all,
            |e| e.arn.as_str(),
            max_results.unwrap_or(25),
            next_token,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_come_from_arns() {
        assert_eq!(
            table_of("arn:aws:dynamodb:us-east-1:1:table/Books"),
            Some("Books")
        );
        assert_eq!(table_of("arn:aws:dynamodb:us-east-1:1:table/"), None);
        assert_eq!(table_of("arn:aws:dynamodb:us-east-1:1:table/a/b"), None);
        assert_eq!(table_of("Books"), None);
    }
}
