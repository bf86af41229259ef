//! Where the `nats-server` binary lives, installing Debian's `nats-server` package when it is
//! missing, and which OS user runs the server.
//!
//! Owns: the search (`$FERRODYN_NATS_SERVER`, then `PATH`, then the usual directories), the one
//! `apt-get install` a root test process may run (serialized in-process by a `OnceLock` and across
//! processes by an `flock` on a lock file), and the choice of `nobody` when running as root.
//! Must not start servers; `lib.rs` does that.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
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
    if effective_uid()? != 0 {
        return Err(io::Error::other(missing_message()));
    }
    // Another test process may be installing right now: wait for it, then look again.
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(INSTALL_LOCK)?;
    lock.lock()?;
    let result = match find() {
        Some(path) => Ok(path),
        None => apt_install(),
    };
    drop(lock);
    result
}

fn apt_install() -> io::Result<PathBuf> {
    let install = ["install", "-y", "--no-install-recommends", PROGRAM];
    if !apt_lists_present() {
        apt_get(&["update"])?;
    }
    if apt_get(&install).is_err() {
        // Stale package lists are the usual cause; refresh them once.
        apt_get(&["update"])?;
        apt_get(&install)?;
    }
    find().ok_or_else(|| {
        io::Error::other(format!(
            "apt-get installed {PROGRAM}, yet {}",
            missing_message()
        ))
    })
}

fn apt_lists_present() -> bool {
    fs::read_dir("/var/lib/apt/lists").is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
    })
}

fn apt_get(args: &[&str]) -> io::Result<()> {
    let output = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| {
            io::Error::other(format!(
                "cannot run apt-get ({e}) to install {PROGRAM}; {}",
                missing_message()
            ))
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "`apt-get {}` failed ({}): {}",
        args.join(" "),
        output.status,
        tail(&String::from_utf8_lossy(&output.stderr), 20)
    )))
}

/// The effective uid of this process (the owner of `/proc/self`, else `id -u`).
fn effective_uid() -> io::Result<u32> {
    if let Ok(meta) = fs::metadata("/proc/self") {
        return Ok(meta.uid());
    }
    let output = Command::new("id").arg("-u").output()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| io::Error::other("cannot determine the effective uid (`id -u`)"))
}

/// The `(uid, gid)` the server runs as: `nobody` when this process is root (a test server needs
/// no privilege), `None` (this process's own user) otherwise.
pub(crate) fn server_user() -> io::Result<Option<(u32, u32)>> {
    if effective_uid()? != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    Ok(Some(
        passwd_entry(&passwd, "nobody").unwrap_or((65534, 65534)),
    ))
}

/// `(uid, gid)` of `user` in an /etc/passwd text.
fn passwd_entry(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => tail(&text, 30),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_message_says_what_to_install() {
        let message = missing_message();
        assert!(message.contains("apt-get install -y --no-install-recommends nats-server"));
        assert!(message.contains(BINARY_ENV));
    }

    #[test]
    fn passwd_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(passwd_entry(passwd, "nobody"), Some((65534, 65534)));
        assert_eq!(passwd_entry(passwd, "nats"), None);
        assert_eq!(passwd_entry("nobody:x:oops:1:::", "nobody"), None);
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("", 5), "");
    }
}
