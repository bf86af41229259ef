//! Fault injection at the system-call boundary, for tests. Built as a `cdylib` and loaded into
//! the real, unchanged `ferrodyn` binary with `LD_PRELOAD`, it wraps the libc functions that
//! write or sync files and makes them fail with `ENOSPC` or `EIO` on files under one
//! directory, as a control file says; every other call goes straight to libc. Nothing of the
//! engine is mocked: fjall and the storage engine run as in production, only the operating
//! system answers differently.
//!
//! Environment of the process it is loaded into:
//! * `FERRODYN_FAULTFS_DIR`: only descriptors whose file (`/proc/self/fd/N`) lies under this
//!   directory are affected (give it without a trailing slash).
//! * `FERRODYN_FAULTFS_CONTROL`: the control file, read on every wrapped call, so a test
//!   changes the faults at run time by rewriting it. Missing or empty: no fault. Each line is
//!   `CLASS ERRNO [N]`:
//!   - CLASS `write`: write, pwrite, writev, pwritev, fallocate, posix_fallocate, ftruncate
//!     (and their `64` forms); `sync`: fsync, fdatasync, sync_file_range;
//!   - ERRNO `ENOSPC` or `EIO`;
//!   - N: only the N-th call of that class on a matching file fails (counted from when the
//!     control file's content last changed); without N every such call fails.
//!
//! What it does not see: writes through `mmap`, `io_uring`, and direct system calls that skip
//! libc. The storage engine (fjall, Rust's `std::fs`) uses none of them.
//!
//! Safety invariants of the wrappers (all `unsafe extern "C"` by nature):
//! * Each wrapper has the exact C signature of the libc function it replaces and, when it
//!   injects nothing, calls the next definition of the same symbol (`dlsym(RTLD_NEXT)`) with
//!   its arguments unchanged, so the caller's contract with libc is kept.
//! * The wrappers allocate nothing and take no lock: they can run on any thread of the host,
//!   even while its allocator or stdio holds a lock. They use stack buffers and atomics only,
//!   and only libc calls they do not wrap (getenv, open, read, close, readlink, dlsym).
//! * `errno` changes only when a fault is injected (set to the injected error, with the
//!   return value of a failure: -1, or the error itself for `posix_fallocate`); the helpers'
//!   own calls restore it.

use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use libc::{c_char, c_int, c_uint, c_void, iovec, off64_t, off_t, size_t, ssize_t};

/// A group of wrapped functions that one control line targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Calls that write data or change a file's size.
    Write = 0,
    /// Calls that make written data durable.
    Sync = 1,
}

/// One control line that applies to a class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The error to inject.
    pub errno: c_int,
    /// Only the N-th matching call fails (`None`: all).
    pub nth: Option<u64>,
}

/// The first rule of `control` for `class`; unknown lines are ignored.
pub fn parse(control: &[u8], class: Class) -> Option<Rule> {
    for line in control.split(|&b| b == b'\n') {
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let c = match words.next() {
            Some(b"write") => Class::Write,
            Some(b"sync") => Class::Sync,
            _ => continue,
        };
        let errno = match words.next() {
            Some(b"ENOSPC") => libc::ENOSPC,
            Some(b"EIO") => libc::EIO,
            _ => continue,
        };
        let nth = match words.next() {
            None => None,
            Some(n) => match std::str::from_utf8(n).ok().and_then(|n| n.parse().ok()) {
                Some(n) => Some(n),
                None => continue,
            },
        };
        if c == class {
            return Some(Rule { errno, nth });
        }
    }
    None
}

/// Hash of the control file's content when the counters were last reset.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Matching calls per class since then.
static COUNTS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn errno_location() -> *mut c_int {
    // SAFETY: glibc's errno location is valid for the calling thread's whole life.
    unsafe { libc::__errno_location() }
}

/// The value of an environment variable, without allocating.
fn env(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv returns null or a NUL-terminated string inside `environ`, which the host
    // does not change while it runs (no setenv after start in ferrodyn).
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated (above).
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// Reads the control file into `buf` (its first `buf.len()` bytes).
fn read_control(buf: &mut [u8]) -> Option<&[u8]> {
    let path = env(c"FERRODYN_FAULTFS_CONTROL")?;
    // The pointer from getenv is NUL-terminated, so `path` is followed by a NUL.
    let cpath = path.as_ptr().cast::<c_char>();
    // SAFETY: `cpath` is a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(cpath, libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: writes at most `buf.len() - len` bytes inside `buf`.
        let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    // SAFETY: `fd` was opened above and is not used afterwards.
    unsafe { libc::close(fd) };
    Some(&buf[..len])
}

/// True if `fd` refers to a file under `FERRODYN_FAULTFS_DIR`.
fn under_dir(fd: c_int) -> bool {
    let Some(dir) = env(c"FERRODYN_FAULTFS_DIR") else {
        return false;
    };
    let mut link = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut digits = [0u8; 10];
    let mut n = fd.unsigned_abs();
    let mut d = 0;
    loop {
        digits[d] = b'0' + (n % 10) as u8;
        d += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, &digit) in digits[..d].iter().rev().enumerate() {
        link[14 + i] = digit;
    }
    let mut target = [0u8; 4096];
    // SAFETY: `link` is NUL-terminated (it has 10 spare NULs after at most 10 digits) and
    // readlink writes at most `target.len()` bytes into `target`.
    let len = unsafe {
        libc::readlink(
            link.as_ptr().cast(),
            target.as_mut_ptr().cast(),
            target.len(),
        )
    };
    if len <= 0 {
        return false;
    }
    let target = &target[..len as usize];
    target.starts_with(dir) && (target.len() == dir.len() || target[dir.len()] == b'/')
}

/// The error to inject into this call of `class` on `fd`, if any. Leaves `errno` as it was.
fn fault(fd: c_int, class: Class) -> Option<c_int> {
    let errno = errno_location();
    // SAFETY: the thread's own errno (see `errno_location`).
    let saved = unsafe { *errno };
    let decide = || {
        let mut buf = [0u8; 512];
        let control = read_control(&mut buf)?;
        let generation = fnv1a(control);
        if GENERATION.swap(generation, Relaxed) != generation {
            for c in &COUNTS {
                c.store(0, Relaxed);
            }
        }
        let rule = parse(control, class)?;
        if !under_dir(fd) {
            return None;
        }
        let n = COUNTS[class as usize].fetch_add(1, Relaxed) + 1;
        match rule.nth {
            Some(nth) if nth != n => None,
            _ => Some(rule.errno),
        }
    };
    let injected = decide();
    // SAFETY: as above.
    unsafe { *errno = saved };
    injected
}

/// The next definition of the symbol `name` (NUL-terminated) after this library, cached.
///
/// # Safety
/// `name` must end with a NUL byte and name a function of the type the caller transmutes to.
unsafe fn next(cache: &AtomicUsize, name: &str) -> usize {
    let p = cache.load(Relaxed);
    if p != 0 {
        return p;
    }
    let p = libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) as usize;
    if p == 0 {
        // The host links libc, which defines every wrapped function: going on could only
        // call a null pointer.
        libc::abort();
    }
    cache.store(p, Relaxed);
    p
}

/// Defines a wrapper for a libc function whose first argument is a file descriptor and whose
/// failure is `-1` with `errno`.
macro_rules! wrap {
    ($name:ident, $class:expr, $ret:ty, ($($arg:ident: $ty:ty),*)) => {
        /// Wrapper of the libc function of the same name (see the crate docs).
        ///
        /// # Safety
        /// The libc function's own contract: the caller passes what it would pass to libc.
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int $(, $arg: $ty)*) -> $ret {
            type Real = unsafe extern "C" fn(c_int $(, $ty)*) -> $ret;
            static REAL: AtomicUsize = AtomicUsize::new(0);
            if let Some(e) = fault(fd, $class) {
                *errno_location() = e;
                return -1;
            }
            // SAFETY: the symbol is the libc function this one replaces, of type `Real`.
            let real: Real =
                std::mem::transmute::<usize, Real>(next(&REAL, concat!(stringify!($name), "\0")));
            real(fd $(, $arg)*)
        }
    };
}

wrap!(write, Class::Write, ssize_t, (buf: *const c_void, count: size_t));
wrap!(pwrite, Class::Write, ssize_t, (buf: *const c_void, count: size_t, offset: off_t));
wrap!(pwrite64, Class::Write, ssize_t, (buf: *const c_void, count: size_t, offset: off64_t));
wrap!(writev, Class::Write, ssize_t, (iov: *const iovec, iovcnt: c_int));
wrap!(pwritev, Class::Write, ssize_t, (iov: *const iovec, iovcnt: c_int, offset: off_t));
wrap!(pwritev64, Class::Write, ssize_t, (iov: *const iovec, iovcnt: c_int, offset: off64_t));
wrap!(pwritev2, Class::Write, ssize_t, (iov: *const iovec, iovcnt: c_int, offset: off_t, flags: c_int));
wrap!(fallocate, Class::Write, c_int, (mode: c_int, offset: off_t, len: off_t));
wrap!(fallocate64, Class::Write, c_int, (mode: c_int, offset: off64_t, len: off64_t));
wrap!(ftruncate, Class::Write, c_int, (length: off_t));
wrap!(ftruncate64, Class::Write, c_int, (length: off64_t));
wrap!(fsync, Class::Sync, c_int, ());
wrap!(fdatasync, Class::Sync, c_int, ());
wrap!(sync_file_range, Class::Sync, c_int, (offset: off64_t, nbytes: off64_t, flags: c_uint));

/// Wrapper of libc's `posix_fallocate`, which returns its error instead of setting `errno`.
///
/// # Safety
/// The libc function's own contract.
#[no_mangle]
pub unsafe extern "C" fn posix_fallocate(fd: c_int, offset: off_t, len: off_t) -> c_int {
    type Real = unsafe extern "C" fn(c_int, off_t, off_t) -> c_int;
    static REAL: AtomicUsize = AtomicUsize::new(0);
    if let Some(e) = fault(fd, Class::Write) {
        return e;
    }
    // SAFETY: the symbol is libc's posix_fallocate, of type `Real`.
    let real: Real = std::mem::transmute::<usize, Real>(next(&REAL, "posix_fallocate\0"));
    real(fd, offset, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn control_lines_parse() {
        let c = b"# comment\nsync EIO\nwrite ENOSPC 3\nwrite EIO\n";
        assert_eq!(
            parse(c, Class::Sync),
            Some(Rule {
                errno: libc::EIO,
                nth: None
            })
        );
        assert_eq!(
            parse(c, Class::Write),
            Some(Rule {
                errno: libc::ENOSPC,
                nth: Some(3)
            })
        );
        assert_eq!(parse(b"", Class::Write), None);
        assert_eq!(parse(b"sync EBADF\nsync EIO x\n", Class::Sync), None);
    }

    /// The wrappers are linked into this test binary too (an executable's own definitions
    /// come before libc's), so the standard library's file calls go through them.
    #[test]
    fn calls_on_files_under_the_directory_fail_as_the_control_file_says() {
        let dir = tempfile_dir();
        let faulty = format!("{dir}/faulty");
        std::fs::create_dir_all(&faulty).unwrap();
        let control = format!("{dir}/control");
        std::env::set_var("FERRODYN_FAULTFS_DIR", &faulty);
        std::env::set_var("FERRODYN_FAULTFS_CONTROL", &control);
        let mut inside = std::fs::File::create(format!("{faulty}/f")).unwrap();
        let mut outside = std::fs::File::create(format!("{dir}/g")).unwrap();
        // No control file: no fault.
        inside.write_all(b"x").unwrap();
        inside.sync_all().unwrap();
        std::fs::write(&control, "sync EIO\nwrite ENOSPC 2\n").unwrap();
        let e = inside.sync_data().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        assert_eq!(
            inside.sync_all().unwrap_err().raw_os_error(),
            Some(libc::EIO)
        );
        outside.write_all(b"y").unwrap();
        outside.sync_all().unwrap();
        inside.write_all(b"1").unwrap(); // the first write of the class passes
        let e = inside.write_all(b"2").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        inside.write_all(b"3").unwrap(); // only the 2nd failed
        std::fs::write(&control, "").unwrap();
        inside.sync_all().unwrap();
        assert_eq!(std::fs::read(format!("{faulty}/f")).unwrap(), b"x13");
        std::env::remove_var("FERRODYN_FAULTFS_CONTROL");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory under the system's temporary directory (no extra dependency).
    fn tempfile_dir() -> String {
        let dir = std::env::temp_dir().join(format!("ferrodyn-faultfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_str().unwrap().to_owned()
    }
}
