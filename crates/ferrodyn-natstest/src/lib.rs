//! Test support: a real `nats-server` with JetStream in a temporary directory on a free loopback
//! port.
//!
//! [`NatsServer::start`] installs Debian's `nats-server` package if the binary is missing (as
//! root, through apt-get), then runs `nats-server -js` with its JetStream store in a fresh
//! directory under /tmp, and waits until the server greets clients with JetStream enabled.
//! Tests can stop it, crash it (SIGKILL) and start it again on the same port with the same
//! store. Dropping a [`NatsServer`] kills it and removes its directory.
//!
//! Invariant: when this process is root the server runs as `nobody`, in a directory owned by
//! that user; it never needs privileges. Must not depend on any other ferrodyn crate: it is a
//! dev-dependency for them.

#![forbid(unsafe_code)]

mod install;

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use install::log_tail;

/// How long a start or a stop may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts with a fresh port when another process took the one picked.
const PORT_ATTEMPTS: usize = 5;

/// One `nats-server` process with JetStream enabled.
pub struct NatsServer {
    /// Root of everything: the JetStream store and the log. Removed on drop.
    dir: tempfile::TempDir,
    store: PathBuf,
    log: PathBuf,
    /// Fixed once the server first started; a port race before that picks another.
    port: u16,
    bin: PathBuf,
    /// `(uid, gid)` the server runs as when this process is root.
    user: Option<(u32, u32)>,
    /// The running process; `None` after [`stop`](Self::stop) or [`kill9`](Self::kill9).
    child: Mutex<Option<Child>>,
}

impl NatsServer {
    /// Installs nats-server if missing, and starts it with JetStream on a free 127.0.0.1 port
    /// with its store in a fresh temporary directory; returns once it accepts clients.
    pub fn start() -> io::Result<NatsServer> {
        Self::start_on(free_port()?)
    }

    /// [`start`](Self::start) trying `port` first (another free one if it is taken).
    fn start_on(port: u16) -> io::Result<NatsServer> {
        let bin = install::binary()?;
        let user = install::server_user()?;
        let dir = tempfile::Builder::new()
            .prefix("ferrodyn-nats-")
            .tempdir_in("/tmp")?;
        let store = dir.path().join("jetstream");
        fs::create_dir(&store)?;
        if let Some((uid, gid)) = user {
            chown(dir.path(), Some(uid), Some(gid))?;
            chown(&store, Some(uid), Some(gid))?;
        }
        let log = dir.path().join("nats-server.log");
        let mut server = NatsServer {
            store,
            log,
            port,
            bin,
            user,
            dir,
            child: Mutex::new(None),
        };
        let mut attempt = 1;
        loop {
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(_) if attempt < PORT_ATTEMPTS && port_in_use(&server.log()) => {
                    attempt += 1;
                    server.port = free_port()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The path of the `nats-server` binary (installing it first when it is missing and this
    /// process is root). `$FERRODYN_NATS_SERVER` overrides the search.
    pub fn binary() -> io::Result<PathBuf> {
        install::binary()
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:{port}` (no authentication).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The instance's temporary directory (JetStream store, log); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server wrote to stdout and stderr, over all its runs.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        let mut child = self.lock_child();
        match child.as_mut() {
            Some(process) => matches!(process.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// A clean shutdown (SIGTERM), waiting until the process has exited. A no-op when it is
    /// not running.
    pub fn stop(&self) -> io::Result<()> {
        let mut child = self.lock_child();
        let Some(mut process) = child.take() else {
            return Ok(());
        };
        if matches!(process.try_wait(), Ok(Some(_))) {
            return Ok(());
        }
        let status = Command::new("kill")
            .args(["-TERM", &process.id().to_string()])
            .status()?;
        if !status.success() {
            process.kill()?;
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if process.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                process.kill()?;
                process.wait()?;
                return Err(io::Error::other(format!(
                    "nats-server did not exit {}s after SIGTERM (killed)",
                    READY_TIMEOUT.as_secs()
                )));
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL (a crash: no clean shutdown of the store) and reaps it.
    /// A no-op when it is not running.
    pub fn kill9(&self) -> io::Result<()> {
        let mut child = self.lock_child();
        if let Some(mut process) = child.take() {
            // Already exited: kill() fails with InvalidInput, wait() still reaps it.
            let _ = process.kill();
            process.wait()?;
        }
        Ok(())
    }

    /// Starts the server again after [`stop`](Self::stop) or [`kill9`](Self::kill9): same port,
    /// same JetStream store (streams and their messages survive).
    pub fn start_again(&self) -> io::Result<()> {
        if self.is_running() {
            return Err(io::Error::other("nats-server is already running"));
        }
        // Right after a SIGKILL the port may still be held for a moment.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Spawns the server and waits until a client connection receives an `INFO` that announces
    /// JetStream. On failure the process is gone and the error carries the end of its log.
    fn spawn_and_wait(&self) -> io::Result<()> {
        let mut child = self.lock_child();
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(&self.store)
        .current_dir(self.dir.path())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        let mut process = cmd.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run {}: {e}", self.bin.display()))
        })?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let failure = loop {
            if let Some(status) = process.try_wait()? {
                break format!("nats-server exited ({status})");
            }
            match jetstream_ready(self.port) {
                Ok(true) => {
                    *child = Some(process);
                    return Ok(());
                }
                Ok(false) | Err(_) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(25));
                }
                Ok(false) => break "the server does not announce JetStream".to_owned(),
                Err(e) => break format!("not accepting clients ({e})"),
            }
        };
        let _ = process.kill();
        let _ = process.wait();
        Err(io::Error::other(format!(
            "nats-server on port {} not ready: {failure}; server log:\n{}",
            self.port,
            log_tail(&self.log)
        )))
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill9();
        // The TempDir removes the directory after this.
    }
}

/// Connects and reads the server's greeting: `Ok(true)` when its `INFO` says JetStream is on.
fn jetstream_ready(port: u16) -> io::Result<bool> {
    let stream =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(info_announces_jetstream(&line))
}

/// Whether a server greeting (`INFO {...}`) has `"jetstream":true`.
fn info_announces_jetstream(line: &str) -> bool {
    line.starts_with("INFO ") && line.replace(' ', "").contains("\"jetstream\":true")
}

/// A port that was free a moment ago (the listener is dropped before the server binds it).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Whether a failed start's log says the port was taken.
fn port_in_use(log: &str) -> bool {
    log.contains("address already in use")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn greeting_detection() {
        assert!(info_announces_jetstream(
            "INFO {\"server_id\":\"x\",\"jetstream\":true,\"max_payload\":1048576}\r\n"
        ));
        assert!(!info_announces_jetstream("INFO {\"server_id\":\"x\"}\r\n"));
        assert!(!info_announces_jetstream("-ERR 'x'\r\n"));
    }

    /// Sends PING and expects PONG: the server speaks the protocol.
    fn ping(port: u16) -> io::Result<()> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        stream.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")?;
        line.clear();
        reader.read_line(&mut line)?;
        assert_eq!(line, "PONG\r\n");
        Ok(())
    }

    #[test]
    fn start_stop_kill_and_start_again() {
        let nats = NatsServer::start().expect("nats-server");
        assert!(nats.is_running());
        assert_eq!(nats.url(), format!("nats://127.0.0.1:{}", nats.port()));
        ping(nats.port()).unwrap();

        nats.stop().unwrap();
        assert!(!nats.is_running());
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, nats.port())).is_err());
        nats.start_again().unwrap();
        ping(nats.port()).unwrap();

        nats.kill9().unwrap();
        assert!(!nats.is_running());
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, nats.port())).is_err());
        nats.start_again().unwrap();
        ping(nats.port()).unwrap();
        assert!(
            nats.start_again().is_err(),
            "a second server on the same port"
        );

        let dir = nats.dir().to_owned();
        drop(nats);
        assert!(!dir.exists(), "the directory is removed on drop");
    }

    #[test]
    fn a_taken_port_is_replaced_by_a_free_one() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let nats = NatsServer::start_on(taken_port).unwrap();
        assert_ne!(nats.port(), taken_port);
        assert!(port_in_use(&nats.log()), "{}", nats.log());
        ping(nats.port()).unwrap();
        assert!(port_in_use(
            "[FTL] Error listening on port: 127.0.0.1:4222, \"listen tcp 127.0.0.1:4222: bind: address already in use\""
        ));
    }
}
