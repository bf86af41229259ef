//! Targets: where a trigger's batches go. A target is anything implementing [`Target`]: it is
//! handed one batch (records of one shard, in sequence order) and answers with an [`Outcome`].
//!
//! Invariant: a target returns only once it knows: `Delivered` means the whole batch was
//! acknowledged (the checkpoint may move past it); anything else is a function error.

use std::time::Duration;

use ferrodyn_natsout::NatsPublisher;
use serde_json::Value;

use crate::event::{batch_body, Event};

/// What a target made of one batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every record was acknowledged.
    Delivered,
    /// The records before the first of these sequence numbers were acknowledged, the rest
    /// must be retried (a partial batch response, or a publish that stopped midway).
    Partial(Vec<String>),
    /// Nothing was acknowledged; the error, as the trigger reports it.
    Failed(String),
}

/// A destination for batches of stream records.
pub trait Target: Send + Sync {
    fn deliver(&self, batch: &[Event]) -> Outcome;
}

/// HTTP(S) POST of Lambda's DynamoDB event (`{"Records": [...]}`). A 2xx answer acknowledges
/// the batch; with partial batch responses on, a 2xx body with `batchItemFailures` names the
/// records to retry. Any other status, a transport error or a timeout is a function error.
pub struct HttpTarget {
    client: reqwest::blocking::Client,
    url: String,
    partial: bool,
}

impl HttpTarget {
    pub fn new(url: &str, timeout: Duration, partial: bool) -> Result<HttpTarget, String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpTarget {
            client,
            url: url.to_owned(),
            partial,
        })
    }

    /// POSTs a JSON body; Ok(body) on 2xx.
    pub fn post(&self, body: Vec<u8>) -> Result<Vec<u8>, String> {
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .map_err(|e| {
                // Without the URL: it may hold credentials, and errors reach the log.
                let e = e.without_url();
                if e.is_timeout() {
                    "Task timed out: the target did not answer in time".to_owned()
                } else {
                    format!("cannot reach the target: {e}")
                }
            })?;
        let status = resp.status();
        let body = resp.bytes().map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                "Task timed out: the target did not answer in time".to_owned()
            } else {
                format!("reading the target's answer: {e}")
            }
        })?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(format!("the target answered {status}: {text}"));
        }
        Ok(body.to_vec())
    }
}

/// Lambda's reading of a partial batch response: `None` means the whole batch succeeded,
/// `Some(ids)` the identifiers to retry; an unusable response fails the whole batch
/// (`Some` of every record).
pub fn partial_failures(body: &[u8], batch: &[Event]) -> Option<Vec<String>> {
    let all = || Some(batch.iter().map(|e| e.seq.clone()).collect());
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        // Lambda treats a response it cannot parse as success.
        return None;
    };
    let failures = match v.get("batchItemFailures") {
        None | Some(Value::Null) => return None,
        Some(Value::Array(a)) => a,
        Some(_) => return all(),
    };
    if failures.is_empty() {
        return None;
    }
    let mut ids = Vec::new();
    for f in failures {
        match f.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if batch.iter().any(|e| e.seq == id) => ids.push(id.to_owned()),
            // A null, empty or unknown identifier fails the whole batch.
            _ => return all(),
        }
    }
    Some(ids)
}

impl Target for HttpTarget {
    fn deliver(&self, batch: &[Event]) -> Outcome {
        match self.post(batch_body(batch)) {
            Err(e) => Outcome::Failed(e),
            Ok(body) if self.partial => match partial_failures(&body, batch) {
                None => Outcome::Delivered,
                Some(ids) => Outcome::Partial(ids),
            },
            Ok(_) => Outcome::Delivered,
        }
    }
}

/// NATS JetStream: one message per record (the Lambda event record as JSON), with headers
/// `Ferrodyn-Table`, `Ferrodyn-Event-Name`, `Ferrodyn-Sequence-Number`, and `Nats-Msg-Id` =
/// `<stream ARN>/<sequence number>`, so JetStream drops a redelivery inside its duplicate window.
pub struct NatsTarget {
    publisher: NatsPublisher,
    subject: String,
    table: String,
}

/// The de-duplication id of a record.
pub fn nats_msg_id(stream_arn: &str, seq: &str) -> String {
    format!("{stream_arn}/{seq}")
}

impl NatsTarget {
    pub fn connect(
        url: &str,
        subject: &str,
        table: &str,
        timeout: Duration,
    ) -> Result<NatsTarget, String> {
        let publisher = NatsPublisher::connect(url, timeout).map_err(|e| e.to_string())?;
        let stream: String = subject
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if let Err(e) = publisher.ensure_stream(&format!("FERRODYN_{stream}"), &[subject]) {
            // A stream of the operator's may already capture the subject.
            tracing::debug!(error = %e, subject, "no JetStream stream created for the subject");
        }
        Ok(NatsTarget {
            publisher,
            subject: subject.to_owned(),
            table: table.to_owned(),
        })
    }
}

impl Target for NatsTarget {
    fn deliver(&self, batch: &[Event]) -> Outcome {
        for e in batch {
            let arn = e.json["eventSourceARN"].as_str().unwrap_or_default();
            let payload = serde_json::to_vec(&e.json).unwrap_or_default();
            let headers = [
                ("Ferrodyn-Table", self.table.as_str()),
                ("Ferrodyn-Event-Name", e.event_name),
                ("Ferrodyn-Sequence-Number", e.seq.as_str()),
            ];
            if let Err(err) =
                self.publisher
                    .publish(&self.subject, &headers, &payload, &nats_msg_id(arn, &e.seq))
            {
                tracing::debug!(error = %err, "NATS publish failed");
                let rest = vec![e.seq.clone()];
                return if std::ptr::eq(e, &batch[0]) {
                    Outcome::Failed(format!("NATS publish: {err}"))
                } else {
                    Outcome::Partial(rest)
                };
            }
        }
        Outcome::Delivered
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_never_carry_the_urls_credentials() {
        // A closed port: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = HttpTarget::new(
            &format!("http://hook:s3cr3t-pw@127.0.0.1:{port}/path"),
            Duration::from_secs(2),
            false,
        )
        .unwrap();
        let err = t.post(b"{}".to_vec()).unwrap_err();
        assert!(err.starts_with("cannot reach the target"), "{err}");
        assert!(!err.contains("s3cr3t-pw"), "{err}");
    }

    use super::*;
    use serde_json::json;

    fn ev(seq: &str) -> Event {
        Event {
            seq: seq.into(),
            created: 0.0,
            event_name: "INSERT",
            key_text: String::new(),
            json: json!({}),
        }
    }

    proptest::proptest! {
        /// Any answer body: no panic, and the records to retry are records of the batch.
        #[test]
        fn partial_responses_never_name_foreign_records(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                                                       ids in proptest::collection::vec("[0-9]{1,3}", 0..4)) {
            let batch = [ev("1"), ev("2"), ev("3")];
            let _ = partial_failures(&body, &batch);
            let failures: Vec<serde_json::Value> =
                ids.iter().map(|i| json!({"itemIdentifier": i})).collect();
            let text = json!({"batchItemFailures": failures}).to_string();
            if let Some(got) = partial_failures(text.as_bytes(), &batch) {
                proptest::prop_assert!(!got.is_empty());
                proptest::prop_assert!(got.iter().all(|g| batch.iter().any(|e| &e.seq == g)));
            }
        }
    }

    #[test]
    fn partial_responses_read_as_lambda_reads_them() {
        let batch = [ev("1"), ev("2"), ev("3")];
        let all = Some(vec!["1".to_string(), "2".into(), "3".into()]);
        assert_eq!(partial_failures(b"", &batch), None);
        assert_eq!(partial_failures(b"{}", &batch), None);
        assert_eq!(
            partial_failures(br#"{"batchItemFailures":[]}"#, &batch),
            None
        );
        assert_eq!(
            partial_failures(br#"{"batchItemFailures":[{"itemIdentifier":"2"}]}"#, &batch),
            Some(vec!["2".to_string()])
        );
        assert_eq!(
            partial_failures(br#"{"batchItemFailures":[{"itemIdentifier":"9"}]}"#, &batch),
            all
        );
        assert_eq!(
            partial_failures(
                br#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
                &batch
            ),
            all
        );
        assert_eq!(partial_failures(br#"{"batchItemFailures":3}"#, &batch), all);
    }
}
