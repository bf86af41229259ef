//! Where the `nats-server` binary lives, installing Debian's `nats-server` package when it is
//! missing, and which OS user runs the server.
//!
//! Owns: the search (`$FERRODYN_NATS_SERVER`, then `PATH`, then the usual directories); the one
//! `apt-get install` a root test process may run is ferrodyn-testhost's (serialized in-process
//! by a `OnceLock` here and across processes by its lock file), as is the choice of `nobody`.
//! Must not start servers; `lib.rs` does that.

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Overrides the search: the path of a `nats-server` binary.
pub(crate) const BINARY_ENV: &str = "FERRODYN_NATS_SERVER";
const PROGRAM: &str = "nats-server";
const INSTALL_LOCK: &str = "/tmp/ferrodyn-nats-install.lock";
const USUAL_DIRS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/// The `nats-server` binary, installing Debian's package first if it is missing and this
/// process is root. The answer is computed once per process.
pub(crate) fn binary() -> io::Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| match std::env::var_os(BINARY_ENV) {
            Some(path) => {
                let path = PathBuf::from(path);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!("{BINARY_ENV}={} is not a file", path.display()))
                }
            }
            None => match find() {
                Some(path) => Ok(path),
                None => install().map_err(|e| e.to_string()),
            },
        })
        .clone()
        .map_err(io::Error::other)
}

/// `nats-server` in `PATH` or one of the usual directories.
fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(USUAL_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(PROGRAM))
        .find(|candidate| candidate.is_file())
}

fn missing_message() -> String {
    format!(
        "{PROGRAM} not found in PATH. Install it as root with \
         `apt-get install -y --no-install-recommends nats-server` (Debian/Ubuntu), run the tests \
         as root so they install it themselves, or set {BINARY_ENV} to its path"
    )
}

fn install() -> io::Result<PathBuf> {
    ferrodyn_testhost::Package {
        install_args: &[PROGRAM],
        lock_file: INSTALL_LOCK,
        missing: &missing_message,
        before_install: None,
    }
    .find_or_install(find)
}

pub(crate) use ferrodyn_testhost::{log_tail, server_user};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_message_says_what_to_install() {
        let message = missing_message();
        assert!(message.contains("apt-get install -y --no-install-recommends nats-server"));
        assert!(message.contains(BINARY_ENV));
    }
}
