//! Bulk reads and writes through the data plane: a parallel Scan feeding a channel of pages,
//! and BatchWriteItem with retries of UnprocessedItems and exponential back-off on throttling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use tokio::sync::{mpsc, Mutex};

use crate::conn::{api_error, error_code};
use crate::{DataError, Result};

pub type Item = HashMap<String, AttributeValue>;

/// Throttling and transient errors that a bulk writer waits out rather than failing on.
const RETRYABLE: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
];

/// Attempts of one batch before the command fails (about two minutes of back-off in all).
const MAX_ATTEMPTS: u32 = 16;

/// Approximate stored size of an item as DynamoDB counts it (names plus values).
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(k, v)| k.len() as u64 + value_size(v))
        .sum()
}

fn value_size(v: &AttributeValue) -> u64 {
    match v {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => (n.len() as u64).div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| (n.len() as u64).div_ceil(2) + 1).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len() as u64).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() as u64 + value_size(v))
                .sum::<u64>()
        }
        _ => 0,
    }
}

/// Back-off before attempt `attempt` (1-based): 50 ms doubling to at most 10 s, with jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(12)).min(10_000);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()))
        % (base / 2 + 1);
    Duration::from_millis(base / 2 + jitter)
}

/// An item the endpoint refused to store, with its position in the batch given to
/// [`write_items`].
#[derive(Debug)]
pub struct Rejected {
    pub index: usize,
    pub error: DataError,
}

/// Writes `items` to `table` with BatchWriteItem, 25 at a time. UnprocessedItems are retried
/// with exponential back-off, as are throttling errors. When a batch is refused as a whole with
/// a ValidationException (a bad item, or two items with one key), its items are written one by
/// one with PutItem so that only the bad ones are left out: those are returned, every other
/// item has been written.
pub async fn write_items(client: &Client, table: &str, items: Vec<Item>) -> Result<Vec<Rejected>> {
    let mut rejected = Vec::new();
    let mut offset = 0;
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<Item> = items.by_ref().take(25).collect();
        let n = chunk.len();
        if let Err(e) = write_chunk(client, table, chunk.clone()).await {
            if !matches!(&e, DataError::Api { code, .. } if code == "ValidationException") {
                return Err(e);
            }
            for (i, item) in chunk.into_iter().enumerate() {
                if let Err(error) = put_one(client, table, item).await {
                    if !matches!(&error, DataError::Api { code, .. } if code == "ValidationException")
                    {
                        return Err(error);
                    }
                    rejected.push(Rejected {
                        index: offset + i,
                        error,
                    });
                }
            }
        }
        offset += n;
    }
    Ok(rejected)
}

async fn put_one(client: &Client, table: &str, item: Item) -> Result<()> {
    let mut attempt = 0;
    loop {
        match client
            .put_item()
            .table_name(table)
            .set_item(Some(item.clone()))
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if error_code(&e).is_some_and(|c| RETRYABLE.contains(&c)) => {
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    return Err(api_error("PutItem", e));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(api_error("PutItem", e)),
        }
    }
}

async fn write_chunk(client: &Client, table: &str, chunk: Vec<Item>) -> Result<()> {
    let mut pending: Vec<WriteRequest> = chunk
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build())
                .map_err(|e| DataError::Failed(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let mut attempt = 0;
    while !pending.is_empty() {
        match client
            .batch_write_item()
            .request_items(table, pending.clone())
            .send()
            .await
        {
            Ok(out) => {
                let unprocessed = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(table))
                    .unwrap_or_default();
                if unprocessed.is_empty() {
                    return Ok(());
                }
                // Progress resets the count: only a batch that makes no headway fails.
                if unprocessed.len() < pending.len() {
                    attempt = 0;
                }
                pending = unprocessed;
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    return Err(DataError::Failed(format!(
                        "BatchWriteItem: {} items still unprocessed after {MAX_ATTEMPTS} attempts",
                        pending.len()
                    )));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) if error_code(&e).is_some_and(|c| RETRYABLE.contains(&c)) => {
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    return Err(api_error("BatchWriteItem", e));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(api_error("BatchWriteItem", e)),
        }
    }
    Ok(())
}

/// Pages of a parallel Scan, shared by any number of consumers.
pub type Pages = Arc<Mutex<mpsc::Receiver<Result<Vec<Item>>>>>;

/// Starts a parallel Scan of `table` in `segments` segments; its pages (or the first error)
/// arrive on the returned channel, which closes when every segment is done.
pub fn parallel_scan(client: &Client, table: &str, segments: i32) -> Pages {
    let (tx, rx) = mpsc::channel(segments.max(1) as usize * 2);
    for segment in 0..segments {
        let client = client.clone();
        let table = table.to_owned();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut start = None;
            loop {
                let page = client
                    .scan()
                    .table_name(&table)
                    .segment(segment)
                    .total_segments(segments)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await;
                match page {
                    Ok(out) => {
                        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
                        let items = out.items.unwrap_or_default();
                        if !items.is_empty() && tx.send(Ok(items)).await.is_err() {
                            return;
                        }
                        match next {
                            Some(k) => start = Some(k),
                            None => return,
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(api_error("Scan", e))).await;
                        return;
                    }
                }
            }
        });
    }
    Arc::new(Mutex::new(rx))
}

/// The next page for a consumer of [`parallel_scan`]; None when the scan is complete.
pub async fn next_page(pages: &Pages) -> Option<Result<Vec<Item>>> {
    pages.lock().await.recv().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_millis(100));
        assert!(backoff(20) <= Duration::from_secs(10));
        assert!(backoff(20) >= Duration::from_secs(5));
    }

    #[test]
    fn sizes() {
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S("abc".into()));
        item.insert("n".into(), AttributeValue::N("12".into()));
        assert_eq!(item_size(&item), 2 + 3 + 1 + 2);
    }
}
