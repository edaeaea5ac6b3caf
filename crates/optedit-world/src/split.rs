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
}
