//! Backgrounds: a smooth pattern blending the two shades of a muted colour.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::colour::BackgroundColour;
use crate::error::{Result, WorldError};
use crate::math::{self, Vec2};
use crate::IMAGE_SIZE;

/// Side of the value-noise grid of [`Pattern::Noise`] (lattice points per axis).
pub const NOISE_GRID: usize = 5;

/// Smallest stripe period in pixels that [`SceneSpec::sample`](crate::SceneSpec::sample)
/// draws (the largest is 24).
pub const MIN_STRIPE_PERIOD: f32 = 12.0;

/// Number of pattern kinds.
pub const NUM_PATTERNS: usize = 3;

/// How the two shades are laid out. Every pattern is smooth (no edge sharper
/// than a raised cosine of period >= 12 px), so a small VAE reconstructs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// Raised-cosine stripes: the shade varies as `cos` along `angle`.
    Stripes {
        /// Direction across the stripes, degrees (0 = along x, 90 = along y).
        angle: f32,
        /// Distance between two dark stripes, pixels.
        period: f32,
    },
    /// A linear ramp from dark to light across the image along `angle`.
    Gradient {
        /// Direction of increasing lightness, degrees (0 = along x, 90 = along y).
        angle: f32,
    },
    /// Smooth value noise: a `NOISE_GRID x NOISE_GRID` lattice of random
    /// blends, interpolated with smoothstep weights.
    Noise {
        /// Seed of the lattice values.
        grid_seed: u64,
    },
}

/// The kind of a [`Pattern`], without its parameters: what a caption names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// [`Pattern::Stripes`], "striped".
    Striped,
    /// [`Pattern::Gradient`], "gradient".
    Gradient,
    /// [`Pattern::Noise`], "mottled".
    Mottled,
}

impl PatternKind {
    /// Every kind, in [`index`](Self::index) order.
    pub const ALL: [PatternKind; NUM_PATTERNS] = [
        PatternKind::Striped,
        PatternKind::Gradient,
        PatternKind::Mottled,
    ];

    /// Stable class index in `0..NUM_PATTERNS`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The caption word ("striped").
    pub fn word(self) -> &'static str {
        match self {
            PatternKind::Striped => "striped",
            PatternKind::Gradient => "gradient",
            PatternKind::Mottled => "mottled",
        }
    }

    /// Parses a caption word (ASCII case-insensitive).
    pub fn from_word(word: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.word().eq_ignore_ascii_case(word.trim()))
            .ok_or_else(|| WorldError::UnknownWord {
                kind: "pattern",
                word: word.to_owned(),
            })
    }
}

impl Pattern {
    /// The kind a caption names.
    pub fn kind(&self) -> PatternKind {
        match self {
            Pattern::Stripes { .. } => PatternKind::Striped,
            Pattern::Gradient { .. } => PatternKind::Gradient,
            Pattern::Noise { .. } => PatternKind::Mottled,
        }
    }
}

/// A scene's background.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Background {
    /// The muted colour whose two shades are blended.
    pub colour: BackgroundColour,
    /// How they are blended.
    pub pattern: Pattern,
}

fn smoothstep(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

impl Background {
    /// Fills `out` (row-major RGB, `IMAGE_SIZE^2` pixels) with the background.
    pub(crate) fn fill(&self, out: &mut [[f32; 3]]) {
        let n = IMAGE_SIZE as usize;
        let (dark, light) = (self.colour.dark(), self.colour.light());
        let dark = dark.map(f32::from);
        let delta = [0, 1, 2].map(|c| f32::from(light[c]) - dark[c]);
        let centre = 0.5 * IMAGE_SIZE as f32;
        let at =
            |x: usize, y: usize| -> Vec2 { (x as f32 + 0.5 - centre, y as f32 + 0.5 - centre) };
        // t in [0, 1]: 0 = dark shade, 1 = light shade.
        let mut blend: Box<dyn FnMut(usize, usize) -> f32> = match &self.pattern {
            Pattern::Stripes { angle, period } => {
                let (dx, dy) = math::direction(*angle);
                let period = period.max(1.0);
                Box::new(move |x, y| {
                    let p = at(x, y);
                    let phase = f64::from((p.0 * dx + p.1 * dy) / period);
                    (0.5 - 0.5 * math::cos_turns(phase)) as f32
                })
            }
            Pattern::Gradient { angle } => {
                let (dx, dy) = math::direction(*angle);
                let extent = IMAGE_SIZE as f32 * (dx.abs() + dy.abs());
                Box::new(move |x, y| {
                    let p = at(x, y);
                    (0.5 + (p.0 * dx + p.1 * dy) / extent).clamp(0.0, 1.0)
                })
            }
            Pattern::Noise { grid_seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*grid_seed);
                let mut grid = [[0.0f32; NOISE_GRID]; NOISE_GRID];
                for row in &mut grid {
                    for v in row {
                        *v = math::unit(&mut rng);
                    }
                }
                let cells = (NOISE_GRID - 1) as f32;
                Box::new(move |x, y| {
                    let u = (x as f32 + 0.5) / IMAGE_SIZE as f32 * cells;
                    let v = (y as f32 + 0.5) / IMAGE_SIZE as f32 * cells;
                    let (i, j) = (
                        (u as usize).min(NOISE_GRID - 2),
                        (v as usize).min(NOISE_GRID - 2),
                    );
                    let (fu, fv) = (smoothstep(u - i as f32), smoothstep(v - j as f32));
                    let top = grid[j][i] + (grid[j][i + 1] - grid[j][i]) * fu;
                    let bottom = grid[j + 1][i] + (grid[j + 1][i + 1] - grid[j + 1][i]) * fu;
                    top + (bottom - top) * fv
                })
            }
        };
        for y in 0..n {
            for x in 0..n {
                let t = blend(x, y);
                out[y * n + x] = [0, 1, 2].map(|c| dark[c] + delta[c] * t);
            }
        }
    }
}
