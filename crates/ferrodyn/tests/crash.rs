//! Crash safety: kill -9 the real server binary during concurrent durable writes, restart it on
//! the same directory, and check that every acknowledged write is present.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Kills the server process when dropped, so a failing assertion never leaves it running.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrodyn"))
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir)
        .env("FERRODYN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferrodyn");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listen line")
        .to_string();
    (Server(child), url)
}

fn call(
    client: &reqwest::blocking::Client,
    url: &str,
    op: &str,
    body: String,
) -> Result<(u16, String), reqwest::Error> {
    let r = client
        .post(url)
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
        .body(body)
        .send()?;
    let status = r.status().as_u16();
    Ok((status, r.text()?))
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start(dir.path());
    let client = reqwest::blocking::Client::new();
    let (st, body) = call(
        &client,
        &url,
        "CreateTable",
        r#"{"TableName":"crash","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#.into(),
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");

    let acked = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let deadline = Instant::now() + Duration::from_millis(1500);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let acked = acked.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut i = 0u64;
                while Instant::now() < deadline + Duration::from_secs(5) {
                    let key = format!("w{w}-{i}");
                    let body = format!(r#"{{"TableName":"crash","Item":{{"pk":{{"S":"{key}"}},"v":{{"N":"{i}"}}}}}}"#);
                    match call(&client, &url, "PutItem", body) {
                        Ok((200, _)) => acked.lock().unwrap().push((key, i)),
                        _ => break, // server killed
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(deadline - Instant::now());
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "too few writes acknowledged: {}",
        acked.len()
    );

    let (_child, url) = start(dir.path());
    for (key, v) in &acked {
        let (st, body) = call(
            &client,
            &url,
            "GetItem",
            format!(
                r#"{{"TableName":"crash","Key":{{"pk":{{"S":"{key}"}}}},"ConsistentRead":true}}"#
            ),
        )
        .unwrap();
        assert_eq!(st, 200, "{body}");
        let j: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            j["Item"]["v"]["N"],
            v.to_string(),
            "acknowledged write {key} lost"
        );
    }
}
