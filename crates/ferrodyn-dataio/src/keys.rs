//! S3 keys as paths under a bucket directory.
//!
//! Invariant: a key maps to a path inside the bucket directory or is rejected: no absolute
//! keys, no `.` or `..` segments, no empty segments, no backslashes or NUL bytes.

use std::path::{Path, PathBuf};

use crate::error::SourceError;

/// Suffix of files being written; readers never list them.
pub const TEMP_SUFFIX: &str = ".ferrodyn-tmp";

/// Checks that `key` names a file inside the bucket, and returns its path.
pub(crate) fn key_path(bucket_dir: &Path, key: &str) -> Result<PathBuf, SourceError> {
    let mut path = bucket_dir.to_path_buf();
    if key.is_empty() {
        return Err(SourceError::InvalidArgument(
            "An S3 key may not be empty".into(),
        ));
    }
    for segment in key.split('/') {
        check_segment(segment, key)?;
        path.push(segment);
    }
    Ok(path)
}

fn check_segment(segment: &str, whole: &str) -> Result<(), SourceError> {
    if segment.is_empty()
        || segment == "."
        || segment == ".."
        || segment.contains('\\')
        || segment.contains('\0')
    {
        return Err(SourceError::InvalidArgument(format!(
            "The S3 key or prefix {whole:?} cannot name a file in the bucket directory"
        )));
    }
    Ok(())
}

/// A prefix without leading or trailing `/`, checked like a key ("" stays "").
pub(crate) fn normalize_prefix(prefix: &str) -> Result<String, SourceError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        check_segment(segment, prefix)?;
    }
    Ok(trimmed.to_string())
}

/// `a` + `/` + `b`, leaving out an empty `a`.
pub(crate) fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_bucket() {
        let root = Path::new("/b");
        assert_eq!(
            key_path(root, "a/b.json").unwrap(),
            Path::new("/b/a/b.json")
        );
        for bad in ["", "/a", "a//b", "../x", "a/./b", "a\\b", "a/"] {
            assert!(key_path(root, bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_prefix("/x/y/").unwrap(), "x/y");
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert!(normalize_prefix("x/../y").is_err());
        assert_eq!(join("", "k"), "k");
        assert_eq!(join("p", "k"), "p/k");
    }
}
