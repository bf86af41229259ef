//! Crash consistency of the fjall engine under SIGKILL.
//!
//! The parent re-executes this test binary, selecting `crash_child` with `FERRODYN_CRASH_DIR`
//! set. The child runs concurrent `Sync` writers; each batch writes the same key to keyspaces
//! `a` and `b` (value in `b` derived from the one in `a`) and prints `ACK <key> <value>` once
//! `write` returned. The parent kills the child with SIGKILL, reopens the directory and checks
//! that every acknowledged batch is present and that no batch is visible in only one keyspace.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::Bound::Unbounded;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrodyn_storage::{Durability, FjallStorage, Storage, WriteBatch};

const DIR_ENV: &str = "FERRODYN_CRASH_DIR";
const ROUND_ENV: &str = "FERRODYN_CRASH_ROUND";

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return; // only meaningful when spawned by `crash_consistency`
    };
    let round = std::env::var(ROUND_ENV).unwrap_or_default();
    let s = FjallStorage::open(std::path::Path::new(&dir)).unwrap();
    s.create_keyspace("a").unwrap();
    s.create_keyspace("b").unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = &s;
            let round = &round;
            scope.spawn(move || {
                for i in 0u64.. {
                    let key = format!("r{round}-t{t}-{i:08}");
                    // Sizes vary so that some batches straddle journal buffer boundaries.
                    let value = format!("{key}:{}", "x".repeat((i % 700) as usize));
                    let mut b = WriteBatch::new();
                    b.put("a", key.as_bytes(), value.as_bytes());
                    b.put("b", key.as_bytes(), format!("b-{value}").as_bytes());
                    // Half the writers block in `write`, half commit and wait for the ticket.
                    if t % 2 == 0 {
                        s.write(b, Durability::Sync).unwrap();
                    } else {
                        let ticket = s.commit(b).unwrap();
                        s.wait_durable(ticket).unwrap();
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {}", value.len()).unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

fn run_round(dir: &std::path::Path, round: u32, acked: &mut HashMap<String, usize>) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("ACK ") {
                if let Some((k, len)) = rest.split_once(' ') {
                    let _ = tx.send((k.to_string(), len.parse::<usize>().unwrap()));
                }
            }
        }
    });
    // Kill after some acknowledgements (or a deadline), mid-stream.
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut seen = 0;
    while Instant::now() < deadline && seen < 2000 {
        if let Ok((k, len)) = rx.recv_timeout(Duration::from_millis(50)) {
            acked.insert(k, len);
            seen += 1;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    for (k, len) in rx.try_iter() {
        acked.insert(k, len);
    }
    assert!(seen > 0, "child acknowledged nothing in round {round}");
}

#[test]
fn crash_consistency() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = HashMap::new();
    for round in 0..2 {
        run_round(dir.path(), round, &mut acked);
        let s = FjallStorage::open(dir.path()).unwrap();
        for (k, len) in &acked {
            let a = s.get("a", k.as_bytes()).unwrap();
            let a = a.unwrap_or_else(|| panic!("acknowledged key {k} lost"));
            assert_eq!(a.len(), *len);
            assert!(a.starts_with(k.as_bytes()));
        }
        let mut in_a = Vec::new();
        s.scan("a", Unbounded, Unbounded, false, &mut |k, v| {
            in_a.push((k.to_vec(), v.to_vec()));
            true
        })
        .unwrap();
        let mut count_b = 0;
        s.scan("b", Unbounded, Unbounded, false, &mut |_, _| {
            count_b += 1;
            true
        })
        .unwrap();
        assert_eq!(
            in_a.len(),
            count_b,
            "a batch is visible in only one keyspace"
        );
        for (k, v) in &in_a {
            let mut want = b"b-".to_vec();
            want.extend_from_slice(v);
            assert_eq!(s.get("b", k).unwrap(), Some(want));
        }
        eprintln!(
            "round {round}: {} acknowledged, {} recovered",
            acked.len(),
            in_a.len()
        );
    }
}
