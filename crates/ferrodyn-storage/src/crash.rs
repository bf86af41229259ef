//! Crash points: a **test facility, never for production**. When the environment variable
//! [`CRASH_AT_ENV`] is set as the first durable engine of the process opens, the engine counts
//! its batch commits, journal syncs and idle compactions, and aborts the process
//! (`std::process::abort`, as abrupt as `kill -9`) at the chosen one, before or after it happens.
//! The crash-point harness (`crates/ferrodyn/tests/crash_points.rs`) uses it to crash the server
//! at many points of a workload and check the data directory after each.
//!
//! Syntax: `KIND:N[:before|after]` with KIND `commit` (a storage batch reaching fjall: the journal
//! buffer and the memtables), `sync` (a journal fsync: group commit, the background sync of
//! buffered writes, an explicit flush) or `compact` (one compaction round of the settle thread);
//! N counts from 1 in the order the events start; `before` (the default) aborts before the
//! event has any effect, `after` once it has returned. `count` only counts. With
//! [`CRASH_REPORT_ENV`] naming a file, the binary writes the counts there at a clean shutdown
//! ([`write_report`]), so a harness can size its points from a crash-free run.
//!
//! Invariants:
//! * Zero cost when unset: every hook is one relaxed load of [`ARMED`], which is set at most
//!   once, when the variable is first read, and never cleared.
//! * The counts are process-wide (all engines of the process share them); an event is counted
//!   when it starts, so `N:after` aborts after the very event `N:before` aborts before.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms a crash point.
pub const CRASH_AT_ENV: &str = "FERRODYN_CRASH_AT";
/// The environment variable naming the file [`write_report`] writes the counts to.
pub const CRASH_REPORT_ENV: &str = "FERRODYN_CRASH_REPORT";

/// The counted events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A storage batch committed to fjall.
    Commit,
    /// A journal fsync.
    Sync,
    /// One compaction round of the settle thread.
    Compact,
}

impl Event {
    const ALL: [Event; 3] = [Event::Commit, Event::Sync, Event::Compact];

    fn name(self) -> &'static str {
        match self {
            Event::Commit => "commit",
            Event::Sync => "sync",
            Event::Compact => "compact",
        }
    }
}

/// Whether the process aborts before or after the chosen event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Before,
    After,
}

/// A parsed [`CRASH_AT_ENV`] value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashAt {
    /// Count only.
    Count,
    /// Abort at the `n`-th `event` (from 1).
    At { event: Event, n: u64, when: When },
}

impl std::fmt::Display for CrashAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrashAt::Count => f.write_str("count"),
            CrashAt::At { event, n, when } => {
                let when = match when {
                    When::Before => "before",
                    When::After => "after",
                };
                write!(f, "{}:{n}:{when}", event.name())
            }
        }
    }
}

impl std::str::FromStr for CrashAt {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!("{CRASH_AT_ENV}={s:?}: expected count or commit|sync|compact:N[:before|after]")
        };
        if s == "count" {
            return Ok(CrashAt::Count);
        }
        let mut parts = s.split(':');
        let event = match parts.next() {
            Some("commit") => Event::Commit,
            Some("sync") => Event::Sync,
            Some("compact") => Event::Compact,
            _ => return Err(bad()),
        };
        let n: u64 = parts
            .next()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .ok_or_else(bad)?;
        let when = match parts.next() {
            None | Some("before") => When::Before,
            Some("after") => When::After,
            Some(_) => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(CrashAt::At { event, n, when })
    }
}

/// Set once, when a crash point is armed; the only thing a hook reads when none is.
static ARMED: AtomicBool = AtomicBool::new(false);
static PLAN: OnceLock<std::result::Result<Option<CrashAt>, String>> = OnceLock::new();
static COUNTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Reads [`CRASH_AT_ENV`] (the first call only) and arms the crash point; an unparsable value
/// is an error, so a mistyped test never runs without its crash.
pub(crate) fn arm_from_env() -> std::result::Result<(), String> {
    let plan = PLAN.get_or_init(|| match std::env::var(CRASH_AT_ENV) {
        Ok(v) => {
            let plan = v.parse::<CrashAt>()?;
            tracing::warn!(crash_at = %v, "crash point armed: this process will abort (test facility)");
            ARMED.store(true, Ordering::Relaxed);
            Ok(Some(plan))
        }
        Err(_) => Ok(None),
    });
    plan.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// Called as `event` starts; returns its number (0 when no crash point is armed), to be passed
/// to [`after`].
#[inline(always)]
pub(crate) fn before(event: Event) -> u64 {
    if !ARMED.load(Ordering::Relaxed) {
        return 0;
    }
    reached_before(event)
}

/// Called once `event` (numbered `seq` by [`before`]) has returned.
#[inline(always)]
pub(crate) fn after(event: Event, seq: u64) {
    if seq != 0 {
        check(event, seq, When::After);
    }
}

#[cold]
#[inline(never)]
fn reached_before(event: Event) -> u64 {
    let seq = COUNTS[event as usize].fetch_add(1, Ordering::SeqCst) + 1;
    check(event, seq, When::Before);
    seq
}

fn check(event: Event, seq: u64, when: When) {
    if let Some(Ok(Some(CrashAt::At {
        event: e,
        n,
        when: w,
    }))) = PLAN.get()
    {
        if *e == event && *n == seq && *w == when {
            eprintln!("crash point reached: {}:{seq}:{when:?}", event.name());
            std::process::abort();
        }
    }
}

/// Events counted so far, as `(name, count)`.
pub fn counts() -> Vec<(&'static str, u64)> {
    Event::ALL
        .iter()
        .map(|e| (e.name(), COUNTS[*e as usize].load(Ordering::SeqCst)))
        .collect()
}

/// Writes [`counts`] as `name count` lines to the file named by [`CRASH_REPORT_ENV`], if set
/// and a crash point is armed.
pub fn write_report() -> std::io::Result<()> {
    if !ARMED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let Ok(path) = std::env::var(CRASH_REPORT_ENV) else {
        return Ok(());
    };
    let text: String = counts()
        .into_iter()
        .map(|(name, n)| format!("{name} {n}\n"))
        .collect();
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crash_points() {
        assert_eq!("count".parse::<CrashAt>(), Ok(CrashAt::Count));
        assert_eq!(
            "commit:7".parse::<CrashAt>(),
            Ok(CrashAt::At {
                event: Event::Commit,
                n: 7,
                when: When::Before
            })
        );
        assert_eq!(
            "sync:1:after".parse::<CrashAt>(),
            Ok(CrashAt::At {
                event: Event::Sync,
                n: 1,
                when: When::After
            })
        );
        assert_eq!(
            "compact:3:before".parse::<CrashAt>(),
            Ok(CrashAt::At {
                event: Event::Compact,
                n: 3,
                when: When::Before
            })
        );
        for bad in [
            "",
            "commit",
            "commit:0",
            "commit:x",
            "fsync:1",
            "commit:1:during",
            "commit:1:after:2",
            "sync:-1",
        ] {
            assert!(bad.parse::<CrashAt>().is_err(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_and_round_trips(s in "\\PC{0,24}", n in 1u64.., e in 0usize..3, after: bool) {
            let _ = s.parse::<CrashAt>();
            let at = CrashAt::At {
                event: Event::ALL[e],
                n,
                when: if after { When::After } else { When::Before },
            };
            proptest::prop_assert_eq!(at.to_string().parse::<CrashAt>(), Ok(at));
        }
    }

    #[test]
    fn unarmed_hooks_count_nothing() {
        // No test of this crate sets the variable, so nothing is armed.
        assert_eq!(before(Event::Commit), 0);
        after(Event::Commit, 0);
        assert!(counts().iter().all(|(_, n)| *n == 0));
    }
}
