//! The console's JavaScript unit tests (SHA-256, HMAC and SigV4 known-answer vectors, the
//! Prometheus parser, DynamoDB JSON conversions), run with Node's built-in test runner.

use std::path::Path;
use std::process::Command;

#[test]
fn javascript_unit_tests_pass_under_node() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .arg("--test")
        .arg("tests/js/")
        .current_dir(dir)
        .output()
        .expect("run `node` (Node.js 18 or later must be installed for the console's tests)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node --test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    assert!(!stdout.contains("# pass 0"), "no test ran:\n{stdout}");
}
