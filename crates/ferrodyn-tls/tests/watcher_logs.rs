//! What the watcher logs: a failure once at warn with the file's path, a reload at info with the
//! new leaf's fingerprint, and never key material.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Ca, Dir};
use ferrodyn_tls::ReloadingTls;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    async fn wait_for(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + common::TIMEOUT;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needle:?} in:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn failures_warn_once_with_the_path_and_reloads_log_the_fingerprint() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    // The test runtime is single-threaded, so the watcher task logs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let ca = Ca::new("Test CA");
    let first = ca.leaf("generation one", 1);
    let second = ca.leaf("generation two", 2);
    let dir = Dir::new();
    dir.write_in_place(&first.cert_pem, &first.key_pem);
    let tls = ReloadingTls::load(dir.files()).unwrap();
    let watcher = tls.spawn_watcher(Duration::from_millis(10));

    // The new key arrives before its certificate: a mismatch, for several ticks.
    std::fs::write(dir.key_path(), &second.key_pem).unwrap();
    captured.wait_for("TLS reload failed").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    captured.wait_for("still unusable").await;
    let text = captured.text();
    let warnings: Vec<_> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning for a lasting failure:\n{text}"
    );
    assert!(
        warnings[0].contains(&*dir.key_path().to_string_lossy()),
        "{text}"
    );
    assert!(warnings[0].contains("does not match"), "{text}");

    std::fs::write(dir.cert_path(), &second.cert_pem).unwrap();
    let text = captured.wait_for("TLS certificate reloaded").await;
    let fingerprint: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &second.cert)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let info = text.lines().find(|l| l.contains(" INFO ")).unwrap();
    assert!(info.contains(&fingerprint), "{info}");
    assert!(info.contains(&*dir.cert_path().to_string_lossy()), "{info}");

    for key in [&first.key_pem, &second.key_pem] {
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!text.contains(line), "key material logged:\n{text}");
        }
    }
    watcher.abort();
}
