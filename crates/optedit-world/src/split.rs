//! Train / held-out seed ranges.

use serde::{Deserialize, Serialize};

/// The bit that marks a held-out seed.
pub const HELD_OUT_BIT: u64 = 1 << 63;

/// Which part of the world a scene belongs to.
///
/// Seeds are split by their top bit: training scenes use seeds below
/// `2^63`, held-out scenes seeds at or above it. The two sets never share a
/// seed, so evaluating on [`Split::HeldOut`] never shows the model a scene it
/// was trained on (it may still see a scene *like* it: the world is small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Seeds `0 .. 2^63`.
    Train,
    /// Seeds `2^63 ..= u64::MAX`.
    HeldOut,
}

impl Split {
    /// The split a seed belongs to.
    pub fn of(seed: u64) -> Split {
        if seed & HELD_OUT_BIT == 0 {
            Split::Train
        } else {
            Split::HeldOut
        }
    }
}

/// The seed of scene number `index` of `split` (the index is taken modulo `2^63`).
pub fn scene_seed(split: Split, index: u64) -> u64 {
    let low = index & !HELD_OUT_BIT;
    match split {
        Split::Train => low,
        Split::HeldOut => low | HELD_OUT_BIT,
    }
}

/// SplitMix64 mixing of several words into one seed: how the training and
/// evaluation crates derive the seed of one item of a seeded run (a scene,
/// a batch, a case) from the run's seed and the item's numbers.
pub fn mix(words: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &w in words {
        h ^= w
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(h << 6)
            .wrapping_add(h >> 2);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_disjoint() {
        for i in [0, 1, 12345, u64::MAX >> 1] {
            let (t, h) = (scene_seed(Split::Train, i), scene_seed(Split::HeldOut, i));
            assert_ne!(t, h);
            assert_eq!(Split::of(t), Split::Train);
            assert_eq!(Split::of(h), Split::HeldOut);
        }
    }

    #[test]
    fn mixing_is_stable() {
        // Committed case files and reports depend on these values.
        assert_eq!(mix(&[]), 0x9E37_79B9_7F4A_7C15);
        assert_ne!(mix(&[1, 2]), mix(&[2, 1]));
        assert_eq!(mix(&[7, 3]), 0x3437_6b3c_3e02_6d5a);
    }
}
