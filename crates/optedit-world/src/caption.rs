//! Captions: a small regular English grammar, and its parser.
//!
//! ```text
//! caption  := objects " on a " bgcolour " " pattern " background, a figure " pose
//! objects  := phrase | phrase " and " phrase | phrase ", " phrase " and " phrase
//! phrase   := "a " colour " " shape
//! ```
//!
//! Objects are listed left to right. For example "a red circle and a blue
//! square on a green striped background, a figure with raised arms".

use crate::background::PatternKind;
use crate::colour::{BackgroundColour, Colour};
use crate::error::{Result, WorldError};
use crate::figure::PoseClass;
use crate::shape::Shape;
use crate::spec::SceneSpec;

/// What a caption says, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionParts {
    /// The objects' colours and shapes, left to right.
    pub objects: Vec<(Colour, Shape)>,
    /// The background colour.
    pub background: BackgroundColour,
    /// The background pattern.
    pub pattern: PatternKind,
    /// The figure's pose.
    pub pose: PoseClass,
}

impl CaptionParts {
    /// What the caption of `spec` says (without building the string).
    pub fn of(spec: &SceneSpec) -> CaptionParts {
        CaptionParts {
            objects: spec
                .left_to_right()
                .into_iter()
                .map(|i| (spec.objects[i].colour, spec.objects[i].shape))
                .collect(),
            background: spec.background.colour,
            pattern: spec.background.pattern.kind(),
            pose: spec.figure.pose,
        }
    }
}

/// Joins phrases as English lists: "a", "a and b", "a, b and c".
fn join_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

impl SceneSpec {
    /// The scene's caption, e.g. "a yellow star, a purple triangle and a green
    /// circle on a gray mottled background, a figure waving" (objects left to
    /// right). Deterministic.
    pub fn caption(&self) -> String {
        let phrases: Vec<String> = self
            .left_to_right()
            .into_iter()
            .map(|i| self.objects[i].phrase())
            .collect();
        let background = format!(
            "a {} {} background",
            self.background.colour.word(),
            self.background.pattern.kind().word()
        );
        let scene = if phrases.is_empty() {
            background
        } else {
            format!("{} on {background}", join_list(&phrases))
        };
        format!("{scene}, a figure {}", self.figure.pose.phrase())
    }
}

fn caption_error(text: &str, reason: impl Into<String>) -> WorldError {
    WorldError::Caption {
        text: text.to_owned(),
        reason: reason.into(),
    }
}

/// Parses an object phrase, "a red circle" (ASCII case-insensitive).
pub fn parse_object_phrase(phrase: &str) -> Result<(Colour, Shape)> {
    let words: Vec<&str> = phrase.split_whitespace().collect();
    match words.as_slice() {
        [a, colour, shape] if a.eq_ignore_ascii_case("a") => {
            Ok((Colour::from_word(colour)?, Shape::from_word(shape)?))
        }
        _ => Err(caption_error(phrase, "expected \"a <colour> <shape>\"")),
    }
}

/// Parses a caption written by [`SceneSpec::caption`] (ASCII case-insensitive,
/// whitespace-tolerant).
pub fn parse_caption(caption: &str) -> Result<CaptionParts> {
    let text = caption
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    let (scene, pose) = text
        .rsplit_once(", a figure ")
        .ok_or_else(|| caption_error(caption, "no \", a figure ...\" clause"))?;
    let pose = PoseClass::from_phrase(pose)?;
    let scene = scene
        .strip_suffix(" background")
        .ok_or_else(|| caption_error(caption, "no \"... background\""))?;
    let (objects, background) = match scene.rsplit_once(" on a ") {
        Some((objects, background)) => (Some(objects), background),
        None => (None, scene.strip_prefix("a ").unwrap_or(scene)),
    };
    let (colour, pattern) = match background.split_whitespace().collect::<Vec<_>>().as_slice() {
        [c, p] => (BackgroundColour::from_word(c)?, PatternKind::from_word(p)?),
        _ => {
            return Err(caption_error(
                caption,
                "expected \"<colour> <pattern> background\"",
            ))
        }
    };
    let mut phrases = Vec::new();
    if let Some(objects) = objects {
        let (init, last) = match objects.rsplit_once(" and ") {
            Some((init, last)) => (Some(init), last),
            None => (None, objects),
        };
        if let Some(init) = init {
            phrases.extend(init.split(", "));
        }
        phrases.push(last);
    }
    let objects = phrases
        .into_iter()
        .map(parse_object_phrase)
        .collect::<Result<Vec<_>>>()?;
    Ok(CaptionParts {
        objects,
        background: colour,
        pattern,
        pose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_english() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(join_list(&s(&["a"])), "a");
        assert_eq!(join_list(&s(&["a", "b"])), "a and b");
        assert_eq!(join_list(&s(&["a", "b", "c"])), "a, b and c");
    }

    #[test]
    fn parses_the_documented_examples() {
        let p = parse_caption(
            "a red circle and a blue square on a green striped background, a figure with raised arms",
        )
        .unwrap();
        assert_eq!(
            p.objects,
            vec![(Colour::Red, Shape::Circle), (Colour::Blue, Shape::Square)]
        );
        assert_eq!(p.background, BackgroundColour::Green);
        assert_eq!(p.pattern, PatternKind::Striped);
        assert_eq!(p.pose, PoseClass::ArmsUp);
        let p = parse_caption(
            "a yellow star, a purple triangle and a green circle on a gray mottled background, a figure waving",
        )
        .unwrap();
        assert_eq!(p.objects.len(), 3);
        assert_eq!(p.pose, PoseClass::Waving);
        assert!(parse_caption("a red circle").is_err());
        assert!(parse_caption("a red blob on a gray mottled background, a figure waving").is_err());
    }
}
