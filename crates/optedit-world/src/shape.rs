//! Object shapes and their outlines in pixels.

use serde::{Deserialize, Serialize};

use crate::error::{Result, WorldError};
use crate::math::{self, Vec2};

/// Number of object shapes.
pub const NUM_SHAPES: usize = 5;

/// How far any shape reaches from its centre, as a fraction of its size: the
/// largest circumradius over all shapes (triangle, star and diamond). Objects
/// are placed with this reach whatever their shape, so a shape edit never makes
/// an object overlap another one or the figure, or leave the image.
pub const REACH: f32 = 0.62;

/// The shape of an object. A shape of size `s` (see `Object::size`) is drawn
/// upright, centred on the object's centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A disc of diameter `s`.
    Circle,
    /// An axis-aligned square of side `0.85 s`.
    Square,
    /// An equilateral triangle pointing up, circumradius `0.62 s`, centred on
    /// its centroid.
    Triangle,
    /// A five-pointed star pointing up, outer radius `0.62 s`, inner radius
    /// `0.3 s`.
    Star,
    /// A rhombus with vertical diagonal `1.24 s` and horizontal diagonal `0.96 s`.
    Diamond,
}

/// A shape placed in the image, ready to rasterise.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outline {
    /// Centre and radius.
    Disc(Vec2, f32),
    /// Vertices of a simple polygon.
    Polygon(Vec<Vec2>),
}

impl Outline {
    /// Signed distance in pixels, negative inside.
    pub(crate) fn sd(&self, p: Vec2) -> f32 {
        match self {
            Outline::Disc(c, r) => math::point_distance(p, *c) - r,
            Outline::Polygon(v) => math::polygon_sd(p, v),
        }
    }

    /// Exact area in square pixels.
    pub(crate) fn area(&self) -> f32 {
        match self {
            Outline::Disc(_, r) => std::f32::consts::PI * r * r,
            Outline::Polygon(v) => math::polygon_area(v),
        }
    }

    /// Perimeter in pixels.
    #[cfg(test)]
    pub(crate) fn perimeter(&self) -> f32 {
        match self {
            Outline::Disc(_, r) => 2.0 * std::f32::consts::PI * r,
            Outline::Polygon(v) => (0..v.len())
                .map(|i| math::point_distance(v[i], v[(i + 1) % v.len()]))
                .sum(),
        }
    }
}

impl Shape {
    /// Every shape, in [`index`](Self::index) order.
    pub const ALL: [Shape; NUM_SHAPES] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Star,
        Shape::Diamond,
    ];

    /// Stable class index in `0..NUM_SHAPES`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The caption word ("circle").
    pub fn word(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
            Shape::Diamond => "diamond",
        }
    }

    /// Parses a caption word (ASCII case-insensitive).
    pub fn from_word(word: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.word().eq_ignore_ascii_case(word.trim()))
            .ok_or_else(|| WorldError::UnknownWord {
                kind: "shape",
                word: word.to_owned(),
            })
    }

    /// The outline of this shape of `size` centred at `c`.
    pub(crate) fn outline(self, c: Vec2, size: f32) -> Outline {
        let at = |r: f32, turns: f64| {
            // turns = 0 points up (-y).
            let (dx, dy) = (
                math::sin_turns(turns) as f32,
                -math::cos_turns(turns) as f32,
            );
            (c.0 + r * dx, c.1 + r * dy)
        };
        match self {
            Shape::Circle => Outline::Disc(c, 0.5 * size),
            Shape::Square => {
                let h = 0.425 * size;
                Outline::Polygon(vec![
                    (c.0 - h, c.1 - h),
                    (c.0 + h, c.1 - h),
                    (c.0 + h, c.1 + h),
                    (c.0 - h, c.1 + h),
                ])
            }
            Shape::Triangle => {
                let r = REACH * size;
                Outline::Polygon((0..3).map(|k| at(r, f64::from(k) / 3.0)).collect())
            }
            Shape::Star => {
                let (outer, inner) = (REACH * size, 0.3 * size);
                Outline::Polygon(
                    (0..10)
                        .map(|k| at(if k % 2 == 0 { outer } else { inner }, f64::from(k) / 10.0))
                        .collect(),
                )
            }
            Shape::Diamond => {
                let (w, h) = (0.48 * size, REACH * size);
                Outline::Polygon(vec![
                    (c.0, c.1 - h),
                    (c.0 + w, c.1),
                    (c.0, c.1 + h),
                    (c.0 - w, c.1),
                ])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_stays_within_its_reach() {
        for shape in Shape::ALL {
            let o = shape.outline((50.0, 50.0), 40.0);
            let r = REACH * 40.0;
            // Sample a ring just outside the reach: all outside.
            for k in 0..360 {
                let t = f64::from(k) / 360.0;
                let p = (
                    50.0 + (r + 0.01) * math::cos_turns(t) as f32,
                    50.0 + (r + 0.01) * math::sin_turns(t) as f32,
                );
                assert!(o.sd(p) >= 0.0, "{shape:?} reaches past {r}");
            }
            assert!(o.sd((50.0, 50.0)) < 0.0, "{shape:?} centre inside");
            assert!(o.area() > 0.4 * 40.0 * 40.0, "{shape:?} area {}", o.area());
        }
    }

    #[test]
    fn words_round_trip() {
        for (i, s) in Shape::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(Shape::from_word(s.word()).unwrap(), s);
        }
        assert!(Shape::from_word("hexagon").is_err());
    }
}
