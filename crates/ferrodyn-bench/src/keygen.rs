//! Key choosers: a fast PRNG and YCSB-style uniform, scrambled-zipfian and
//! skewed-latest distributions.
//!
//! Owns: turning random numbers into key indices.
//!
//! Invariants:
//! - Every chooser returns an index in `[0, n)` for its current key count `n >= 1`
//!   (the latest chooser's `n` is the shared insert counter, which only grows).
//! - The zipfian math follows YCSB's generator (Gray et al., "Quickly generating
//!   billion-record synthetic databases"): theta 0.99, scrambled over a fixed
//!   10-billion item space and then folded onto the key space with FNV-1a-64, so
//!   popular keys are spread over the key space instead of clustered at 0.
//! - Choosers never allocate after construction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// YCSB's zipfian constant.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;
/// Item space of YCSB's scrambled zipfian generator.
const SCRAMBLED_ITEM_COUNT: u64 = 10_000_000_000;
/// zeta(10_000_000_000, 0.99), as published with YCSB's scrambled generator.
const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

/// SplitMix64: tiny, fast and statistically adequate for load generation.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)`; `n == 0` yields 0.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift reduction: bias is negligible for load generation.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// zeta(n, theta) = sum_{i=1..n} 1 / i^theta, continued from a known partial sum.
pub fn zeta_from(start: u64, end: u64, theta: f64, initial: f64) -> f64 {
    let mut sum = initial;
    for i in start..end {
        sum += 1.0 / ((i + 1) as f64).powf(theta);
    }
    sum
}

/// YCSB zipfian generator over `[0, items)`, able to grow `items` incrementally.
#[derive(Clone, Debug)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    zeta2: f64,
    eta: f64,
    half_pow_theta: f64,
}

impl Zipfian {
    /// `zetan` must be zeta(items, theta) (see [`zeta_from`]).
    pub fn with_zetan(items: u64, theta: f64, zetan: f64) -> Self {
        let items = items.max(1);
        let zeta2 = zeta_from(0, 2, theta, 0.0);
        let mut z = Zipfian {
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            zeta2,
            eta: 0.0,
            half_pow_theta: 0.5f64.powf(theta),
        };
        z.eta = z.compute_eta();
        z
    }

    pub fn new(items: u64, theta: f64) -> Self {
        Self::with_zetan(items, theta, zeta_from(0, items.max(1), theta, 0.0))
    }

    fn compute_eta(&self) -> f64 {
        (1.0 - (2.0 / self.items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zetan)
    }

    /// Grows the item space to `items` (never shrinks), updating zeta incrementally.
    pub fn grow_to(&mut self, items: u64) {
        if items > self.items {
            self.zetan = zeta_from(self.items, items, self.theta, self.zetan);
            self.items = items;
            self.eta = self.compute_eta();
        }
    }

    /// Next value in `[0, items)`; 0 is the most popular.
    #[inline]
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        let u = rng.next_f64();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta {
            return 1.min(self.items - 1);
        }
        let v = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(self.items - 1)
    }
}

/// YCSB's 64-bit FNV hash over the 8 little-endian bytes of `v`.
#[inline]
pub fn fnv_hash64(v: u64) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    let mut v = v;
    for _ in 0..8 {
        hash ^= v & 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
        v >>= 8;
    }
    hash
}

/// Key distribution requested on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Distribution {
    Uniform,
    Zipfian,
    Latest,
}

impl Distribution {
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Zipfian => "zipfian",
            Distribution::Latest => "latest",
        }
    }
}

/// Per-worker key chooser.
#[derive(Clone, Debug)]
pub enum KeyChooser {
    Uniform {
        n: u64,
    },
    /// Scrambled zipfian over `[0, n)`.
    Zipfian {
        n: u64,
        zipf: Zipfian,
    },
    /// Skewed towards the most recently inserted key of `inserted`.
    Latest {
        inserted: Arc<AtomicU64>,
        zipf: Zipfian,
    },
}

impl KeyChooser {
    /// Builds a chooser over `keys` keys. For `Latest`, `inserted` is the shared
    /// count of keys that exist (starts at `keys`, grows with inserts) and
    /// `zeta_keys` is zeta(keys, 0.99), precomputed once for all workers.
    pub fn new(dist: Distribution, keys: u64, inserted: Arc<AtomicU64>, zeta_keys: f64) -> Self {
        let keys = keys.max(1);
        match dist {
            Distribution::Uniform => KeyChooser::Uniform { n: keys },
            Distribution::Zipfian => KeyChooser::Zipfian {
                n: keys,
                zipf: Zipfian::with_zetan(SCRAMBLED_ITEM_COUNT, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN),
            },
            Distribution::Latest => KeyChooser::Latest {
                inserted,
                zipf: Zipfian::with_zetan(keys, ZIPFIAN_CONSTANT, zeta_keys),
            },
        }
    }

    #[inline]
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        match self {
            KeyChooser::Uniform { n } => rng.below(*n),
            KeyChooser::Zipfian { n, zipf } => fnv_hash64(zipf.next(rng)) % *n,
            KeyChooser::Latest { inserted, zipf } => {
                let max = inserted.load(Ordering::Relaxed).max(1);
                zipf.grow_to(max);
                let back = zipf.next(rng).min(max - 1);
                max - 1 - back
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(chooser: &mut KeyChooser, n: usize, draws: usize) -> Vec<u64> {
        let mut rng = Rng::new(7);
        let mut c = vec![0u64; n];
        for _ in 0..draws {
            let k = chooser.next(&mut rng) as usize;
            assert!(k < n, "key {k} out of range {n}");
            c[k] += 1;
        }
        c
    }

    #[test]
    fn scrambled_zipfian_in_range_and_skewed() {
        let n = 1000;
        let mut ch = KeyChooser::new(Distribution::Zipfian, n as u64, Arc::default(), 0.0);
        let draws = 200_000;
        let mut c = counts(&mut ch, n, draws);
        c.sort_unstable_by(|a, b| b.cmp(a));
        // The 10 hottest keys of 1000 (1%) take many times their uniform share
        // (scrambling over a 10-billion item space flattens the head somewhat).
        let top10: u64 = c[..10].iter().sum();
        assert!(top10 as f64 > 0.08 * draws as f64, "top10 = {top10}");
        // And the hottest key is much hotter than the uniform expectation (200).
        assert!(c[0] > 2000, "hottest = {}", c[0]);
    }

    #[test]
    fn plain_zipfian_in_range_and_head_heavy() {
        let mut z = Zipfian::new(100, ZIPFIAN_CONSTANT);
        let mut rng = Rng::new(1);
        let mut c = [0u64; 100];
        for _ in 0..100_000 {
            let v = z.next(&mut rng);
            assert!(v < 100);
            c[v as usize] += 1;
        }
        assert!(c[0] > c[10] && c[10] > c[90], "{c:?}");
    }

    #[test]
    fn zipfian_edge_sizes_stay_in_range() {
        let mut rng = Rng::new(3);
        for n in [1u64, 2, 3] {
            let mut z = Zipfian::new(n, ZIPFIAN_CONSTANT);
            for _ in 0..10_000 {
                assert!(z.next(&mut rng) < n);
            }
        }
    }

    #[test]
    fn latest_prefers_recent_keys_and_follows_inserts() {
        let inserted = Arc::new(AtomicU64::new(1000));
        let zeta = zeta_from(0, 1000, ZIPFIAN_CONSTANT, 0.0);
        let mut ch = KeyChooser::new(Distribution::Latest, 1000, inserted.clone(), zeta);
        let c = counts(&mut ch, 1000, 50_000);
        let recent: u64 = c[900..].iter().sum();
        assert!(recent > 25_000, "recent = {recent}");
        inserted.store(2000, Ordering::Relaxed);
        let c = counts(&mut ch, 2000, 50_000);
        let recent: u64 = c[1900..].iter().sum();
        assert!(recent > 25_000, "recent after growth = {recent}");
        assert!(c[1999] > 0);
    }

    #[test]
    fn uniform_in_range_and_flat() {
        let mut ch = KeyChooser::new(Distribution::Uniform, 10, Arc::default(), 0.0);
        let c = counts(&mut ch, 10, 100_000);
        assert!(c.iter().all(|&x| x > 8_000 && x < 12_000), "{c:?}");
    }

    #[test]
    fn incremental_zeta_matches_direct() {
        let direct = zeta_from(0, 5000, ZIPFIAN_CONSTANT, 0.0);
        let inc = zeta_from(
            1000,
            5000,
            ZIPFIAN_CONSTANT,
            zeta_from(0, 1000, ZIPFIAN_CONSTANT, 0.0),
        );
        assert!((direct - inc).abs() < 1e-9);
    }
}
