//! Progress on stderr: an indicatif bar on a terminal, otherwise one plain line every few
//! seconds (`copied 120000/1000000 items (12.0%), 8431 items/s, 23.4 MB, ETA 1m44s`).
//!
//! Counters are atomics updated by any number of workers; a single ticker thread renders them,
//! so workers never wait on the display.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::timefmt::format_duration;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Always a bar (drawn only where stderr is a terminal).
    Bar,
    /// Plain lines every --progress-interval seconds.
    Plain,
    /// Nothing but the final summary.
    None,
}

impl ProgressMode {
    fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        }
    }
}

/// Where a command's progress goes; made from its common flags.
#[derive(Clone, Copy, Debug)]
pub struct Display {
    pub mode: ProgressMode,
    pub interval: Duration,
}

impl Display {
    pub fn new(mode: ProgressMode, interval_seconds: f64) -> Display {
        Display {
            mode: mode.resolve(),
            interval: Duration::from_secs_f64(interval_seconds),
        }
    }
}

struct Shared {
    verb: String,
    unit: &'static str,
    /// 0 when unknown.
    total: AtomicU64,
    done: AtomicU64,
    bytes: AtomicU64,
    start: Instant,
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    fn rate(&self) -> f64 {
        let secs = self.start.elapsed().as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            self.done.load(Ordering::Relaxed) as f64 / secs
        }
    }

    /// `copied 120000/1000000 items (12.0%), 8431 items/s, 23.4 MB, ETA 1m44s`; the total, the
    /// percentage and the ETA only while the total is known and not yet passed.
    fn plain_line(&self) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let rate = self.rate();
        let mb = format_mb(self.bytes.load(Ordering::Relaxed));
        let unit = self.unit;
        if total > 0 && done <= total {
            let pct = done as f64 * 100.0 / total as f64;
            let eta = if rate > 0.0 {
                format_duration(((total - done) as f64 / rate).round() as u64)
            } else {
                "?".to_owned()
            };
            format!(
                "{} {done}/{total} {unit} ({pct:.1}%), {rate:.0} {unit}/s, {mb}, ETA {eta}",
                self.verb
            )
        } else {
            format!("{} {done} {unit}, {rate:.0} {unit}/s, {mb}", self.verb)
        }
    }
}

/// `23.4 MB` (decimal megabytes).
pub fn format_mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// A running progress display of items (and their bytes) moved.
pub struct Progress {
    shared: Arc<Shared>,
    bar: Option<ProgressBar>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress of `verb` (`copied`, `exported`...) out of `total` items when the
    /// total is known.
    pub fn start(display: Display, verb: &str, total: Option<u64>) -> Progress {
        Self::start_unit(display, verb, "items", total)
    }

    pub fn start_unit(
        display: Display,
        verb: &str,
        unit: &'static str,
        total: Option<u64>,
    ) -> Progress {
        let shared = Arc::new(Shared {
            verb: verb.to_owned(),
            unit,
            total: AtomicU64::new(total.unwrap_or(0)),
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            start: Instant::now(),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let bar = (display.mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some_and(|t| t > 0) {
                format!("{verb} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}}, ETA {{eta}}")
            } else {
                format!("{{spinner}} {verb} {{pos}} {unit} {{msg}}")
            };
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        let ticker = match display.mode {
            ProgressMode::Plain | ProgressMode::Bar => {
                let shared = shared.clone();
                let bar = bar.clone();
                let every = match &bar {
                    Some(_) => Duration::from_millis(200),
                    None => display.interval,
                };
                Some(std::thread::spawn(move || {
                    tick(&shared, bar.as_ref(), every)
                }))
            }
            _ => None,
        };
        Progress {
            shared,
            bar,
            ticker,
        }
    }

    /// Records `items` more items of `bytes` bytes.
    pub fn add(&self, items: u64, bytes: u64) {
        self.shared.done.fetch_add(items, Ordering::Relaxed);
        self.shared.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Stops the display (the bar stays drawn in its final state) and returns the totals.
    pub fn finish(mut self) -> Totals {
        self.stop();
        Totals {
            items: self.shared.done.load(Ordering::Relaxed),
            bytes: self.shared.bytes.load(Ordering::Relaxed),
            elapsed: self.shared.start.elapsed(),
        }
    }

    fn stop(&mut self) {
        if let Ok(mut stopped) = self.shared.stopped.lock() {
            *stopped = true;
        }
        self.shared.wake.notify_all();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Some(bar) = self.bar.take() {
            render_bar(&self.shared, &bar);
            bar.finish();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn render_bar(shared: &Shared, bar: &ProgressBar) {
    bar.set_position(shared.done.load(Ordering::Relaxed));
    bar.set_message(format!(
        "{:.0} {}/s, {}",
        shared.rate(),
        shared.unit,
        format_mb(shared.bytes.load(Ordering::Relaxed))
    ));
}

fn tick(shared: &Shared, bar: Option<&ProgressBar>, every: Duration) {
    let Ok(mut stopped) = shared.stopped.lock() else {
        return;
    };
    loop {
        let Ok((guard, _)) = shared.wake.wait_timeout(stopped, every) else {
            return;
        };
        stopped = guard;
        if *stopped {
            return;
        }
        match bar {
            Some(bar) => render_bar(shared, bar),
            None => eprintln!("{}", shared.plain_line()),
        }
    }
}

/// What a finished [`Progress`] counted.
#[derive(Clone, Copy, Debug)]
pub struct Totals {
    pub items: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Totals {
    /// `3000 items in 1.2s (2500 items/s, 1.1 MB)`.
    pub fn describe(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.items as f64 / secs
        } else {
            0.0
        };
        format!(
            "{} items in {secs:.1}s ({rate:.0} items/s, {})",
            self.items,
            format_mb(self.bytes)
        )
    }
}

/// Shows what a wait is waiting for (`backup b1: CREATING, 12s`) until dropped: a spinner on a
/// terminal, a plain line every interval otherwise.
pub struct Waiting {
    display: Display,
    what: String,
    bar: Option<ProgressBar>,
    start: Instant,
    last_line: Option<Instant>,
}

impl Waiting {
    pub fn new(display: Display, what: impl Into<String>) -> Waiting {
        let what = what.into();
        let bar = (display.mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Waiting {
            display,
            what,
            bar,
            start: Instant::now(),
            last_line: None,
        }
    }

    /// Reports the status seen at the latest poll.
    pub fn status(&mut self, status: &str) {
        let line = format!("waiting for {}: {status}", self.what);
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None if self.display.mode == ProgressMode::Plain => {
                let due = self
                    .last_line
                    .is_none_or(|t| t.elapsed() >= self.display.interval);
                if due {
                    eprintln!(
                        "{line}, {}",
                        format_duration(self.start.elapsed().as_secs())
                    );
                    self.last_line = Some(Instant::now());
                }
            }
            None => {}
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(total: u64, done: u64, bytes: u64) -> Shared {
        Shared {
            verb: "copied".into(),
            unit: "items",
            total: AtomicU64::new(total),
            done: AtomicU64::new(done),
            bytes: AtomicU64::new(bytes),
            start: Instant::now() - Duration::from_secs(10),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    #[test]
    fn plain_line_with_and_without_total() {
        let line = shared(1000, 120, 23_400_000).plain_line();
        assert!(
            line.starts_with("copied 120/1000 items (12.0%), 12 items/s, 23.4 MB, ETA "),
            "{line}"
        );
        assert!(line.ends_with("1m13s"), "{line}");
        let line = shared(0, 120, 0).plain_line();
        assert_eq!(line, "copied 120 items, 12 items/s, 0.0 MB");
        // A stale ItemCount below what was already moved: no percentage above 100.
        let line = shared(100, 120, 0).plain_line();
        assert_eq!(line, "copied 120 items, 12 items/s, 0.0 MB");
    }
}
