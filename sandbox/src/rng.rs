//! A tiny seeded PRNG (SplitMix64) for fault probabilities and generated tokens.
//!
//! Seeded from `SandboxOptions::seed`, so a failing fault test replays the same dice. Not for
//! anything secret: the sandbox's tokens only have to be unguessable by accident.

use std::sync::Mutex;

#[derive(Debug)]
pub(crate) struct Rng {
    state: Mutex<u64>,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng {
            state: Mutex::new(seed),
        }
    }

    pub(crate) fn next_u64(&self) -> u64 {
        let mut s = self.state.lock().expect("rng lock");
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` random bytes as lowercase hex.
    pub(crate) fn hex(&self, n: usize) -> String {
        let mut out = String::with_capacity(n * 2);
        while out.len() < n * 2 {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(n * 2);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let a = Rng::new(7);
        let b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let f = a.next_f64();
        assert!((0.0..1.0).contains(&f));
        assert_eq!(a.hex(5).len(), 10);
    }
}
