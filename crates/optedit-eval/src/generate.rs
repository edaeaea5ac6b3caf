//! Deterministic case generation on held-out world scenes.

use optedit_train::data::mix;
use optedit_world::{
    scene_seed, Colour, PoseClass, SampleOptions, SceneSpec, Shape, Split, MAX_OBJECTS,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cases::{Case, CaseEdit, CaseKind, ControlName, MaskSpec};
use crate::error::{EvalError, Result};

/// Held-out scene indices of generated cases are drawn below this; the
/// other held-out users (references, quality) sit above it, so they never
/// share a scene with a case.
pub const CASE_INDEX_LIMIT: u64 = 1 << 40;

/// Options of [`make_cases`].
#[derive(Debug, Clone, PartialEq)]
pub struct MakeOptions {
    /// Number of cases.
    pub count: usize,
    /// Seed of the draw (the same seed gives the same cases).
    pub seed: u64,
    /// Kinds, cycled in order (case `i` is of kind `kinds[i % len]`).
    pub kinds: Vec<CaseKind>,
    /// The mask every case asks for.
    pub mask: MaskSpec,
}

impl Default for MakeOptions {
    fn default() -> Self {
        Self {
            count: 200,
            seed: 0,
            kinds: CaseKind::ALL.to_vec(),
            mask: MaskSpec::True,
        }
    }
}

fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

fn other<T: Copy + PartialEq>(rng: &mut ChaCha8Rng, all: &[T], not: &[T]) -> T {
    let choices: Vec<T> = all.iter().copied().filter(|x| !not.contains(x)).collect();
    choices[below(rng, choices.len())]
}

/// One case of `kind` from `rng`: a held-out scene with 1 to 3 objects;
/// text edits change the colour (to one no other object has) or the shape
/// of one object; pose edits change the pose class and condition on the
/// pose ControlNet; text + pose does both.
fn make_case(rng: &mut ChaCha8Rng, id: String, kind: CaseKind, mask: MaskSpec) -> Case {
    loop {
        let seed = scene_seed(Split::HeldOut, rng.next_u64() % CASE_INDEX_LIMIT);
        let objects = 1 + below(rng, MAX_OBJECTS);
        // A forced count fails for very few seeds; those are redrawn.
        let Ok(spec) = SceneSpec::sample_with(
            seed,
            &SampleOptions {
                objects: Some(objects),
            },
        ) else {
            continue;
        };
        let mut edit = CaseEdit::default();
        if kind != CaseKind::Pose {
            let i = below(rng, spec.objects.len());
            let o = &spec.objects[i];
            edit.object = Some(i);
            if rng.next_u32() % 2 == 0 {
                let used: Vec<Colour> = spec.objects.iter().map(|o| o.colour).collect();
                edit.colour = Some(other(rng, &Colour::ALL, &used));
            } else {
                edit.shape = Some(other::<Shape>(rng, &Shape::ALL, &[o.shape]));
            }
        }
        let mut controls = Vec::new();
        if kind != CaseKind::Text {
            edit.pose = Some(other::<PoseClass>(
                rng,
                &PoseClass::ALL,
                &[spec.figure.pose],
            ));
            controls.push(ControlName::Pose);
        }
        return Case {
            id,
            seed,
            objects: Some(objects),
            edit,
            controls,
            mask,
            prompt: None,
            source_prompt: None,
        };
    }
}

/// `options.count` cases, deterministic in `options.seed`, on held-out world
/// scenes only; ids are `<kind>-<number>` (`text-0001`, `text+pose-0003`).
pub fn make_cases(options: &MakeOptions) -> Result<Vec<Case>> {
    if options.kinds.is_empty() {
        return Err(EvalError::argument(
            "kinds",
            "give at least one of text, pose, text+pose",
        ));
    }
    Ok((0..options.count)
        .map(|i| {
            let kind = options.kinds[i % options.kinds.len()];
            let mut rng = ChaCha8Rng::seed_from_u64(mix(&[options.seed, i as u64, 0x6361_7365]));
            make_case(
                &mut rng,
                format!("{}-{:04}", kind.word(), i + 1),
                kind,
                options.mask,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::{cases_to_jsonl, parse_cases};

    #[test]
    fn generated_cases_are_deterministic_valid_and_held_out() {
        let options = MakeOptions {
            count: 30,
            seed: 7,
            ..MakeOptions::default()
        };
        let cases = make_cases(&options).unwrap();
        assert_eq!(cases, make_cases(&options).unwrap());
        assert_ne!(
            cases,
            make_cases(&MakeOptions {
                seed: 8,
                ..options.clone()
            })
            .unwrap()
        );
        let text = cases_to_jsonl(&cases);
        assert_eq!(
            parse_cases(&text).unwrap(),
            cases,
            "generated cases pass the parser's checks"
        );
        for (i, c) in cases.iter().enumerate() {
            assert_eq!(Split::of(c.seed), Split::HeldOut);
            assert_eq!(c.kind(), CaseKind::ALL[i % 3], "{}", c.id);
            assert_eq!(
                c.controls.contains(&ControlName::Pose),
                c.kind() != CaseKind::Text
            );
            let source = c.source_spec().unwrap();
            let target = c.target_spec(&source).unwrap();
            if let Some(k) = c.edit.object {
                // Exactly one attribute of one object changes; colours stay distinct.
                let (a, b) = (&source.objects[k], &target.objects[k]);
                assert_eq!(
                    usize::from(a.colour != b.colour) + usize::from(a.shape != b.shape),
                    1
                );
                let mut colours: Vec<_> = target.objects.iter().map(|o| o.colour.index()).collect();
                colours.sort();
                colours.dedup();
                assert_eq!(colours.len(), target.objects.len());
            }
        }
        assert!(make_cases(&MakeOptions {
            kinds: vec![],
            ..options
        })
        .is_err());
    }
}
