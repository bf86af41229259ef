//! Resource-based policies of tables and streams: PutResourcePolicy, GetResourcePolicy,
//! DeleteResourcePolicy, and the lookup authorization makes on every request.
//!
//! The engine stores documents and revision ids; it never interprets a policy (the server
//! checks the grammar before storing and evaluates documents with `ferrodyn-auth`).
//!
//! Invariants: a table's policies live in its catalog record (`TableDef::resource_policies`),
//! so they change atomically with it and vanish with the table; a stream's policy applies to
//! that stream ARN only (a stream re-enabled under a new label starts without one); revision
//! ids of one resource only grow.

use std::sync::Arc;

use ferrodyn_model::Error;
use serde::{Deserialize, Serialize};

use crate::{Engine, Table};

/// DynamoDB's size limit of a resource-based policy document.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    /// The table ARN or a stream ARN of the table.
    pub arn: String,
    pub document: String,
    pub revision_id: String,
}

fn not_found(arn: &str) -> Error {
    Error::PolicyNotFound(format!(
        "Resource-based policy not found for the provided ResourceArn: {arn}"
    ))
}

fn revision_after(previous: Option<&str>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let prev = previous.and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
    now.max(prev + 1).to_string()
}

impl Engine {
    /// The table an ARN names (`table/NAME` or `table/NAME/stream/LABEL`, the stream being the
    /// table's current one).
    fn policy_target(&self, arn: &str) -> Result<Arc<Table>, Error> {
        let invalid = || Error::validation(format!("Invalid ResourceArn provided as input {arn}"));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "dynamodb" {
            return Err(invalid());
        }
        let resource = parts[5].strip_prefix("table/").ok_or_else(invalid)?;
        let (name, stream) = match resource.split_once('/') {
            None => (resource, None),
            Some((name, rest)) => (
                name,
                Some(rest.strip_prefix("stream/").ok_or_else(invalid)?),
            ),
        };
        if name.is_empty() || stream.is_some_and(|s| s.is_empty() || s.contains('/')) {
            return Err(invalid());
        }
        let missing = || {
            Error::ResourceNotFound(format!(
                "Requested resource not found: ResourceArn: {arn} not found"
            ))
        };
        if parts[3] != self.config.region || parts[4] != self.config.account {
            return Err(missing());
        }
        let table = self.tables.read().get(name).cloned().ok_or_else(missing)?;
        if let Some(label) = stream {
            if table.def.stream_label.as_deref() != Some(label) {
                return Err(missing());
            }
        }
        Ok(table)
    }

    /// Attaches (or replaces) the policy of a table or stream; returns its new revision id.
    /// With `expected_revision`, replaces only that revision (none attached: PolicyNotFound).
    pub fn put_resource_policy(
        &self,
        arn: &str,
        document: String,
        expected_revision: Option<&str>,
    ) -> Result<String, Error> {
        if document.len() > MAX_POLICY_BYTES {
            return Err(Error::validation(format!(
                "Resource-based policy document exceeds the maximum allowed size of {} KB",
                MAX_POLICY_BYTES / 1024
            )));
        }
        let _ddl = self.ddl.lock()?;
        let table = self.policy_target(arn)?;
        let mut def = table.def.clone();
        let current = def.resource_policies.iter().position(|p| p.arn == arn);
        if let Some(expected) = expected_revision {
            let matches = current.is_some_and(|i| def.resource_policies[i].revision_id == expected);
            if !matches {
                return Err(not_found(arn));
            }
        }
        let revision_id =
            revision_after(current.map(|i| def.resource_policies[i].revision_id.as_str()));
        let stored = StoredPolicy {
            arn: arn.to_owned(),
            document,
            revision_id: revision_id.clone(),
        };
        match current {
            Some(i) => def.resource_policies[i] = stored,
            None => def.resource_policies.push(stored),
        }
        self.replace_def(&table, def, "PutResourcePolicy")?;
        Ok(revision_id)
    }

    pub fn get_resource_policy(&self, arn: &str) -> Result<StoredPolicy, Error> {
        let table = self.policy_target(arn)?;
        let found = table.def.resource_policies.iter().find(|p| p.arn == arn);
        found.cloned().ok_or_else(|| not_found(arn))
    }

    /// Removes the policy; returns the revision id it had.
    pub fn delete_resource_policy(
        &self,
        arn: &str,
        expected_revision: Option<&str>,
    ) -> Result<String, Error> {
        let _ddl = self.ddl.lock()?;
        let table = self.policy_target(arn)?;
        let mut def = table.def.clone();
        let i = def
            .resource_policies
            .iter()
            .position(|p| p.arn == arn)
            .ok_or_else(|| not_found(arn))?;
        if expected_revision.is_some_and(|e| e != def.resource_policies[i].revision_id) {
            return Err(not_found(arn));
        }
        let removed = def.resource_policies.remove(i);
        self.replace_def(&table, def, "DeleteResourcePolicy")?;
        Ok(removed.revision_id)
    }

    /// The policy attached to exactly this table or stream ARN, if any (authorization's
    /// lookup: one map read, no storage access).
    /// The generation of the table definitions, resource policies included: it changes after
    /// every catalog change. Read it before [`Engine::resource_policy`]: a decision made with
    /// the policy then read is current as long as the generation is.
    pub fn policy_generation(&self) -> u64 {
        self.tables.generation()
    }

    pub fn resource_policy(&self, arn: &str) -> Option<StoredPolicy> {
        let rest = arn.rsplit_once(":table/")?.1;
        let name = rest.split('/').next()?;
        let tables = self.tables.read();
        let def = &tables.get(name)?.def;
        def.resource_policies.iter().find(|p| p.arn == arn).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;
    use ferrodyn_storage::MemoryStorage;

    fn engine_with_table() -> (Engine, String) {
        let e = Engine::open(Arc::new(MemoryStorage::new()), EngineConfig::default()).unwrap();
        crate::create_hash_table(&e, "T");
        (e, "arn:aws:dynamodb:us-east-1:000000000000:table/T".into())
    }

    #[test]
    fn put_get_replace_delete() {
        let (e, arn) = engine_with_table();
        assert!(matches!(
            e.get_resource_policy(&arn),
            Err(Error::PolicyNotFound(_))
        ));
        let r1 = e
            .put_resource_policy(&arn, "{\"a\":1}".into(), None)
            .unwrap();
        let got = e.get_resource_policy(&arn).unwrap();
        assert_eq!(
            (got.document.as_str(), got.revision_id.as_str()),
            ("{\"a\":1}", r1.as_str())
        );
        assert_eq!(e.resource_policy(&arn).unwrap().revision_id, r1);
        assert!(matches!(
            e.put_resource_policy(&arn, "{}".into(), Some("nope")),
            Err(Error::PolicyNotFound(_))
        ));
        let r2 = e.put_resource_policy(&arn, "{}".into(), Some(&r1)).unwrap();
        assert!(r2.parse::<u64>().unwrap() > r1.parse::<u64>().unwrap());
        assert!(e.delete_resource_policy(&arn, Some(&r1)).is_err());
        assert_eq!(e.delete_resource_policy(&arn, None).unwrap(), r2);
        assert!(e.resource_policy(&arn).is_none());
        assert!(matches!(
            e.delete_resource_policy(&arn, None),
            Err(Error::PolicyNotFound(_))
        ));
    }

    #[test]
    fn unknown_resources_and_bad_arns() {
        let (e, _) = engine_with_table();
        for arn in [
            "arn:aws:dynamodb:us-east-1:000000000000:table/Nope",
            "arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/2020",
            "arn:aws:dynamodb:eu-west-1:000000000000:table/T",
        ] {
            assert!(
                matches!(
                    e.put_resource_policy(arn, "{}".into(), None),
                    Err(Error::ResourceNotFound(_))
                ),
                "{arn}"
            );
        }
        for arn in [
            "table/T",
            "arn:aws:s3:us-east-1:000000000000:table/T",
            "arn:aws:dynamodb:us-east-1:000000000000:table/T/index/G",
        ] {
            assert!(
                matches!(e.get_resource_policy(arn), Err(Error::Validation(_))),
                "{arn}"
            );
        }
        let big = "x".repeat(MAX_POLICY_BYTES + 1);
        assert!(matches!(
            e.put_resource_policy("arn:aws:dynamodb:us-east-1:000000000000:table/T", big, None),
            Err(Error::Validation(_))
        ));
    }
}
