//! Deterministic case generation on held-out world scenes.

use optedit_world::{
    mix, scene_seed, Colour, PoseClass, SampleOptions, SceneSpec, Shape, Split, MAX_OBJECTS,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cases::{Case, CaseEdit, CaseKind, MaskSpec};
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

/// One case of `kind` from `rng`: a held-out scene with 1 to 3 objects.
/// Text edits change the colour (to one no other object has) or the shape
/// of one object; edges, scribble and layout edits change the shape of one
/// object; pose edits change the pose class; text + pose and multi do both
/// (an object's colour or shape, and the pose). Each case conditions on its
/// kind's ControlNets ([`CaseKind::controls`]).
fn make_case(rng: &mut ChaCha8Rng, id: String, kind: CaseKind, mask: MaskSpec) -> Case {
    let shape_only = matches!(
        kind,
        CaseKind::Edges | CaseKind::Scribble | CaseKind::Layout
    );
    let edits_pose = matches!(kind, CaseKind::Pose | CaseKind::TextPose | CaseKind::Multi);
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
            if !shape_only && rng.next_u32() % 2 == 0 {
                let used: Vec<Colour> = spec.objects.iter().map(|o| o.colour).collect();
                edit.colour = Some(other(rng, &Colour::ALL, &used));
            } else {
                edit.shape = Some(other::<Shape>(rng, &Shape::ALL, &[o.shape]));
            }
        }
        if edits_pose {
            edit.pose = Some(other::<PoseClass>(
                rng,
                &PoseClass::ALL,
                &[spec.figure.pose],
            ));
        }
        return Case {
            id,
            seed,
            objects: Some(objects),
            edit,
            controls: kind.controls().to_vec(),
            mask,
            prompt: None,
            source_prompt: None,
        };
    }
}

/// `options.count` cases, deterministic in `options.seed`, on held-out world
/// scenes only, of the kinds of `options.kinds` in turn; ids are
/// `<kind>-<number>` (`text-0001`, `text+pose-0003`, `multi-0007`).
pub fn make_cases(options: &MakeOptions) -> Result<Vec<Case>> {
    if options.kinds.is_empty() {
        return Err(EvalError::argument(
            "kinds",
            format!(
                "give at least one of {}",
                CaseKind::ALL.map(CaseKind::word).join(", ")
            ),
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
    use crate::cases::{cases_to_jsonl, parse_cases, ControlName};

    #[test]
    fn generated_cases_are_deterministic_valid_and_held_out() {
        let options = MakeOptions {
            count: 35,
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
            let kind = CaseKind::ALL[i % CaseKind::ALL.len()];
            assert_eq!(c.kind(), kind, "{}", c.id);
            assert!(c.id.starts_with(&format!("{}-", kind.word())), "{}", c.id);
            assert_eq!(c.controls, kind.controls(), "{}", c.id);
            assert_eq!(
                c.controls.contains(&ControlName::Pose),
                matches!(kind, CaseKind::Pose | CaseKind::TextPose | CaseKind::Multi)
            );
            let source = c.source_spec().unwrap();
            let target = c.target_spec(&source).unwrap();
            assert_eq!(
                source.figure.pose != target.figure.pose,
                c.controls.contains(&ControlName::Pose),
                "{}",
                c.id
            );
            assert_eq!(c.edit.object.is_some(), kind != CaseKind::Pose);
            if let Some(k) = c.edit.object {
                // Exactly one attribute of one object changes; colours stay distinct.
                let (a, b) = (&source.objects[k], &target.objects[k]);
                assert_eq!(
                    usize::from(a.colour != b.colour) + usize::from(a.shape != b.shape),
                    1
                );
                if matches!(
                    kind,
                    CaseKind::Edges | CaseKind::Scribble | CaseKind::Layout
                ) {
                    assert_ne!(a.shape, b.shape, "{}: not a shape edit", c.id);
                }
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

    /// The new kinds are drawn deterministically too, cycle in the order
    /// given, and mix colour and shape edits where the kind allows.
    #[test]
    fn new_kinds_are_deterministic_and_cycle() {
        let kinds = vec![
            CaseKind::Multi,
            CaseKind::Edges,
            CaseKind::Scribble,
            CaseKind::Layout,
        ];
        let options = MakeOptions {
            count: 40,
            seed: 3,
            kinds: kinds.clone(),
            mask: MaskSpec::Dilate(2),
        };
        let cases = make_cases(&options).unwrap();
        assert_eq!(
            cases_to_jsonl(&cases),
            cases_to_jsonl(&make_cases(&options).unwrap())
        );
        assert_eq!(parse_cases(&cases_to_jsonl(&cases)).unwrap(), cases);
        for (i, c) in cases.iter().enumerate() {
            assert_eq!(c.kind(), kinds[i % 4], "{}", c.id);
            assert_eq!(c.mask, MaskSpec::Dilate(2));
        }
        assert_eq!(cases[0].id, "multi-0001");
        assert_eq!(cases[3].id, "layout-0004");
        let multi: Vec<_> = cases
            .iter()
            .filter(|c| c.kind() == CaseKind::Multi)
            .collect();
        assert!(multi.iter().any(|c| c.edit.colour.is_some()));
        assert!(multi.iter().any(|c| c.edit.shape.is_some()));
        assert!(multi.iter().all(|c| c.edit.pose.is_some()));
        // Another seed, other scenes.
        let other = make_cases(&MakeOptions { seed: 4, ..options }).unwrap();
        assert!(cases.iter().zip(&other).all(|(a, b)| a.seed != b.seed));
    }
}
