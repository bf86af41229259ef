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
//!
//! Crash points at the system-call boundary (a test facility, for the crash-point harness):
//! * `FERRODYN_FAULTFS_ABORT=OP[.KIND] N [before|after]`: the process calls `abort()` at the
//!   N-th call of OP on a file of KIND under the directory (counted from the start, every
//!   KIND if none is named), before the call (default) or once it returned. OP is `write`,
//!   `sync` (the classes above), `create` (`open`/`openat` with `O_CREAT`), `rename` (by the
//!   new name) or `unlink` (`unlink`, `unlinkat`, files and directories). KIND, from the
//!   path: `journal` (`*.jnl`), `table` (under a `tables` directory: the table files a flush
//!   or a compaction writes and a compaction deletes), `version` (`current`, `v<N>`, the
//!   `.tmp*` files `current` is rewritten through, `version`: the files that switch a tree to
//!   new table files) or `other`.
//! * `FERRODYN_FAULTFS_COUNTS=FILE`: at exit, writes how many calls of each `OP.KIND` it saw
//!   under the directory, one `OP.KIND N` line each, so a crash-free run tells a harness the
//!   range of N.
//!
//! Both are read once, at the first wrapped call. Without either, the new wrappers go
//! straight to libc after one relaxed atomic load.
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
//! * The library's own file calls (the control file, the counts file) are raw system calls,
//!   so they never re-enter a wrapper.
//! * `open`, `open64`, `openat` and `openat64` are variadic in C; stable Rust cannot define a
//!   variadic function, so their wrappers take the optional `mode` as a fixed last argument.
//!   On x86_64 and aarch64 Linux a variadic argument is passed exactly where a fixed one is
//!   (a register), so the wrapper reads what the caller passed (unspecified when the caller
//!   passed none) and forwards it unchanged; libc reads it only with `O_CREAT` or
//!   `O_TMPFILE`, when the caller must pass it. They are built on those targets only.

use std::ffi::CStr;
use std::sync::atomic::{
    AtomicU64, AtomicU8, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

use libc::{c_char, c_int, c_uint, c_void, iovec, mode_t, off64_t, off_t, size_t, ssize_t};

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
    let fd = raw_open(cpath, libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: the kernel writes at most `buf.len() - len` bytes inside `buf`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_read,
                fd,
                buf[len..].as_mut_ptr().cast::<c_void>(),
                buf.len() - len,
            )
        };
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    raw_close(fd);
    Some(&buf[..len])
}

/// `openat(AT_FDCWD, path, flags, 0o644)` as a raw system call (never through a wrapper).
fn raw_open(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: `path` is NUL-terminated (callers pass a pointer from getenv).
    unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path,
            flags,
            0o644 as c_uint,
        ) as c_int
    }
}

fn raw_close(fd: c_int) {
    // SAFETY: `fd` was opened by the caller and is not used afterwards.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// True if `fd` refers to a file under `FERRODYN_FAULTFS_DIR`.
fn under_dir(fd: c_int) -> bool {
    let mut target = [0u8; 4096];
    fd_path(fd, &mut target).is_some_and(in_dir)
}

/// True if `path` lies under `FERRODYN_FAULTFS_DIR`.
fn in_dir(path: &[u8]) -> bool {
    let Some(dir) = env(c"FERRODYN_FAULTFS_DIR") else {
        return false;
    };
    path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')
}

/// The path of the file `fd` refers to (`/proc/self/fd/N`), read into `target`.
fn fd_path(fd: c_int, target: &mut [u8; 4096]) -> Option<&[u8]> {
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
        return None;
    }
    Some(&target[..len as usize])
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

// ---------------------------------------------------------------------------------------------
// Crash points: counting calls by operation and file kind, aborting at one of them.

/// An operation the crash points count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The `write` class.
    Write = 0,
    /// The `sync` class.
    Sync = 1,
    /// `open`/`openat` with `O_CREAT`.
    Create = 2,
    /// `rename`, `renameat`, `renameat2`, counted by the new name.
    Rename = 3,
    /// `unlink`, `unlinkat`.
    Unlink = 4,
}

const OPS: [(&str, Op); 5] = [
    ("write", Op::Write),
    ("sync", Op::Sync),
    ("create", Op::Create),
    ("rename", Op::Rename),
    ("unlink", Op::Unlink),
];

/// What a file is to the storage engine, from its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The write-ahead journal (`*.jnl`).
    Journal = 0,
    /// Table (segment) files and their directories, under `tables`.
    Table = 1,
    /// The files that name a tree's current table files: `current`, `v<N>`, the `.tmp*`
    /// files `current` is rewritten through, and the database's `version`.
    Version = 2,
    /// Anything else (directories, the lock file).
    Other = 3,
}

const KINDS: [(&str, Kind); 4] = [
    ("journal", Kind::Journal),
    ("table", Kind::Table),
    ("version", Kind::Version),
    ("other", Kind::Other),
];

/// The kind of the file at `path` (relative to the directory).
pub fn kind_of(path: &[u8]) -> Kind {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let version_file =
        name.len() > 1 && name[0] == b'v' && name[1..].iter().all(u8::is_ascii_digit);
    if name.ends_with(b".jnl") {
        Kind::Journal
    } else if path.split(|&b| b == b'/').any(|c| c == b"tables") {
        Kind::Table
    } else if version_file || name == b"current" || name == b"version" || name.starts_with(b".tmp")
    {
        Kind::Version
    } else {
        Kind::Other
    }
}

/// Where to abort: the `nth` call of `op` (on files of `kind`, or any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortAt {
    pub op: Op,
    pub kind: Option<Kind>,
    pub nth: u64,
    /// Once the call returned, instead of before it.
    pub after: bool,
}

/// Parses `OP[.KIND] N [before|after]`.
pub fn parse_abort(spec: &[u8]) -> Option<AbortAt> {
    let mut words = spec
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let target = words.next()?;
    let mut parts = target.splitn(2, |&b| b == b'.');
    let op_name = parts.next()?;
    let op = OPS.iter().find(|(n, _)| n.as_bytes() == op_name)?.1;
    let kind = match parts.next() {
        None => None,
        Some(k) => Some(KINDS.iter().find(|(n, _)| n.as_bytes() == k)?.1),
    };
    let nth: u64 = std::str::from_utf8(words.next()?).ok()?.parse().ok()?;
    let after = match words.next() {
        None | Some(b"before") => false,
        Some(b"after") => true,
        Some(_) => return None,
    };
    if nth == 0 || words.next().is_some() {
        return None;
    }
    Some(AbortAt {
        op,
        kind,
        nth,
        after,
    })
}

/// 0: the environment was not read yet; 1: no crash points; 2: counting.
static MODE: AtomicU8 = AtomicU8::new(0);
/// The armed point, encoded by `encode` (0: none).
static ARMED: AtomicU64 = AtomicU64::new(0);
/// Calls per operation and kind under the directory, and per operation.
static SEEN: [[AtomicU64; 4]; 5] = [const { [const { AtomicU64::new(0) }; 4] }; 5];
static SEEN_OP: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

fn encode(a: AbortAt) -> u64 {
    let kind = a.kind.map_or(7, |k| k as u64);
    (a.nth << 8) | (u64::from(a.after) << 6) | (kind << 3) | a.op as u64
}

fn decode(v: u64) -> Option<AbortAt> {
    if v == 0 {
        return None;
    }
    let op = OPS.get((v & 7) as usize)?.1;
    let kind = match (v >> 3) & 7 {
        7 => None,
        k => Some(KINDS.get(k as usize)?.1),
    };
    Some(AbortAt {
        op,
        kind,
        nth: v >> 8,
        after: (v >> 6) & 1 == 1,
    })
}

/// True if crash points are armed or counted (reads the environment at the first call).
fn counting() -> bool {
    match MODE.load(Acquire) {
        1 => false,
        2 => true,
        _ => {
            let armed = env(c"FERRODYN_FAULTFS_ABORT").and_then(parse_abort);
            ARMED.store(armed.map_or(0, encode), Relaxed);
            let on = armed.is_some() || env(c"FERRODYN_FAULTFS_COUNTS").is_some();
            MODE.store(if on { 2 } else { 1 }, Release);
            on
        }
    }
}

/// Counts a call of `op` on the file at `path` if it lies under the directory, and aborts
/// if it is the armed point, before the call. True if the caller must abort once the call
/// returned.
fn point(op: Op, path: &[u8]) -> bool {
    let Some(dir) = env(c"FERRODYN_FAULTFS_DIR") else {
        return false;
    };
    if !(path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')) {
        return false;
    }
    let kind = kind_of(&path[dir.len()..]);
    let of_kind = SEEN[op as usize][kind as usize].fetch_add(1, Relaxed) + 1;
    let of_op = SEEN_OP[op as usize].fetch_add(1, Relaxed) + 1;
    let Some(armed) = decode(ARMED.load(Relaxed)) else {
        return false;
    };
    let n = match armed.kind {
        None => of_op,
        Some(k) if k == kind => of_kind,
        Some(_) => return false,
    };
    if armed.op != op || armed.nth != n {
        return false;
    }
    if !armed.after {
        // SAFETY: abort is async-signal-safe and ends the process (the crash point).
        unsafe { libc::abort() };
    }
    true
}

/// [`point`] for a call on the descriptor `fd`. Leaves `errno` as it was.
fn point_fd(op: Op, fd: c_int) -> bool {
    if !counting() {
        return false;
    }
    let errno = errno_location();
    // SAFETY: the thread's own errno.
    let saved = unsafe { *errno };
    let mut target = [0u8; 4096];
    let after = fd_path(fd, &mut target).is_some_and(|p| point(op, p));
    // SAFETY: as above.
    unsafe { *errno = saved };
    after
}

/// [`point`] for a call on `name` (NUL-terminated), relative to the directory `dirfd` unless
/// absolute. Relative names of the working directory are not counted. Leaves `errno` as it was.
///
/// # Safety
/// `name` is null or a NUL-terminated string.
unsafe fn point_at(op: Op, dirfd: c_int, name: *const c_char) -> bool {
    if name.is_null() || !counting() {
        return false;
    }
    let name = CStr::from_ptr(name).to_bytes();
    if name.first() == Some(&b'/') {
        return point(op, name);
    }
    if dirfd == libc::AT_FDCWD {
        return false;
    }
    let errno = errno_location();
    let saved = *errno;
    let mut target = [0u8; 4096];
    let mut full = [0u8; 8192];
    let mut after = false;
    if let Some(dir) = fd_path(dirfd, &mut target) {
        let len = dir.len() + 1 + name.len();
        if len <= full.len() {
            full[..dir.len()].copy_from_slice(dir);
            full[dir.len()] = b'/';
            full[dir.len() + 1..len].copy_from_slice(name);
            after = point(op, &full[..len]);
        }
    }
    *errno = saved;
    after
}

/// Writes the counts to `FERRODYN_FAULTFS_COUNTS` at exit (a `.fini_array` entry), with raw
/// system calls and a stack buffer.
extern "C" fn write_counts() {
    if MODE.load(Acquire) != 2 {
        return;
    }
    let Some(path) = env(c"FERRODYN_FAULTFS_COUNTS") else {
        return;
    };
    let mut buf = [0u8; 1024];
    let len = format_counts(&mut buf);
    let fd = raw_open(
        path.as_ptr().cast(),
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
    );
    if fd < 0 {
        return;
    }
    // SAFETY: reads `len` bytes of `buf`.
    unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr().cast::<c_void>(), len) };
    raw_close(fd);
}

#[used]
#[link_section = ".fini_array"]
static WRITE_COUNTS: extern "C" fn() = write_counts;

/// `OP.KIND N` lines for every operation and kind into `buf`; the length written.
fn format_counts(buf: &mut [u8; 1024]) -> usize {
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let end = (len + bytes.len()).min(buf.len());
        buf[len..end].copy_from_slice(&bytes[..end - len]);
        len = end;
    };
    for (op_name, op) in OPS {
        for (kind_name, kind) in KINDS {
            put(op_name.as_bytes());
            put(b".");
            put(kind_name.as_bytes());
            put(b" ");
            let mut n = SEEN[op as usize][kind as usize].load(Relaxed);
            let mut digits = [0u8; 20];
            let mut d = digits.len();
            loop {
                d -= 1;
                digits[d] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            put(&digits[d..]);
            put(b"\n");
        }
    }
    len
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
            let abort_after = point_fd(op_of($class), fd);
            if let Some(e) = fault(fd, $class) {
                *errno_location() = e;
                return -1;
            }
            // SAFETY: the symbol is the libc function this one replaces, of type `Real`.
            let real: Real =
                std::mem::transmute::<usize, Real>(next(&REAL, concat!(stringify!($name), "\0")));
            let r = real(fd $(, $arg)*);
            if abort_after {
                libc::abort();
            }
            r
        }
    };
}

fn op_of(class: Class) -> Op {
    match class {
        Class::Write => Op::Write,
        Class::Sync => Op::Sync,
    }
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
    let abort_after = point_fd(Op::Write, fd);
    if let Some(e) = fault(fd, Class::Write) {
        return e;
    }
    // SAFETY: the symbol is libc's posix_fallocate, of type `Real`.
    let real: Real = std::mem::transmute::<usize, Real>(next(&REAL, "posix_fallocate\0"));
    let r = real(fd, offset, len);
    if abort_after {
        libc::abort();
    }
    r
}

/// Defines a wrapper of a libc function that takes a path (`$path`, relative to `$dirfd`)
/// and is counted as `$op` when `$counted` holds; it never injects errors.
macro_rules! wrap_path {
    ($name:ident, $op:expr, $ret:ty, ($($arg:ident: $ty:ty),*), $dirfd:expr, $path:ident, $counted:expr) => {
        /// Wrapper of the libc function of the same name (see the crate docs).
        ///
        /// # Safety
        /// The libc function's own contract: the caller passes what it would pass to libc.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            type Real = unsafe extern "C" fn($($ty),*) -> $ret;
            static REAL: AtomicUsize = AtomicUsize::new(0);
            let abort_after = $counted && point_at($op, $dirfd, $path);
            // SAFETY: the symbol is the libc function this one replaces, of type `Real`.
            let real: Real =
                std::mem::transmute::<usize, Real>(next(&REAL, concat!(stringify!($name), "\0")));
            let r = real($($arg),*);
            if abort_after {
                libc::abort();
            }
            r
        }
    };
}

fn creates(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod opens {
    use super::*;
    wrap_path!(open, Op::Create, c_int, (path: *const c_char, flags: c_int, mode: mode_t), libc::AT_FDCWD, path, creates(flags));
    wrap_path!(open64, Op::Create, c_int, (path: *const c_char, flags: c_int, mode: mode_t), libc::AT_FDCWD, path, creates(flags));
    wrap_path!(openat, Op::Create, c_int, (dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t), dirfd, path, creates(flags));
    wrap_path!(openat64, Op::Create, c_int, (dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t), dirfd, path, creates(flags));
}

wrap_path!(rename, Op::Rename, c_int, (old: *const c_char, new: *const c_char), libc::AT_FDCWD, new, true);
wrap_path!(renameat, Op::Rename, c_int, (olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char), newdirfd, new, true);
wrap_path!(renameat2, Op::Rename, c_int, (olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char, flags: c_uint), newdirfd, new, true);
wrap_path!(unlink, Op::Unlink, c_int, (path: *const c_char), libc::AT_FDCWD, path, true);
wrap_path!(unlinkat, Op::Unlink, c_int, (dirfd: c_int, path: *const c_char, flags: c_int), dirfd, path, true);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;

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
        let dir = tempfile_dir("faults");
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

    #[test]
    fn abort_specs_and_kinds_parse() {
        assert_eq!(
            parse_abort(b"rename.version 3 after"),
            Some(AbortAt {
                op: Op::Rename,
                kind: Some(Kind::Version),
                nth: 3,
                after: true
            })
        );
        let a = parse_abort(b"write 12").unwrap();
        assert_eq!((a.op, a.kind, a.nth, a.after), (Op::Write, None, 12, false));
        assert_eq!(decode(encode(a)), Some(a));
        let b = parse_abort(b"unlink.table 1 before").unwrap();
        assert_eq!(decode(encode(b)), Some(b));
        for bad in [
            &b"rename 0"[..],
            b"link 1",
            b"write.segment 1",
            b"sync",
            b"sync 1 later",
            b"",
        ] {
            assert_eq!(parse_abort(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(kind_of(b"/0.jnl"), Kind::Journal);
        assert_eq!(kind_of(b"/keyspaces/3/tables/12"), Kind::Table);
        assert_eq!(kind_of(b"/keyspaces/3/tables"), Kind::Table);
        assert_eq!(kind_of(b"/keyspaces/3/v17"), Kind::Version);
        assert_eq!(kind_of(b"/keyspaces/3/current"), Kind::Version);
        assert_eq!(kind_of(b"/keyspaces/3/.tmpAb12"), Kind::Version);
        assert_eq!(kind_of(b"/version"), Kind::Version);
        assert_eq!(kind_of(b"/keyspaces/3"), Kind::Other);
        assert_eq!(kind_of(b"/lock"), Kind::Other);
        assert_eq!(kind_of(b"/keyspaces/3/vx"), Kind::Other);
    }

    /// File calls a child process makes under the directory: 2 creates (a table file, a temp
    /// file), 2 writes, 2 syncs, 1 rename (to `current`), 1 unlink (the table file) and the
    /// unlinkat of `remove_dir_all` (the `current` file and the `tables` directory).
    fn child_workload(dir: &str) {
        std::fs::create_dir_all(format!("{dir}/ks/tables")).unwrap();
        let mut t = std::fs::File::create(format!("{dir}/ks/tables/1")).unwrap();
        t.write_all(b"segment").unwrap();
        t.sync_all().unwrap();
        let mut tmp = std::fs::File::create(format!("{dir}/ks/.tmp1")).unwrap();
        tmp.write_all(b"v").unwrap();
        tmp.sync_all().unwrap();
        std::fs::rename(format!("{dir}/ks/.tmp1"), format!("{dir}/ks/current")).unwrap();
        std::fs::remove_file(format!("{dir}/ks/tables/1")).unwrap();
        std::fs::remove_dir_all(format!("{dir}/ks")).unwrap();
    }

    /// Runs in a child process (the test binary itself, see below); a no-op otherwise.
    #[test]
    fn crash_point_child() {
        if let Ok(dir) = std::env::var("FERRODYN_FAULTFS_CHILD") {
            child_workload(&dir);
        }
    }

    /// Runs `crash_point_child` in a fresh process with `env`, which the library reads at its
    /// first call.
    fn run_child(dir: &str, env: &[(&str, &str)]) -> std::process::ExitStatus {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::crash_point_child",
                "--test-threads",
                "1",
                "-q",
            ])
            .env("FERRODYN_FAULTFS_CHILD", dir)
            .env("FERRODYN_FAULTFS_DIR", dir)
            // Set by the other test of this process meanwhile.
            .env_remove("FERRODYN_FAULTFS_CONTROL")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    }

    #[test]
    fn crash_points_count_calls_by_kind_and_abort_at_the_armed_one() {
        use std::os::unix::process::ExitStatusExt;
        let base = tempfile_dir("points");
        let dir = format!("{base}/points");
        std::fs::create_dir_all(&dir).unwrap();
        let counts = format!("{base}/counts");
        let st = run_child(&dir, &[("FERRODYN_FAULTFS_COUNTS", &counts)]);
        assert!(st.success(), "{st:?}");
        let text = std::fs::read_to_string(&counts).unwrap();
        let got: std::collections::BTreeMap<&str, u64> = text
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap();
                (k, v.parse().unwrap())
            })
            .collect();
        assert_eq!(got.len(), 20, "{text}");
        let nonzero: Vec<(&str, u64)> = got
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, n)| (*k, *n))
            .collect();
        assert_eq!(
            nonzero,
            [
                ("create.table", 1),
                ("create.version", 1),
                ("rename.version", 1),
                ("sync.table", 1),
                ("sync.version", 1),
                ("unlink.other", 1),
                ("unlink.table", 2),
                ("unlink.version", 1),
                ("write.table", 1),
                ("write.version", 1),
            ]
        );
        // Before the rename: `current` never appears; after it: it does.
        for (when, exists) in [("before", false), ("after", true)] {
            std::fs::remove_dir_all(&dir).ok();
            std::fs::create_dir_all(&dir).unwrap();
            let spec = format!("rename.version 1 {when}");
            let st = run_child(&dir, &[("FERRODYN_FAULTFS_ABORT", &spec)]);
            assert_eq!(st.signal(), Some(libc::SIGABRT), "{spec}: {st:?}");
            assert_eq!(
                Path::new(&format!("{dir}/ks/current")).exists(),
                exists,
                "{spec}"
            );
            assert_eq!(
                Path::new(&format!("{dir}/ks/.tmp1")).exists(),
                !exists,
                "{spec}"
            );
        }
        // The second unlink of any kind is the one of `current` in remove_dir_all: the table
        // file is gone, `current` still there.
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        let st = run_child(&dir, &[("FERRODYN_FAULTFS_ABORT", "unlink 2")]);
        assert_eq!(st.signal(), Some(libc::SIGABRT), "{st:?}");
        assert!(!Path::new(&format!("{dir}/ks/tables/1")).exists());
        assert!(Path::new(&format!("{dir}/ks/current")).exists());
        // A point past the last call never fires.
        let st = run_child(&dir, &[("FERRODYN_FAULTFS_ABORT", "write.table 2")]);
        assert!(st.success(), "{st:?}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A fresh directory under the system's temporary directory (no extra dependency).
    fn tempfile_dir(test: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("ferrodyn-faultfs-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_str().unwrap().to_owned()
    }
}
