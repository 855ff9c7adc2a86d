//! The hasher of the consumer's per-event tables: a multiply per word
//! where std's SipHash took 4% of the consumer's time.
//!
//! Keys are kernel addresses (8-byte aligned or more) and user_data values
//! chosen by the traced process, so: the multiply is folded (high half into
//! low half), else aligned pointers would share their low bits, which pick
//! the bucket; and the state starts from a per-process random seed, so a
//! traced process cannot precompute user_data values that collide.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::OnceLock,
};

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;
/// A `HashSet` with [`FastState`].
pub type FastSet<K> = std::collections::HashSet<K, FastState>;

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Builds [`FastHasher`]s from this process's seed.
#[derive(Clone, Copy, Debug)]
pub struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        Self {
            seed: *SEED.get_or_init(|| RandomState::new().hash_one(0x7572_696e_6774_7261_u64)),
        }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.seed)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = folded_multiply(self.0 ^ n, MULTIPLIER);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_pointers_spread_over_low_bits() {
        // Requests of one ring: 256-byte-aligned addresses. With 1024
        // buckets, nearly all must land in different ones.
        let state = FastState::default();
        let ring = 0xffff_8881_0a2c_3000_u64;
        let mut buckets = std::collections::HashSet::new();
        for i in 0..1024u64 {
            let req = 0xffff_8881_2000_0000 + i * 256;
            buckets.insert(state.hash_one((ring, req)) & 1023);
        }
        assert!(buckets.len() > 500, "{} buckets of 1024", buckets.len());
    }

    #[test]
    fn same_key_same_hash_different_keys_differ() {
        let state = FastState::default();
        assert_eq!(state.hash_one((1u64, 2u64)), state.hash_one((1u64, 2u64)));
        assert_ne!(state.hash_one((1u64, 2u64)), state.hash_one((2u64, 1u64)));
        assert_ne!(state.hash_one("ab"), state.hash_one("ba"));
    }
}
