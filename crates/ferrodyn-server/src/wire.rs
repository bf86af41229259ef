//! The one place where an error becomes an HTTP response.
//!
//! Invariant: every error a client can see passes through [`error_response_parts`]; handlers and
//! the engine never choose status codes or `__type` strings themselves.

use ferrodyn_model::error::ThrottleKind;
use ferrodyn_model::Error;

/// Errors that exist only at the HTTP edge (before an operation runs).
#[derive(Debug, Clone)]
pub enum EdgeError {
    UnknownOperation,
    MissingAuthenticationToken,
    IncompleteSignature(String),
    InvalidSignature(String),
    UnrecognizedClient(String),
    /// Body too large (413).
    RequestTooLarge,
    /// A Content-Encoding that is unknown or does not decode (DynamoDB answers 500).
    BadContentEncoding,
    /// The request's database (one per access key and region) cannot be had.
    Database(crate::databases::DatabaseError),
}

/// HTTP status, `__type` and message of a domain error, as DynamoDB sends them.
pub fn error_response_parts(err: &Error) -> (u16, String, String) {
    let code = error_code(err);
    let prefix = match err {
        Error::Validation(_) => "com.amazon.coral.validate#",
        Error::Serialization(_) | Error::AccessDenied(_) => "com.amazon.coral.service#",
        _ => "com.amazonaws.dynamodb.v20120810#",
    };
    let ty = format!("{prefix}{code}");
    match err {
        Error::TransactionCanceled { reasons } => {
            let codes: Vec<&str> = reasons
                .iter()
                .map(|r| r.code.as_deref().unwrap_or("None"))
                .collect();
            let msg = format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            );
            (400, ty, msg)
        }
        // The engine logs a storage fault once when it starts (and again now and then while
        // it lasts), not once per refused request.
        Error::StorageFault(m) => (500, ty, m.clone()),
        Error::Corrupt(detail) => {
            tracing::error!(error = %detail, "stored data failed its integrity check");
            (500, ty, CORRUPTION_MESSAGE.into())
        }
        _ if code == INTERNAL => {
            tracing::error!(error = ?err, "internal server error");
            (500, ty, "Internal server error".into())
        }
        // Every other variant's Display is exactly DynamoDB's message.
        _ => (400, ty, err.to_string()),
    }
}

const INTERNAL: &str = "InternalServerError";

/// The message of a read or write refused because stored data failed its integrity check
/// (DynamoDB's own 500s say "Internal server error"; the rest tells an operator why).
pub const CORRUPTION_MESSAGE: &str =
    "Internal server error: stored data is corrupt (integrity check failed); the server log names the file";

/// A failed statement of BatchExecuteStatement as its `BatchStatementError`: Code (from
/// `BatchStatementErrorCodeEnum`), Message, and the old item of a failed condition.
pub fn batch_statement_error(err: &Error) -> (&'static str, String, Option<&ferrodyn_model::Item>) {
    let code = match err {
        Error::ConditionalCheckFailed { .. } => "ConditionalCheckFailed",
        Error::DuplicateItem(_) => "DuplicateItem",
        Error::ResourceNotFound(_) => "ResourceNotFound",
        Error::Validation(_) | Error::Serialization(_) => "ValidationError",
        Error::ItemCollectionSizeLimitExceeded(_) => "ItemCollectionSizeLimitExceeded",
        Error::TransactionConflict(_) => "TransactionConflict",
        Error::AccessDenied(_) => "AccessDenied",
        _ => INTERNAL,
    };
    let message = if let Error::StorageFault(m) = err {
        m.clone()
    } else if let Error::Corrupt(detail) = err {
        tracing::error!(error = %detail, "stored data failed its integrity check");
        CORRUPTION_MESSAGE.to_owned()
    } else if code == INTERNAL {
        tracing::error!(error = ?err, "internal error in a batch statement");
        "Internal server error".to_owned()
    } else {
        err.to_string()
    };
    let item = match err {
        Error::ConditionalCheckFailed { item } => item.as_ref(),
        _ => None,
    };
    (code, message, item)
}

/// The short error code of a domain error (`ConditionalCheckFailedException`, ...), as the
/// audit log records it and as `__type` ends.
pub fn error_code(err: &Error) -> &'static str {
    match err {
        Error::Validation(_) => "ValidationException",
        Error::Serialization(_) => "SerializationException",
        Error::ResourceNotFound(_) => "ResourceNotFoundException",
        Error::ResourceInUse(_) => "ResourceInUseException",
        Error::LimitExceeded(_) => "LimitExceededException",
        Error::ConditionalCheckFailed { .. } => "ConditionalCheckFailedException",
        Error::TransactionCanceled { .. } => "TransactionCanceledException",
        Error::TransactionConflict(_) => "TransactionConflictException",
        Error::IdempotentParameterMismatch(_) => "IdempotentParameterMismatchException",
        Error::TransactionInProgress(_) => "TransactionInProgressException",
        Error::ItemCollectionSizeLimitExceeded(_) => "ItemCollectionSizeLimitExceededException",
        Error::DuplicateItem(_) => "DuplicateItemException",
        Error::ExpiredIterator(_) => "ExpiredIteratorException",
        Error::TrimmedDataAccess(_) => "TrimmedDataAccessException",
        Error::TableNotFound(_) => "TableNotFoundException",
        Error::BackupNotFound(_) => "BackupNotFoundException",
        Error::BackupInUse(_) => "BackupInUseException",
        Error::TableAlreadyExists(_) => "TableAlreadyExistsException",
        Error::TableInUse(_) => "TableInUseException",
        Error::PointInTimeRecoveryUnavailable(_) => "PointInTimeRecoveryUnavailableException",
        Error::InvalidRestoreTime(_) => "InvalidRestoreTimeException",
        Error::ContinuousBackupsUnavailable(_) => "ContinuousBackupsUnavailableException",
        Error::ExportNotFound(_) => "ExportNotFoundException",
        Error::ImportNotFound(_) => "ImportNotFoundException",
        Error::InvalidExportTime(_) => "InvalidExportTimeException",
        Error::ExportConflict(_) => "ExportConflictException",
        Error::ImportConflict(_) => "ImportConflictException",
        Error::AccessDenied(_) => "AccessDeniedException",
        Error::PolicyNotFound(_) => "PolicyNotFoundException",
        Error::Throttled {
            kind: ThrottleKind::ProvisionedThroughputExceeded,
            ..
        } => "ProvisionedThroughputExceededException",
        Error::Throttled {
            kind: ThrottleKind::Throttling,
            ..
        } => "ThrottlingException",
        _ => INTERNAL,
    }
}

pub fn edge_error_parts(err: &EdgeError) -> (u16, String, String) {
    match err {
        EdgeError::UnknownOperation => (
            400,
            "com.amazon.coral.service#UnknownOperationException".into(),
            String::new(),
        ),
        EdgeError::MissingAuthenticationToken => (
            400,
            "com.amazon.coral.service#MissingAuthenticationTokenException".into(),
            "Request is missing Authentication Token".into(),
        ),
        EdgeError::IncompleteSignature(m) => (
            400,
            "com.amazon.coral.service#IncompleteSignatureException".into(),
            m.clone(),
        ),
        EdgeError::InvalidSignature(m) => (
            400,
            "com.amazon.coral.service#InvalidSignatureException".into(),
            m.clone(),
        ),
        EdgeError::UnrecognizedClient(m) => (
            400,
            "com.amazon.coral.service#UnrecognizedClientException".into(),
            m.clone(),
        ),
        EdgeError::BadContentEncoding => (
            500,
            "com.amazonaws.dynamodb.v20120810#InternalServerError".into(),
            "Internal server error".into(),
        ),
        EdgeError::RequestTooLarge => (
            413,
            "com.amazon.coral.service#RequestEntityTooLargeException".into(),
            "Request entity too large".into(),
        ),
        EdgeError::Database(crate::databases::DatabaseError::Limit) => (
            400,
            "com.amazonaws.dynamodb.v20120810#LimitExceededException".into(),
            format!(
                "Too many databases: this server keeps one per access key id and region, at \
                 most {}; use fewer keys and regions, or one shared database (-sharedDb)",
                crate::databases::MAX_DATABASES
            ),
        ),
        EdgeError::Database(crate::databases::DatabaseError::Open(m)) => (
            500,
            "com.amazonaws.dynamodb.v20120810#InternalServerError".into(),
            format!(
                "Internal server error: opening the database of this access key and region: {m}"
            ),
        ),
    }
}

/// The complete JSON body of a domain error, including `Item` (ConditionalCheckFailed with
/// ALL_OLD) and `CancellationReasons` (TransactionCanceled).
pub fn domain_error_body(err: &Error, ty: &str, msg: &str) -> Vec<u8> {
    let extra = match err {
        Error::ConditionalCheckFailed { item: Some(item) } => {
            let mut e = b"\"Item\":".to_vec();
            ferrodyn_protocol::codec::write_item_json(item, &mut e);
            Some(e)
        }
        Error::TransactionCanceled { reasons } => {
            let mut e = b"\"CancellationReasons\":[".to_vec();
            for (i, r) in reasons.iter().enumerate() {
                if i > 0 {
                    e.push(b',');
                }
                e.push(b'{');
                let mut first = true;
                if let Some(item) = &r.item {
                    e.extend_from_slice(b"\"Item\":");
                    ferrodyn_protocol::codec::write_item_json(item, &mut e);
                    first = false;
                }
                if !first {
                    e.push(b',');
                }
                e.extend_from_slice(b"\"Code\":");
                write_json_str(r.code.as_deref().unwrap_or("None"), &mut e);
                if let Some(m) = &r.message {
                    e.extend_from_slice(b",\"Message\":");
                    write_json_str(m, &mut e);
                }
                e.push(b'}');
            }
            e.push(b']');
            Some(e)
        }
        Error::Throttled { kind, reasons, .. } if !reasons.is_empty() => {
            // The service model spells the member differently in the two exceptions.
            let mut e = match kind {
                ThrottleKind::ProvisionedThroughputExceeded => b"\"ThrottlingReasons\":[".to_vec(),
                ThrottleKind::Throttling => b"\"throttlingReasons\":[".to_vec(),
            };
            for (i, r) in reasons.iter().enumerate() {
                if i > 0 {
                    e.push(b',');
                }
                e.extend_from_slice(b"{\"reason\":");
                write_json_str(&r.reason, &mut e);
                e.extend_from_slice(b",\"resource\":");
                write_json_str(&r.resource, &mut e);
                e.push(b'}');
            }
            e.push(b']');
            Some(e)
        }
        _ => None,
    };
    error_body(ty, msg, extra.as_deref())
}

/// Renders the JSON error body. Extra members (e.g. `Item`, `CancellationReasons`) are appended
/// by the caller through `extra`, already serialized as `"Name":value` pairs.
pub fn error_body(ty: &str, msg: &str, extra: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + msg.len());
    out.extend_from_slice(b"{\"__type\":");
    write_json_str(ty, &mut out);
    if !msg.is_empty() {
        out.extend_from_slice(b",\"message\":");
        write_json_str(msg, &mut out);
    }
    if let Some(e) = extra {
        out.push(b',');
        out.extend_from_slice(e);
    }
    out.push(b'}');
    out
}

fn write_json_str(s: &str, out: &mut Vec<u8>) {
    // serde_json's escaping is exact and fast; strings never fail to serialize.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Corrupt stored data is a 500 that says so; the detail (files, keyspaces) stays in the log.
    #[test]
    fn corruption_is_a_500_naming_it_without_its_detail() {
        let err = Error::Corrupt("storage: table file /data/keyspaces/3/tables/7".into());
        let (status, ty, message) = error_response_parts(&err);
        assert_eq!(status, 500);
        assert_eq!(ty, "com.amazonaws.dynamodb.v20120810#InternalServerError");
        assert_eq!(message, CORRUPTION_MESSAGE);
        assert!(message.contains("corrupt") && !message.contains("/data"));
        let (code, message, item) = batch_statement_error(&err);
        assert_eq!(
            (code, message.as_str(), item),
            (INTERNAL, CORRUPTION_MESSAGE, None)
        );
    }
}
