//! Tags on tables: TagResource, UntagResource, ListTagsOfResource.
//!
//! Invariant: tags live in the table's catalog record, so they change atomically with it and are
//! dropped with the table.

use std::sync::Arc;

use ferrodyn_model::Error;

use crate::{Engine, Table};

pub const MAX_TAGS: usize = 50;

fn valid_tag_text(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// Checks tags given to CreateTable or TagResource: allowed characters and the count limit.
pub fn validate_tags(tags: &[(String, String)]) -> Result<(), Error> {
    if tags.len() > MAX_TAGS {
        return Err(Error::validation(
            "One or more parameter values were invalid: The number of tags exceeds the limit of 50",
        ));
    }
    for (k, v) in tags {
        if !valid_tag_text(k) || !valid_tag_text(v) {
            return Err(Error::validation(
                "One or more parameter values were invalid: Illegal characters in tag key or value",
            ));
        }
    }
    Ok(())
}

impl Engine {
    /// Resolves a table ARN (`arn:aws:dynamodb:<region>:<account>:table/<name>`).
    fn table_by_arn(&self, arn: &str) -> Result<Arc<Table>, Error> {
        if !arn.starts_with("arn:") {
            return Err(Error::validation(format!("Invalid TableArn: Invalid ResourceArn provided as input {arn}: ARNs must start with 'arn:'")));
        }
        let invalid = || Error::validation(format!("Invalid ResourceArn provided as input {arn}"));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[2] != "dynamodb" {
            return Err(invalid());
        }
        let resource = parts[5];
        let name = resource.strip_prefix("table/").ok_or_else(invalid)?;
        if name.is_empty() || name.contains('/') {
            return Err(invalid());
        }
        if parts[3] != self.config.region || parts[4] != self.config.account {
            // Another account's (or region's) resource: AWS does not reveal whether it exists.
            return Err(Error::AccessDenied(format!(
                "User: arn:aws:iam::{}:root is not authorized to perform this operation on resource: {arn}",
                self.config.account
            )));
        }
        let table = self.tables.read().get(name).cloned().ok_or_else(|| {
            Error::ResourceNotFound(format!(
                "Requested resource not found: ResourcArn: {arn} not found"
            ))
        })?;
        Ok(table)
    }

    pub fn tag_resource(&self, arn: &str, tags: Vec<(String, String)>) -> Result<(), Error> {
        if tags.is_empty() {
            return Err(Error::validation("1 validation error detected: Value '[]' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1"));
        }
        validate_tags(&tags)?;
        self.tag_resource_checked(arn, tags)
    }

    fn tag_resource_checked(&self, arn: &str, tags: Vec<(String, String)>) -> Result<(), Error> {
        for (k, v) in &tags {
            if !valid_tag_text(k) || !valid_tag_text(v) {
                return Err(Error::validation(
                    "One or more parameter values were invalid: Illegal characters in tag key or value",
                ));
            }
        }
        let _ddl = self.ddl.lock()?;
        let table = self.table_by_arn(arn)?;
        let mut def = table.def.clone();
        for (k, v) in tags {
            match def.tags.iter_mut().find(|(x, _)| *x == k) {
                Some(slot) => slot.1 = v,
                None => def.tags.push((k, v)),
            }
        }
        if def.tags.len() > MAX_TAGS {
            return Err(Error::validation("One or more parameter values were invalid: The number of tags exceeds the limit of 50"));
        }
        self.replace_def(&table, def, "TagResource").map(drop)
    }

    pub fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), Error> {
        let _ddl = self.ddl.lock()?;
        let table = self.table_by_arn(arn)?;
        let mut def = table.def.clone();
        def.tags.retain(|(k, _)| !keys.contains(k));
        self.replace_def(&table, def, "UntagResource").map(drop)
    }

    pub fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>, Error> {
        Ok(self.table_by_arn(arn)?.def.tags.clone())
    }

    pub(crate) fn replace_def(
        &self,
        table: &Table,
        def: crate::TableDef,
        operation: &str,
    ) -> Result<Arc<Table>, Error> {
        self.persist_def(&def, operation)?;
        let new = Arc::new(Table {
            def,
            counters: table.counters.clone(),
        });
        let replaced = self
            .tables
            .write()
            .insert(new.def.name.clone(), new.clone());
        Ok(replaced.unwrap_or(new))
    }
}
