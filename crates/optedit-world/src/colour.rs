//! Object colours (saturated) and background colours (muted).

use serde::{Deserialize, Serialize};

use crate::error::{Result, WorldError};

/// Number of object colours.
pub const NUM_COLOURS: usize = 5;

/// Number of background colours.
pub const NUM_BACKGROUND_COLOURS: usize = 5;

/// The colour of an object: saturated and well separated in RGB from each
/// other, from every background shade and from the figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    /// RGB (220, 40, 40).
    Red,
    /// RGB (40, 180, 60).
    Green,
    /// RGB (40, 80, 220).
    Blue,
    /// RGB (235, 210, 40).
    Yellow,
    /// RGB (150, 60, 190).
    Purple,
}

impl Colour {
    /// Every colour, in [`index`](Self::index) order.
    pub const ALL: [Colour; NUM_COLOURS] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Purple,
    ];

    /// Stable class index in `0..NUM_COLOURS`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The sRGB value drawn.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 40, 40],
            Colour::Green => [40, 180, 60],
            Colour::Blue => [40, 80, 220],
            Colour::Yellow => [235, 210, 40],
            Colour::Purple => [150, 60, 190],
        }
    }

    /// The caption word ("red").
    pub fn word(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Purple => "purple",
        }
    }

    /// Parses a caption word (ASCII case-insensitive).
    pub fn from_word(word: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.word().eq_ignore_ascii_case(word.trim()))
            .ok_or_else(|| WorldError::UnknownWord {
                kind: "colour",
                word: word.to_owned(),
            })
    }
}

/// The colour family of a background: a muted (low-saturation, light) hue
/// drawn as two shades, [`dark`](Self::dark) and [`light`](Self::light).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundColour {
    /// Shades (150, 150, 150) and (205, 205, 205).
    Gray,
    /// Shades (145, 172, 140) and (205, 222, 200).
    Green,
    /// Shades (142, 156, 188) and (200, 210, 232).
    Blue,
    /// Shades (190, 165, 130) and (236, 220, 196).
    Beige,
    /// Shades (192, 150, 168) and (236, 210, 222).
    Pink,
}

impl BackgroundColour {
    /// Every background colour, in [`index`](Self::index) order.
    pub const ALL: [BackgroundColour; NUM_BACKGROUND_COLOURS] = [
        BackgroundColour::Gray,
        BackgroundColour::Green,
        BackgroundColour::Blue,
        BackgroundColour::Beige,
        BackgroundColour::Pink,
    ];

    /// Stable class index in `0..NUM_BACKGROUND_COLOURS`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The darker of the two shades.
    pub fn dark(self) -> [u8; 3] {
        match self {
            BackgroundColour::Gray => [150, 150, 150],
            BackgroundColour::Green => [145, 172, 140],
            BackgroundColour::Blue => [142, 156, 188],
            BackgroundColour::Beige => [190, 165, 130],
            BackgroundColour::Pink => [192, 150, 168],
        }
    }

    /// The lighter of the two shades.
    pub fn light(self) -> [u8; 3] {
        match self {
            BackgroundColour::Gray => [205, 205, 205],
            BackgroundColour::Green => [205, 222, 200],
            BackgroundColour::Blue => [200, 210, 232],
            BackgroundColour::Beige => [236, 220, 196],
            BackgroundColour::Pink => [236, 210, 222],
        }
    }

    /// The caption word ("gray").
    pub fn word(self) -> &'static str {
        match self {
            BackgroundColour::Gray => "gray",
            BackgroundColour::Green => "green",
            BackgroundColour::Blue => "blue",
            BackgroundColour::Beige => "beige",
            BackgroundColour::Pink => "pink",
        }
    }

    /// Parses a caption word (ASCII case-insensitive; "grey" is accepted).
    pub fn from_word(word: &str) -> Result<Self> {
        let w = word.trim();
        if w.eq_ignore_ascii_case("grey") {
            return Ok(BackgroundColour::Gray);
        }
        Self::ALL
            .into_iter()
            .find(|c| c.word().eq_ignore_ascii_case(w))
            .ok_or_else(|| WorldError::UnknownWord {
                kind: "background colour",
                word: word.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: [u8; 3], b: [u8; 3]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(&x, y)| (f32::from(x) - f32::from(y)).powi(2))
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn colours_are_well_separated() {
        for a in Colour::ALL {
            for b in Colour::ALL {
                if a != b {
                    assert!(distance(a.rgb(), b.rgb()) > 100.0, "{a:?} vs {b:?}");
                }
            }
            for bg in BackgroundColour::ALL {
                for shade in [bg.dark(), bg.light()] {
                    assert!(distance(a.rgb(), shade) > 90.0, "{a:?} on {bg:?}");
                }
            }
        }
        for bg in BackgroundColour::ALL {
            for shade in [bg.dark(), bg.light()] {
                assert!(
                    distance(crate::FIGURE_RGB, shade) > 180.0,
                    "figure on {bg:?}"
                );
            }
        }
    }

    #[test]
    fn words_round_trip_and_indices_are_stable() {
        for (i, c) in Colour::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(Colour::from_word(c.word()).unwrap(), c);
        }
        for (i, c) in BackgroundColour::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(BackgroundColour::from_word(c.word()).unwrap(), c);
        }
        assert!(Colour::from_word("teal").is_err());
    }
}
