//! A small HTTP receiver for trigger tests: a real TCP listener on a free loopback port that
//! answers each POST with whatever the test's handler decides (status, body, delay), and
//! keeps every batch it accepted or refused.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the receiver answers to one batch.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            status: 200,
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::ok()
        }
    }
    pub fn partial(seqs: &[&str]) -> Reply {
        let failures: Vec<Value> = seqs
            .iter()
            .map(|s| serde_json::json!({ "itemIdentifier": s }))
            .collect();
        Reply {
            body: serde_json::json!({ "batchItemFailures": failures }).to_string(),
            ..Reply::ok()
        }
    }
    /// An acknowledgement after `delay` (sent in time: the client waits longer).
    pub fn slow_ok(delay: Duration) -> Reply {
        Reply {
            delay,
            status: 200,
            body: String::new(),
        }
    }
    /// A reply after `delay`, too late for the trigger's timeout in the tests that use it.
    pub fn slow(delay: Duration) -> Reply {
        Reply {
            delay,
            ..Reply::ok()
        }
    }
}

type Handler = dyn Fn(&Value) -> Reply + Send + Sync;

/// Every POST the receiver got: the body, and whether it was acknowledged (2xx, in time).
#[derive(Clone)]
pub struct Received {
    pub body: Value,
    pub status: u16,
}

pub struct Receiver {
    pub url: String,
    pub log: Arc<Mutex<Vec<Received>>>,
    handler: Arc<Mutex<Arc<Handler>>>,
}

impl Receiver {
    pub fn start(handler: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Mutex<Arc<Handler>>> = Arc::new(Mutex::new(Arc::new(handler)));
        let (l, h) = (log.clone(), handler.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (l, h) = (l.clone(), h.clone());
                std::thread::spawn(move || serve(conn, &l, &h));
            }
        });
        Receiver { url, log, handler }
    }

    /// Replaces the handler.
    pub fn set(&self, handler: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    /// The records of every acknowledged batch, in arrival order.
    pub fn acknowledged(&self) -> Vec<Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.body["Records"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    pub fn posts(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `f` holds (panics after `secs`).
    pub fn wait_for(&self, secs: u64, what: &str, f: impl Fn(&Receiver) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Received>>, handler: &Mutex<Arc<Handler>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut conn = conn;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if first {
                first = false;
                continue;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let h = handler.lock().unwrap().clone();
        let reply = h(&v);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        let resp = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            reply.status,
            reply.body.len(),
            reply.body
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
        // A reply sent after the client gave up does not count as an acknowledgement; the
        // tests that let the trigger time out wait a second or more.
        let status = if reply.delay >= Duration::from_secs(1) {
            599
        } else {
            reply.status
        };
        log.lock().unwrap().push(Received { body: v, status });
    }
}

/// Calls an admin operation on a server without auth; (status, answer).
pub fn admin(url: &str, op: &str, body: Value) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let (status, text) = ferrodyn_testkit::call(
        &client,
        url,
        &format!("FerrodynAdmin_20261201.{op}"),
        body.to_string(),
    )
    .expect("admin request");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Calls a DynamoDB operation; (status, answer).
pub fn ddb(url: &str, op: &str, body: Value) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let (status, text) = ferrodyn_testkit::call(
        &client,
        url,
        &format!("DynamoDB_20120810.{op}"),
        body.to_string(),
    )
    .expect("request");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Creates table `name` (partition key `pk` (S)) with a NEW_AND_OLD_IMAGES stream.
pub fn stream_table(url: &str, name: &str) {
    let (s, v) = ddb(
        url,
        "CreateTable",
        serde_json::json!({
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        }),
    );
    assert_eq!(s, 200, "{v}");
}

/// The item key (`pk`) and the `v` attribute of a Lambda event record (`v` of the new image,
/// or of the old one for a REMOVE).
pub fn pk_v(r: &Value) -> (String, i64) {
    let d = &r["dynamodb"];
    let pk = d["Keys"]["pk"]["S"].as_str().unwrap_or_default().to_owned();
    let img = if d["NewImage"].is_object() {
        &d["NewImage"]
    } else {
        &d["OldImage"]
    };
    let v = img["v"]["N"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1);
    (pk, v)
}
