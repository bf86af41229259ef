//! Triggers on shared storage: two `ferrodyn serve --storage` nodes on one real PostgreSQL.
//! A trigger created through one node delivers the changes written through both, once each
//! (only the node holding the background lease runs it) and in order per item; after that
//! node is killed, the other takes the lease over and delivery goes on.

mod common;
mod trigger_support;

use std::collections::HashMap;
use std::time::Duration;

use common::Cluster;
use serde_json::json;
use trigger_support::{admin, ddb, pk_v, stream_table, Receiver, Reply};

fn put(url: &str, pk: &str, v: i64) {
    let (status, a) = ddb(
        url,
        "PutItem",
        json!({"TableName": "shared", "Item": {"pk": {"S": pk}, "v": {"N": v.to_string()}}}),
    );
    assert_eq!(status, 200, "{a}");
}

#[test]
fn one_node_delivers_and_another_takes_over() {
    let mut cluster = Cluster::start(2);
    let (a, b) = (cluster.nodes[0].url.clone(), cluster.nodes[1].url.clone());
    let rx = Receiver::start(|_| Reply::ok());
    stream_table(&a, "shared");
    let (status, v) = admin(
        &b,
        "CreateTrigger",
        json!({"TableName": "shared", "Target": {"Url": rx.url}, "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 20}),
    );
    assert_eq!(status, 200, "{v}");
    let id = v["TriggerId"].as_str().unwrap().to_owned();
    for v in 1..=10 {
        for item in 0..10 {
            let url = if item % 2 == 0 { &a } else { &b };
            put(url, &format!("i{item}"), v);
        }
    }
    rx.wait_for(60, "100 records", |r| r.acknowledged().len() >= 100);
    std::thread::sleep(Duration::from_millis(500));
    let recs = rx.acknowledged();
    assert_eq!(recs.len(), 100, "each change once: one node delivers");
    let mut per: HashMap<String, Vec<i64>> = HashMap::new();
    for r in &recs {
        let (pk, v) = pk_v(r);
        per.entry(pk).or_default().push(v);
    }
    for (pk, vs) in &per {
        assert_eq!(vs, &(1..=10).collect::<Vec<_>>(), "{pk}");
    }
    // Counters are per process: the node that delivered is the lease holder.
    let delivered = |url: &str| {
        let (status, d) = admin(url, "DescribeTrigger", json!({"TriggerId": id}));
        assert_eq!(status, 200, "{d}");
        assert_eq!(d["LagRecords"], 0);
        d["Delivered"].as_u64().unwrap()
    };
    let (da, db) = (delivered(&a), delivered(&b));
    assert_eq!(da + db, 100, "one node delivered everything: {da} + {db}");
    let (leader, survivor) = if da == 100 { (0, b) } else { (1, a) };

    // Kill the node running the trigger: the survivor takes the lease over once it expires
    // and delivers what follows, after the dead node's last checkpoint.
    cluster.nodes[leader].kill9();
    for item in 0..10 {
        put(&survivor, &format!("i{item}"), 11);
    }
    rx.wait_for(60, "the records written after the crash", |r| {
        r.acknowledged().iter().filter(|x| pk_v(x).1 == 11).count() >= 10
    });
    let (_, d) = admin(&survivor, "DescribeTrigger", json!({"TriggerId": id}));
    assert!(d["Delivered"].as_u64().unwrap() >= 10, "{d}");
}
