//! What the test-server harnesses (ferrodyn-pgtest, ferrodyn-natstest), the console's
//! browser test (Chromium) and the disk-full tests need from the host.
//!
//! Owns: installing a missing Debian package with `apt-get` when the test process is root
//! (serialized across processes by an `flock` on a lock file, and looking again once the lock
//! is held, since another process may have just installed it), the choice of `nobody` as the
//! user a server runs as when the tests run as root, log tails for error messages, and a
//! small tmpfs with a ballast file to fill it.
//! No ferrodyn dependencies; dev-dependency only.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

/// A Debian package to install when what the tests need is missing.
pub struct Package<'a> {
    /// `apt-get install` arguments after `install -y --no-install-recommends` (options, then
    /// the package name).
    pub install_args: &'a [&'a str],
    /// The file that serializes installs across test processes.
    pub lock_file: &'a str,
    /// Explains what is missing and how to provide it (in every error).
    pub missing: &'a dyn Fn() -> String,
    /// Runs (under the lock) just before `apt-get` does, e.g. to configure the package.
    pub before_install: Option<&'a dyn Fn()>,
}

impl Package<'_> {
    /// Finds what the tests need with `find`, installing the package first if it is missing
    /// and this process is root. Another test process may be installing right now: the lock
    /// waits for it, then `find` looks again.
    pub fn find_or_install<T>(&self, find: impl Fn() -> Option<T>) -> io::Result<T> {
        if let Some(found) = find() {
            return Ok(found);
        }
        if effective_uid()? != 0 {
            return Err(io::Error::other((self.missing)()));
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_file)?;
        lock.lock()?;
        let result = match find() {
            Some(found) => Ok(found),
            None => self.apt_install().and_then(|()| {
                find().ok_or_else(|| {
                    io::Error::other(format!("apt-get installed it, yet {}", (self.missing)()))
                })
            }),
        };
        drop(lock);
        result
    }

    fn apt_install(&self) -> io::Result<()> {
        if let Some(prepare) = self.before_install {
            prepare();
        }
        let mut install = vec!["install", "-y", "--no-install-recommends"];
        install.extend_from_slice(self.install_args);
        if !apt_lists_present() {
            self.apt_get(&["update"])?;
        }
        if self.apt_get(&install).is_err() {
            // Stale package lists are the usual cause; refresh them once.
            self.apt_get(&["update"])?;
            self.apt_get(&install)?;
        }
        Ok(())
    }

    fn apt_get(&self, args: &[&str]) -> io::Result<()> {
        let output = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| {
                io::Error::other(format!("cannot run apt-get ({e}); {}", (self.missing)()))
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
}

/// True if apt has package lists (else `apt-get update` comes first).
fn apt_lists_present() -> bool {
    fs::read_dir("/var/lib/apt/lists").is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
    })
}

/// The effective uid of this process (the owner of `/proc/self`, else `id -u`).
pub fn effective_uid() -> io::Result<u32> {
    if let Ok(meta) = fs::metadata("/proc/self") {
        return Ok(meta.uid());
    }
    let output = Command::new("id").arg("-u").output()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| io::Error::other("cannot determine the effective uid (`id -u`)"))
}

/// The `(uid, gid)` a test server runs as: `nobody` when this process is root (a test server
/// needs no privilege, and some refuse to run as root), `None` (this process's own user)
/// otherwise.
pub fn server_user() -> io::Result<Option<(u32, u32)>> {
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
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => tail(&text, 30),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A tmpfs mounted for a test (mounting needs root, as the disk-full tests have), unmounted
/// (lazily) when dropped: a real filesystem of a chosen size, to fill.
pub struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `64m`) at the existing directory `at`;
    /// panics, saying why, when it cannot.
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs at {} failed (the test needs root): {}",
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `len` bytes that no compressor shrinks (xorshift output, the same every call).
pub fn incompressible(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes incompressible data to a new file at `path` until its filesystem has no space left;
/// returns the bytes written.
pub fn fill_until_full(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = fs::File::create(path).unwrap();
    let chunk = incompressible(1 << 20);
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == io::ErrorKind::StorageFull => break,
            Err(e) => panic!("ballast: {e}"),
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_entries_and_tails() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65533:nobody:/:/sbin/nologin\n";
        assert_eq!(passwd_entry(passwd, "nobody"), Some((65534, 65533)));
        assert_eq!(passwd_entry(passwd, "nope"), None);
        assert_eq!(passwd_entry("nobody:x:bad", "nobody"), None);
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
