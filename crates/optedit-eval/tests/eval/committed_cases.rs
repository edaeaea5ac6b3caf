//! The committed benchmark case file (`eval/cases.jsonl`, the cases of
//! `docs/results.md`) is what its documented command makes, and it has the
//! mix of edits issues 7 and 22 ask for: every instruction kind, at least 50
//! cases of each.

use std::collections::HashSet;
use std::path::PathBuf;

use optedit_eval::{cases_to_jsonl, make_cases, read_cases, CaseKind, MakeOptions};

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../eval/cases.jsonl")
}

#[test]
fn the_committed_cases_are_what_make_cases_writes() {
    let cases = read_cases(&committed()).unwrap();
    // `optedit eval make-cases --out eval/cases.jsonl --count 350`
    // (seed 0, every kind: text,pose,text+pose,edges,scribble,layout,multi)
    let made = make_cases(&MakeOptions {
        count: 350,
        seed: 0,
        kinds: CaseKind::ALL.to_vec(),
        ..MakeOptions::default()
    })
    .unwrap();
    assert_eq!(cases_to_jsonl(&cases), cases_to_jsonl(&made));
}

#[test]
fn the_committed_cases_cover_every_kind_on_distinct_held_out_scenes() {
    let cases = read_cases(&committed()).unwrap();
    assert!(cases.len() >= 350, "{} cases", cases.len());
    assert_eq!(CaseKind::ALL.len(), 7);
    for kind in CaseKind::ALL {
        let of_kind: Vec<_> = cases.iter().filter(|c| c.kind() == kind).collect();
        assert!(
            of_kind.len() >= 50,
            "{} cases of kind {kind}",
            of_kind.len()
        );
        // Each kind conditions on its own ControlNets.
        for c in &of_kind {
            assert_eq!(c.controls, kind.controls(), "{}", c.id);
        }
    }
    // The multi-condition cases mix colour and shape edits with the pose.
    let multi = || cases.iter().filter(|c| c.kind() == CaseKind::Multi);
    assert!(multi().any(|c| c.edit.colour.is_some()) && multi().any(|c| c.edit.shape.is_some()));
    let ids: HashSet<_> = cases.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), cases.len(), "duplicate ids");
    let seeds: HashSet<_> = cases.iter().map(|c| c.seed).collect();
    assert_eq!(seeds.len(), cases.len(), "a scene is used twice");
    for case in &cases {
        assert!(case.seed >= 1 << 63, "{}: not a held-out seed", case.id);
        let source = case.source_spec().unwrap();
        let target = case.target_spec(&source).unwrap();
        assert_ne!(source, target, "{}: the edit changes nothing", case.id);
    }
}
