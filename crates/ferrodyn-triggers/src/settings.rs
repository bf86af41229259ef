//! A trigger's settings, with the names, ranges and defaults of Lambda's event source mappings
//! (CreateEventSourceMapping), and its target.
//!
//! Invariant: every `Settings` value that reaches a worker went through [`Settings::validate`];
//! a bad value is a `ValidationException` naming the member, never a panic.

use ferrodyn_eventfilter::Filters;
use ferrodyn_model::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `FunctionResponseTypes` value that turns on partial batch responses.
pub const REPORT_BATCH_ITEM_FAILURES: &str = "ReportBatchItemFailures";

/// Delivery settings (Lambda's names). Absent members take Lambda's defaults for DynamoDB.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Settings {
    /// Most records in one batch (1..=10000, default 100).
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Seconds to gather records before a batch that is not full is sent (0..=300).
    #[serde(default)]
    pub maximum_batching_window_in_seconds: u32,
    /// TRIM_HORIZON, LATEST or AT_TIMESTAMP (default LATEST, as the CLI of Lambda asks for one).
    #[serde(default = "default_starting_position")]
    pub starting_position: String,
    /// Epoch seconds, with AT_TIMESTAMP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_position_timestamp: Option<f64>,
    /// Concurrent batches per shard (1..=10); records of one item always share a lane.
    #[serde(default = "one")]
    pub parallelization_factor: u32,
    /// -1 (retry until the record expires) or 0..=10000.
    #[serde(default = "minus_one")]
    pub maximum_retry_attempts: i64,
    /// -1 (no limit) or 60..=604800.
    #[serde(default = "minus_one")]
    pub maximum_record_age_in_seconds: i64,
    /// On a failed batch, split it in two and retry the halves separately.
    #[serde(default)]
    pub bisect_batch_on_function_error: bool,
    /// `["ReportBatchItemFailures"]` or empty.
    #[serde(default)]
    pub function_response_types: Vec<String>,
    /// `{"Filters": [{"Pattern": "<json>"}]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_criteria: Option<Value>,
    /// `{"OnFailure": {"Destination": "<table name, table ARN or http(s) URL>"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_config: Option<DestinationConfig>,
    /// Whether the trigger delivers (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Ferrodyn: how long the target may take to answer one batch (1..=900 s, default 30;
    /// Lambda's function timeout). A timeout is a function error.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DestinationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OnFailure {
    pub destination: String,
}

/// Where failed records go.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureDestination {
    /// A Ferrodyn table (created on first use with partition key `id` (S)).
    Table(String),
    /// An HTTP(S) URL that receives a JSON POST per failed batch.
    Http(String),
}

/// Where a trigger delivers: an HTTP(S) URL, or a NATS JetStream subject.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

fn default_batch_size() -> u32 {
    100
}
fn default_starting_position() -> String {
    "LATEST".into()
}
fn one() -> u32 {
    1
}
fn minus_one() -> i64 {
    -1
}
fn yes() -> bool {
    true
}
fn default_timeout() -> u32 {
    30
}

fn invalid(member: &str, value: impl std::fmt::Display, constraint: &str) -> Error {
    Error::validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

fn range(member: &str, v: i64, lo: i64, hi: i64) -> Result<(), Error> {
    if v < lo {
        return Err(invalid(
            member,
            v,
            &format!("Member must have value greater than or equal to {lo}"),
        ));
    }
    if v > hi {
        return Err(invalid(
            member,
            v,
            &format!("Member must have value less than or equal to {hi}"),
        ));
    }
    Ok(())
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && reqwest::Url::parse(s).is_ok()
}

impl Settings {
    /// Settings from a JSON object of Lambda's members (absent members take their defaults).
    pub fn from_json(v: Value) -> Result<Settings, Error> {
        let s: Settings =
            serde_json::from_value(v).map_err(|e| Error::validation(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// The settings after an update: `changes` holds the members to replace. The starting
    /// position cannot change (Lambda's rule: it applies only to a new mapping).
    pub fn updated(&self, changes: &serde_json::Map<String, Value>) -> Result<Settings, Error> {
        for k in ["StartingPosition", "StartingPositionTimestamp"] {
            if changes.contains_key(k) {
                return Err(Error::validation(format!(
                    "{k} cannot be changed after a trigger is created"
                )));
            }
        }
        let mut base = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => return Err(Error::internal("settings do not serialize")),
        };
        for (k, v) in changes {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
        Settings::from_json(Value::Object(base))
    }

    /// Lambda's constraints, member by member.
    pub fn validate(&self) -> Result<(), Error> {
        range("BatchSize", self.batch_size.into(), 1, 10000)?;
        range(
            "MaximumBatchingWindowInSeconds",
            self.maximum_batching_window_in_seconds.into(),
            0,
            300,
        )?;
        match self.starting_position.as_str() {
            "TRIM_HORIZON" | "LATEST" => {
                if self.starting_position_timestamp.is_some() {
                    return Err(Error::validation(
                        "StartingPositionTimestamp is only allowed with StartingPosition AT_TIMESTAMP",
                    ));
                }
            }
            "AT_TIMESTAMP" => {
                if !self
                    .starting_position_timestamp
                    .is_some_and(|t| t.is_finite() && t >= 0.0)
                {
                    return Err(Error::validation(
                        "StartingPosition AT_TIMESTAMP requires StartingPositionTimestamp (epoch seconds)",
                    ));
                }
            }
            other => {
                return Err(invalid(
                    "StartingPosition",
                    other,
                    "Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
                ))
            }
        }
        range(
            "ParallelizationFactor",
            self.parallelization_factor.into(),
            1,
            10,
        )?;
        range(
            "MaximumRetryAttempts",
            self.maximum_retry_attempts,
            -1,
            10000,
        )?;
        let age = self.maximum_record_age_in_seconds;
        if age != -1 {
            range("MaximumRecordAgeInSeconds", age, 60, 604_800)?;
        }
        for t in &self.function_response_types {
            if t != REPORT_BATCH_ITEM_FAILURES {
                return Err(invalid(
                    "FunctionResponseTypes",
                    t,
                    "Member must satisfy enum value set: [ReportBatchItemFailures]",
                ));
            }
        }
        self.filters()?;
        if let Some(d) = self.failure_destination_raw() {
            if d.is_empty() {
                return Err(Error::validation(
                    "DestinationConfig.OnFailure.Destination must not be empty",
                ));
            }
        }
        self.failure_destination()?;
        range("TimeoutSeconds", self.timeout_seconds.into(), 1, 900)?;
        Ok(())
    }

    /// The parsed `FilterCriteria` (no patterns: every record passes).
    pub fn filters(&self) -> Result<Filters, Error> {
        match &self.filter_criteria {
            None => Ok(Filters::default()),
            Some(c) => Filters::from_criteria(c)
                .map_err(|e| Error::validation(format!("Invalid FilterCriteria: {e}"))),
        }
    }

    fn failure_destination_raw(&self) -> Option<&str> {
        self.destination_config
            .as_ref()
            .and_then(|d| d.on_failure.as_ref())
            .map(|o| o.destination.as_str())
    }

    /// The on-failure destination: an http(s) URL, a table ARN or a table name.
    pub fn failure_destination(&self) -> Result<Option<FailureDestination>, Error> {
        let Some(d) = self.failure_destination_raw() else {
            return Ok(None);
        };
        if d.starts_with("http://") || d.starts_with("https://") {
            if !is_http_url(d) {
                return Err(Error::validation(format!(
                    "Invalid OnFailure destination URL: {d}"
                )));
            }
            return Ok(Some(FailureDestination::Http(d.to_owned())));
        }
        let name = match d.split_once(":table/") {
            Some((prefix, name)) if prefix.starts_with("arn:") => name,
            _ => d,
        };
        let ok = (3..=255).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(Error::validation(format!(
                "Invalid OnFailure destination: {d} (a table name, a table ARN or an http(s) URL)"
            )));
        }
        Ok(Some(FailureDestination::Table(name.to_owned())))
    }

    pub fn reports_item_failures(&self) -> bool {
        self.function_response_types
            .iter()
            .any(|t| t == REPORT_BATCH_ITEM_FAILURES)
    }
}

impl TargetSpec {
    /// Exactly one target: `Url`, or `Nats` with `Subject`.
    pub fn validate(&self) -> Result<(), Error> {
        match (&self.url, &self.nats, &self.subject) {
            (Some(u), None, None) => {
                if is_http_url(u) {
                    Ok(())
                } else {
                    Err(Error::validation(format!(
                        "Target.Url must be an http:// or https:// URL, got {u:?}"
                    )))
                }
            }
            (None, Some(n), Some(s)) => {
                if !n.starts_with("nats://") && !n.starts_with("tls://") {
                    return Err(Error::validation(
                        "Target.Nats must be a nats:// or tls:// URL",
                    ));
                }
                let subject_ok = !s.is_empty()
                    && s.len() <= 255
                    && !s.starts_with('.')
                    && !s.ends_with('.')
                    && !s.contains("..")
                    && s.bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>');
                if subject_ok {
                    Ok(())
                } else {
                    Err(Error::validation(format!(
                        "Target.Subject {s:?} is not a valid NATS subject to publish to"
                    )))
                }
            }
            _ => Err(Error::validation(
                "Target must have either Url, or Nats and Subject",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "[ -~]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("BatchSize".to_string()),
                        Just("StartingPosition".to_string()),
                        Just("FilterCriteria".to_string()),
                        Just("Filters".to_string()),
                        Just("Pattern".to_string()),
                        Just("DestinationConfig".to_string()),
                        Just("OnFailure".to_string()),
                        Just("Destination".to_string()),
                        Just("MaximumRetryAttempts".to_string()),
                        "[A-Za-z]{1,8}",
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Any request members: settings or a validation error, never a panic; accepted
        /// settings validate again after a round trip through their stored form.
        #[test]
        fn any_members_give_settings_or_an_error(v in json_value()) {
            if let Ok(s) = Settings::from_json(v) {
                let stored = serde_json::to_value(&s).unwrap();
                proptest::prop_assert_eq!(Settings::from_json(stored).unwrap(), s);
            }
        }
    }

    #[test]
    fn defaults_are_lambdas() {
        let s = Settings::from_json(json!({})).unwrap();
        assert_eq!(s.batch_size, 100);
        assert_eq!(s.maximum_retry_attempts, -1);
        assert_eq!(s.maximum_record_age_in_seconds, -1);
        assert_eq!(s.parallelization_factor, 1);
        assert!(s.enabled);
    }

    #[test]
    fn ranges_are_checked() {
        for bad in [
            json!({"BatchSize": 0}),
            json!({"BatchSize": 10001}),
            json!({"MaximumBatchingWindowInSeconds": 301}),
            json!({"ParallelizationFactor": 11}),
            json!({"MaximumRetryAttempts": -2}),
            json!({"MaximumRetryAttempts": 10001}),
            json!({"MaximumRecordAgeInSeconds": 59}),
            json!({"MaximumRecordAgeInSeconds": 604801}),
            json!({"StartingPosition": "AT_SEQUENCE_NUMBER"}),
            json!({"StartingPosition": "AT_TIMESTAMP"}),
            json!({"FunctionResponseTypes": ["Other"]}),
            json!({"FilterCriteria": {"Filters": [{"Pattern": "{not json"}]}}),
            json!({"Unknown": 1}),
            json!({"BatchSize": "x"}),
            json!({"DestinationConfig": {"OnFailure": {"Destination": "a b"}}}),
            json!({"TimeoutSeconds": 0}),
        ] {
            assert!(Settings::from_json(bad.clone()).is_err(), "{bad}");
        }
        let s = Settings::from_json(json!({
            "MaximumRecordAgeInSeconds": -1, "MaximumRetryAttempts": 0,
            "StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1.5,
            "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:dynamodb:us-east-1:1:table/dlq"}}
        }))
        .unwrap();
        assert_eq!(
            s.failure_destination().unwrap(),
            Some(FailureDestination::Table("dlq".into()))
        );
    }

    #[test]
    fn updates_merge_and_keep_the_start() {
        let s = Settings::from_json(json!({"BatchSize": 5})).unwrap();
        let m = json!({"Enabled": false, "BatchSize": 7});
        let u = s.updated(m.as_object().unwrap()).unwrap();
        assert_eq!((u.batch_size, u.enabled), (7, false));
        let m = json!({"StartingPosition": "TRIM_HORIZON"});
        assert!(s.updated(m.as_object().unwrap()).is_err());
    }

    #[test]
    fn targets_are_one_of_two() {
        let t = |v: Value| serde_json::from_value::<TargetSpec>(v).unwrap().validate();
        assert!(t(json!({"Url": "http://127.0.0.1:9/x"})).is_ok());
        assert!(t(json!({"Nats": "nats://h:4222", "Subject": "orders.events"})).is_ok());
        assert!(t(json!({"Url": "ftp://x"})).is_err());
        assert!(t(json!({"Nats": "nats://h", "Subject": "a.*"})).is_err());
        assert!(t(json!({"Nats": "nats://h"})).is_err());
        assert!(t(json!({})).is_err());
    }
}
