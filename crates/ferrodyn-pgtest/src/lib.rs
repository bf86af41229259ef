//! Test support: a real PostgreSQL server in a temporary directory on a free loopback port.
//!
//! [`PgServer::start`] installs PostgreSQL if it is missing (as root, through apt-get), runs
//! `initdb` in a fresh directory under /tmp, starts the server with settings meant for tests
//! (no fsync, trust authentication on 127.0.0.1, replication allowed), and creates the database
//! `ferrodyn`. Tests can then restart, stop, crash (SIGKILL) and restart it, or attach a hot
//! standby and promote it. Dropping a [`PgServer`] stops it immediately and removes its
//! directory.
//!
//! Invariant: PostgreSQL refuses to run as root, so when this process is root every server-side
//! program (initdb, pg_ctl, postgres, pg_basebackup) runs as `nobody`, in a directory owned by
//! that user. Clients (psql, pg_isready) connect over TCP and run as this process's user.
//!
//! Must not depend on any other ferrodyn crate: it is a dev-dependency for them.

#![forbid(unsafe_code)]

mod install;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use install::log_tail;

/// The role and database every server gets.
const USER: &str = "ferrodyn";
const DATABASE: &str = "ferrodyn";
/// How long a start, restart, promotion or readiness wait may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts with a fresh port when another process took the one picked.
const PORT_ATTEMPTS: usize = 5;

/// One PostgreSQL instance (a primary, or a standby from [`PgServer::start_standby`]).
/// Dropping it stops the server with `pg_ctl stop -m immediate` and removes its directory.
pub struct PgServer {
    /// Root of everything: the data directory, the log, the Unix socket. Removed on drop.
    dir: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
    /// Fixed once the server first started; a port race before that picks another.
    port: u16,
    bin: PathBuf,
    /// `(uid, gid)` the server runs as when this process is root.
    user: Option<(u32, u32)>,
    /// Serializes pg_ctl calls on this instance (tests may share it across threads).
    ctl: Mutex<()>,
}

impl PgServer {
    /// Installs PostgreSQL if missing, runs initdb in a fresh temporary directory, starts the
    /// server on a free 127.0.0.1 port, waits until it accepts connections and creates the
    /// database `ferrodyn`.
    pub fn start() -> io::Result<PgServer> {
        let mut server = Self::prepare()?;
        server.init()?;
        server.first_start()?;
        server.psql_db(
            "postgres",
            &format!("CREATE DATABASE {DATABASE} OWNER {USER}"),
        )?;
        Ok(server)
    }

    /// Where initdb, pg_ctl, postgres and pg_basebackup live (installing PostgreSQL first when
    /// it is missing and this process is root). `$FERRODYN_PG_BINDIR` overrides the search.
    pub fn bin_dir() -> io::Result<PathBuf> {
        install::bin_dir()
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://ferrodyn@127.0.0.1:{port}/ferrodyn` (trust authentication, no password).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The instance's temporary directory (data directory, log, socket); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log (everything the server wrote to stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `psql -At -c SQL` on database `ferrodyn` and returns its standard output; an error
    /// (with psql's message) when the statement fails.
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        self.psql_db(DATABASE, sql)
    }

    /// `pg_ctl restart -m fast`, then waits until the server accepts connections (same port).
    pub fn restart(&self) -> io::Result<()> {
        let _ctl = self.lock_ctl();
        let mut cmd = self.pg_ctl("restart");
        cmd.args(["-m", "fast", "-l"]).arg(&self.log);
        self.run_logged(&mut cmd, "pg_ctl restart")?;
        self.wait_ready()
    }

    /// `pg_ctl stop -m fast` (waits until the server has stopped).
    pub fn stop(&self) -> io::Result<()> {
        let _ctl = self.lock_ctl();
        let mut cmd = self.pg_ctl("stop");
        cmd.args(["-m", "fast"]);
        self.run_logged(&mut cmd, "pg_ctl stop")
    }

    /// Starts the server again after [`stop`](Self::stop) or [`kill9`](Self::kill9): same
    /// port, same data (after a crash the server runs recovery first).
    pub fn start_again(&self) -> io::Result<()> {
        let _ctl = self.lock_ctl();
        // After a SIGKILL the old backends may hold the shared memory for a moment.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.pg_ctl_start() {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => sleep(Duration::from_millis(200)),
            }
        }
        self.wait_ready()
    }

    /// Kills the postmaster with SIGKILL (a crash: no shutdown checkpoint), and waits until it
    /// is gone. Its backends exit by themselves once they notice.
    pub fn kill9(&self) -> io::Result<()> {
        let _ctl = self.lock_ctl();
        let pid = self.postmaster_pid()?;
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -9 {pid}"))
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "kill -9 {pid} (the postmaster) failed: {status}"
            )));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match process_state(pid) {
                None => return Ok(()),
                // Dead but not reaped (a PID 1 that does not reap orphans): the pid file would
                // make the next start believe the server still runs.
                Some('Z') => {
                    let _ = fs::remove_file(self.data.join("postmaster.pid"));
                    return Ok(());
                }
                Some(_) if Instant::now() >= deadline => {
                    return Err(io::Error::other(format!(
                        "postmaster {pid} still alive after SIGKILL"
                    )))
                }
                Some(_) => sleep(Duration::from_millis(20)),
            }
        }
    }

    /// A hot standby streaming from this server: `pg_basebackup -R -X stream` into a new
    /// directory, its own free port, started and waited for until it accepts read-only
    /// connections. Its [`url`](Self::url) points at the standby.
    pub fn start_standby(&self) -> io::Result<PgServer> {
        let mut standby = Self::prepare()?;
        let mut backup = standby.server_command("pg_basebackup");
        backup
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .arg("-D")
            .arg(&standby.data)
            .args(["-R", "-X", "stream", "-c", "fast"]);
        run(&mut backup, "pg_basebackup")?;
        // The copied postgresql.conf carries the primary's port and socket directory; later
        // lines override earlier ones.
        standby.write_test_config()?;
        standby.first_start()?;
        let in_recovery = standby.psql("SELECT pg_is_in_recovery()")?;
        if in_recovery.trim() != "t" {
            return Err(io::Error::other(format!(
                "the standby is not in recovery (pg_is_in_recovery = {in_recovery:?})"
            )));
        }
        Ok(standby)
    }

    /// `pg_ctl promote` on a standby; waits until `SELECT pg_is_in_recovery()` is false.
    pub fn promote(&self) -> io::Result<()> {
        let _ctl = self.lock_ctl();
        let mut cmd = self.pg_ctl("promote");
        self.run_logged(&mut cmd, "pg_ctl promote")?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let answer = self.psql("SELECT pg_is_in_recovery()");
            if matches!(&answer, Ok(out) if out.trim() == "f") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "still in recovery {}s after pg_ctl promote ({answer:?}); server log:\n{}",
                    READY_TIMEOUT.as_secs(),
                    log_tail(&self.log)
                )));
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// A fresh temporary directory owned by the server user, and a free port.
    fn prepare() -> io::Result<PgServer> {
        let bin = install::bin_dir()?;
        let user = install::server_user()?;
        let dir = tempfile::Builder::new()
            .prefix("ferrodyn-pg-")
            .tempdir_in("/tmp")?;
        if let Some((uid, gid)) = user {
            chown(dir.path(), Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        Ok(PgServer {
            data,
            log,
            port: free_port()?,
            bin,
            user,
            dir,
            ctl: Mutex::new(()),
        })
    }

    /// initdb and the test configuration.
    fn init(&self) -> io::Result<()> {
        let mut initdb = self.server_command("initdb");
        initdb.arg("-D").arg(&self.data);
        initdb.args(["-U", USER, "--auth=trust", "-E", "UTF8", "--no-locale"]);
        run(&mut initdb, "initdb")?;
        self.ensure_hba_trust()?;
        self.write_test_config()
    }

    /// initdb's `--auth=trust` writes trust lines for 127.0.0.1 (databases and replication);
    /// add any that a packaging of initdb left out.
    fn ensure_hba_trust(&self) -> io::Result<()> {
        let path = self.data.join("pg_hba.conf");
        let hba = fs::read_to_string(&path)?;
        let mut missing = String::new();
        for database in ["all", "replication"] {
            if !hba_trusts(&hba, database) {
                missing.push_str(&format!("host {database} all 127.0.0.1/32 trust\n"));
            }
        }
        if !missing.is_empty() {
            OpenOptions::new()
                .append(true)
                .open(&path)?
                .write_all(missing.as_bytes())?;
        }
        Ok(())
    }

    /// Appends the test settings (and this instance's port and socket directory) to
    /// postgresql.conf; the last occurrence of a setting wins.
    fn write_test_config(&self) -> io::Result<()> {
        let conf = format!(
            "\n# ferrodyn-pgtest\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket}'\n\
             fsync = off\n\
             synchronous_commit = on\n\
             full_page_writes = off\n\
             max_connections = 200\n\
             shared_buffers = 64MB\n\
             wal_level = replica\n\
             max_wal_senders = 5\n\
             wal_keep_size = 128MB\n\
             hot_standby = on\n\
             log_min_messages = warning\n\
             logging_collector = off\n",
            port = self.port,
            socket = self.dir.path().display(),
        );
        OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))?
            .write_all(conf.as_bytes())
    }

    /// The first start: on a port race (the port taken between picking and binding) picks
    /// another port and tries again.
    fn first_start(&mut self) -> io::Result<()> {
        let mut attempt = 1;
        loop {
            match self.pg_ctl_start() {
                Ok(()) => return self.wait_ready(),
                Err(_) if attempt < PORT_ATTEMPTS && port_in_use(&self.log()) => {
                    attempt += 1;
                    self.port = free_port()?;
                    OpenOptions::new()
                        .append(true)
                        .open(self.data.join("postgresql.conf"))?
                        .write_all(format!("port = {}\n", self.port).as_bytes())?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn pg_ctl_start(&self) -> io::Result<()> {
        let mut cmd = self.pg_ctl("start");
        cmd.arg("-l").arg(&self.log);
        self.run_logged(&mut cmd, "pg_ctl start")
    }

    /// Waits until `pg_isready` says yes and `SELECT 1` answers (on a standby: once it accepts
    /// read-only connections).
    fn wait_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let port = self.port.to_string();
        loop {
            let ready = Command::new(self.client_tool("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port, "-t", "2"])
                .env("LC_ALL", "C")
                .status()
                .is_ok_and(|s| s.success());
            let last = if ready {
                match self.psql_db("postgres", "SELECT 1") {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                }
            } else {
                "pg_isready: not accepting connections".to_owned()
            };
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "PostgreSQL on port {port} not ready after {}s ({last}); server log:\n{}",
                    READY_TIMEOUT.as_secs(),
                    log_tail(&self.log)
                )));
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn psql_db(&self, database: &str, sql: &str) -> io::Result<String> {
        let output = Command::new(self.client_tool("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", USER, "-d", database, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5")
            .env("LC_ALL", "C")
            .output()?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        Err(io::Error::other(format!(
            "psql {sql:?} on port {} failed ({}): {}",
            self.port,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }

    /// A program from the server's bin directory, run as the server user, in the instance's
    /// directory, with no `PG*` variables from this process's environment.
    fn server_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path()).env("LC_ALL", "C");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        cmd
    }

    fn pg_ctl(&self, action: &str) -> Command {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg(action).arg("-D").arg(&self.data).args([
            "-w",
            "-t",
            &READY_TIMEOUT.as_secs().to_string(),
        ]);
        cmd
    }

    /// A client program: from the server's bin directory when there, else from `PATH`.
    fn client_tool(&self, program: &str) -> PathBuf {
        let local = self.bin.join(program);
        if local.is_file() {
            local
        } else {
            PathBuf::from(program)
        }
    }

    /// Runs a pg_ctl command; on failure the error carries the end of the server log.
    fn run_logged(&self, cmd: &mut Command, what: &str) -> io::Result<()> {
        run(cmd, what).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{e}; server log:\n{}", log_tail(&self.log)),
            )
        })?;
        Ok(())
    }

    fn postmaster_pid(&self) -> io::Result<u32> {
        let pid_file = fs::read_to_string(self.data.join("postmaster.pid"))?;
        pid_file
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("malformed postmaster.pid: {pid_file:?}")))
    }

    fn lock_ctl(&self) -> std::sync::MutexGuard<'_, ()> {
        self.ctl
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut cmd = self.pg_ctl("stop");
        cmd.args(["-m", "immediate"]);
        let _ = cmd.output();
        // The TempDir removes the directory after this.
    }
}

/// Runs a command to completion; an error with its output unless it exits with success.
fn run(cmd: &mut Command, what: &str) -> io::Result<Output> {
    let output = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {what}: {e}")))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(io::Error::other(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// A port that was free a moment ago (the listener is dropped before the server binds it).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Whether a failed start's log says the port was taken.
fn port_in_use(log: &str) -> bool {
    log.contains("could not bind")
        || log.contains("Address already in use")
        || log.contains("could not create any TCP/IP sockets")
}

/// Whether a pg_hba.conf has a `host <database> all 127.0.0.1/32 trust` line.
fn hba_trusts(hba: &str, database: &str) -> bool {
    hba.lines().any(|line| {
        let fields: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        fields.len() >= 5
            && fields[0] == "host"
            && fields[1] == database
            && fields[2] == "all"
            && fields[3] == "127.0.0.1/32"
            && fields[4] == "trust"
    })
}

/// The state letter of a live process (`R`, `S`, `Z`, ...), `None` when it no longer exists.
fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": comm may contain spaces and parentheses; the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_trust_lines() {
        let hba = "local all all trust\n\
                   host all all 127.0.0.1/32 trust\n\
                   # host replication all 127.0.0.1/32 trust\n\
                   host replication all ::1/128 trust\n";
        assert!(hba_trusts(hba, "all"));
        assert!(!hba_trusts(hba, "replication"));
        assert!(hba_trusts(
            "host    replication     all     127.0.0.1/32    trust # x\n",
            "replication"
        ));
        assert!(!hba_trusts("host all all 127.0.0.1/32 md5\n", "all"));
    }

    #[test]
    fn port_race_detection() {
        assert!(port_in_use(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
        assert!(port_in_use("FATAL:  could not create any TCP/IP sockets"));
        assert!(!port_in_use("FATAL:  data directory has wrong ownership"));
    }

    #[test]
    fn a_taken_port_is_replaced_by_a_free_one() {
        let mut pg = PgServer::prepare().expect("PostgreSQL binaries");
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        pg.port = taken.local_addr().unwrap().port();
        pg.init().unwrap();
        pg.first_start().unwrap();
        assert_ne!(pg.port(), taken.local_addr().unwrap().port());
        assert!(port_in_use(&pg.log()), "{}", pg.log());
        assert_eq!(pg.psql_db("postgres", "SELECT 1").unwrap().trim(), "1");
    }

    #[test]
    fn own_process_state() {
        let state = process_state(std::process::id()).expect("this process exists");
        assert_ne!(state, 'Z');
        assert_eq!(process_state(u32::MAX), None);
    }
}
