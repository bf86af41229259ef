//! Model checking of the engine's concurrency protocols with [`loom`].
//!
//! The crates whose synchronization matters (`ferrodyn-storage`: the durable watermark and
//! group commit; `ferrodyn-core`: item lock stripes) take their primitives from a private
//! `sync` module: `parking_lot` locks and `std` atomics in production. A model test compiles
//! the same source files (`#[path = "../src/…"] mod …;`) inside a test crate whose `sync`
//! module is [`sync`] here: loom's primitives, wrapped in the `parking_lot` API the production
//! code calls. loom then runs the test closure under every interleaving of those primitives
//! (bounded by `LOOM_MAX_PREEMPTIONS`), and reports deadlocks, lost wake-ups (every thread
//! blocked) and failed assertions with the schedule that led there.
//!
//! Only what the production units use is provided. Timed waits never time out under loom, so
//! a protocol that only works because a timeout fires shows up as a deadlock.

pub use loom;

/// loom primitives with the API of `parking_lot` (locks) and `std` (atomics, `Arc`).
pub mod sync {
    use std::ops::{Deref, DerefMut};
    use std::time::Duration;

    pub use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use loom::sync::Arc;

    /// A mutex whose `lock` returns the guard directly (no poisoning), as `parking_lot`'s.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    /// A held [`Mutex`]; the inner guard is absent only while a [`Condvar`] waits with it.
    pub struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }

        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|g| MutexGuard(Some(g)))
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard held")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard held")
        }
    }

    /// A reader-writer lock whose `read` and `write` return the guards directly, as
    /// `parking_lot`'s.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub fn new(value: T) -> Self {
            RwLock(loom::sync::RwLock::new(value))
        }

        pub fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// Result of a timed wait; under loom a wait never times out.
    #[derive(Debug, Clone, Copy)]
    pub struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub fn timed_out(&self) -> bool {
            self.0
        }
    }

    /// A condition variable waiting on a `&mut` guard, as `parking_lot`'s.
    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard held");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        /// Waits for a notification; loom does not model time, so this never times out.
        pub fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _timeout: Duration,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

/// Runs `f` under every interleaving loom explores and returns how many it ran. The
/// preemption bound is `LOOM_MAX_PREEMPTIONS` when set, else `default_preemptions` (the bound
/// the regular test run can afford); `LOOM_MAX_BRANCHES`, `LOOM_MAX_DURATION` and the other loom
/// variables apply as usual. Prints the count and the time taken (seen with `--nocapture`).
pub fn model<F>(name: &str, default_preemptions: usize, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(default_preemptions);
    }
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&runs);
    let start = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    let runs = runs.load(Ordering::Relaxed);
    eprintln!(
        "loom {name}: {runs} interleavings, preemption bound {:?}, {:.1?}",
        builder.preemption_bound,
        start.elapsed()
    );
    runs
}
