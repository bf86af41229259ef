//! Where the PostgreSQL binaries live, installing them when they are missing, and which OS user
//! runs the server.
//!
//! Owns: the search for `/usr/lib/postgresql/<version>/bin` (or `$FERRODYN_PG_BINDIR`), the one
//! `apt-get install` a root test process may run (serialized in-process by a `OnceLock` and across
//! processes by an `flock` on a lock file), and the choice of the unprivileged user when running
//! as root. Must not start servers; `lib.rs` does that.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Overrides the search: a directory holding `initdb`, `pg_ctl` and `postgres`.
pub(crate) const BINDIR_ENV: &str = "FERRODYN_PG_BINDIR";
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
const INSTALL_LOCK: &str = "/tmp/ferrodyn-pg-install.lock";
const CREATECLUSTER_CONF: &str = "/etc/postgresql-common/createcluster.conf";
const SERVER_TOOLS: [&str; 4] = ["initdb", "pg_ctl", "postgres", "pg_basebackup"];

/// The directory holding the server binaries, installing PostgreSQL first if it is missing and
/// this process is root. The answer is computed once per process.
pub(crate) fn bin_dir() -> io::Result<PathBuf> {
    static BIN_DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN_DIR
        .get_or_init(|| match bin_dir_override() {
            Some(result) => result,
            None => match find_bin_dir(Path::new(DEBIAN_ROOT)) {
                Some(dir) => Ok(dir),
                None => install().map_err(|e| e.to_string()),
            },
        })
        .clone()
        .map_err(io::Error::other)
}

fn has_server_tools(dir: &Path) -> bool {
    SERVER_TOOLS.iter().all(|tool| dir.join(tool).is_file())
}

/// `$FERRODYN_PG_BINDIR` when set: used as is, never installed into.
fn bin_dir_override() -> Option<Result<PathBuf, String>> {
    let dir = PathBuf::from(std::env::var_os(BINDIR_ENV)?);
    Some(if has_server_tools(&dir) {
        Ok(dir)
    } else {
        Err(format!(
            "{BINDIR_ENV}={} lacks one of {}",
            dir.display(),
            SERVER_TOOLS.join(", ")
        ))
    })
}

/// `<root>/<highest version>/bin` among the versions that have all the server tools
/// (Debian's layout under /usr/lib/postgresql).
fn find_bin_dir(root: &Path) -> Option<PathBuf> {
    let versions = fs::read_dir(root)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok());
    let bin = |version: &str| root.join(version).join("bin");
    let best = highest_version(versions.filter(|v| has_server_tools(&bin(v))))?;
    Some(bin(&best))
}

/// The highest numeric version among directory names like `15`, `16`, `9.6` (others ignored).
fn highest_version(names: impl Iterator<Item = String>) -> Option<String> {
    fn key(name: &str) -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    }
    names
        .filter_map(|name| Some((key(&name)?, name)))
        .max()
        .map(|(_, name)| name)
}

fn missing_message() -> String {
    format!(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, pg_basebackup) not found in \
         {DEBIAN_ROOT}/<version>/bin. Install them as root with \
         `apt-get install -y --no-install-recommends postgresql` (Debian/Ubuntu), run the tests \
         as root so they install it themselves, or set {BINDIR_ENV} to the directory holding them"
    )
}

fn install() -> io::Result<PathBuf> {
    // The createcluster.conf written first predates the package that sets it up: keep ours
    // instead of asking (there is no one to answer; dpkg would fail at the prompt).
    ferrodyn_testhost::Package {
        install_args: &[
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "postgresql",
        ],
        lock_file: INSTALL_LOCK,
        missing: &missing_message,
        before_install: Some(&disable_main_cluster),
    }
    .find_or_install(|| find_bin_dir(Path::new(DEBIAN_ROOT)))
}

/// Tells postgresql-common not to create (and start) its own `main` cluster on install. Best
/// effort: without it the package still installs, with a cluster the tests never use.
fn disable_main_cluster() {
    let path = Path::new(CREATECLUSTER_CONF);
    let existing = fs::read_to_string(path).unwrap_or_default();
    if createcluster_disabled(&existing) {
        return;
    }
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "create_main_cluster = false");
    }
}

/// Whether a createcluster.conf already says `create_main_cluster = false` (last one wins).
fn createcluster_disabled(conf: &str) -> bool {
    conf.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let (key, value) = line.split_once('=')?;
            (key.trim() == "create_main_cluster").then(|| value.trim().trim_matches('\''))
        })
        .next_back()
        .is_some_and(|value| matches!(value, "false" | "off" | "no" | "0"))
}

pub(crate) use ferrodyn_testhost::{log_tail, server_user};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_numeric_version_wins() {
        let names = ["9.6", "15", "13", "16", "extra", "16beta"].map(String::from);
        assert_eq!(highest_version(names.into_iter()).as_deref(), Some("16"));
        assert_eq!(highest_version(std::iter::empty()), None);
        let names = ["9.6", "9.10"].map(String::from);
        assert_eq!(highest_version(names.into_iter()).as_deref(), Some("9.10"));
    }

    #[test]
    fn finds_the_highest_complete_version() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(find_bin_dir(root.path()), None);
        assert_eq!(find_bin_dir(&root.path().join("absent")), None);
        let make = |version: &str, tools: &[&str]| {
            let bin = root.path().join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            for tool in tools {
                fs::write(bin.join(tool), "").unwrap();
            }
        };
        make("13", &SERVER_TOOLS);
        make("15", &SERVER_TOOLS);
        // A client-only version (no server tools) does not count.
        make("16", &["psql", "pg_isready"]);
        fs::write(root.path().join("README"), "").unwrap();
        assert_eq!(
            find_bin_dir(root.path()),
            Some(root.path().join("15").join("bin"))
        );
    }

    #[test]
    fn missing_binaries_message_says_what_to_install() {
        let message = missing_message();
        assert!(message.contains("apt-get install -y --no-install-recommends postgresql"));
        assert!(message.contains(BINDIR_ENV));
    }

    #[test]
    fn createcluster_setting() {
        assert!(!createcluster_disabled(""));
        assert!(!createcluster_disabled("#create_main_cluster = false\n"));
        assert!(createcluster_disabled("create_main_cluster = false\n"));
        assert!(createcluster_disabled(
            "ssl = on\ncreate_main_cluster=false # tests\n"
        ));
        assert!(!createcluster_disabled(
            "create_main_cluster = false\ncreate_main_cluster = true\n"
        ));
    }
}
