//! The committed benchmark case file (`eval/cases.jsonl`, the cases of
//! `docs/results.md`) is what its documented command makes, and it has the
//! mix of edits issue 7 asks for.

use std::collections::HashSet;
use std::path::PathBuf;

use optedit_eval::{cases_to_jsonl, make_cases, read_cases, CaseKind, MakeOptions};

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../eval/cases.jsonl")
}

#[test]
fn the_committed_cases_are_what_make_cases_writes() {
    let cases = read_cases(&committed()).unwrap();
    // `optedit eval make-cases --out eval/cases.jsonl --count 210 --kinds text,pose,text+pose`
    let made = make_cases(&MakeOptions {
        count: 210,
        ..MakeOptions::default()
    })
    .unwrap();
    assert_eq!(cases_to_jsonl(&cases), cases_to_jsonl(&made));
}

#[test]
fn the_committed_cases_cover_every_kind_on_distinct_held_out_scenes() {
    let cases = read_cases(&committed()).unwrap();
    assert!(cases.len() >= 200, "{} cases", cases.len());
    for kind in CaseKind::ALL {
        let n = cases.iter().filter(|c| c.kind() == kind).count();
        assert!(n >= 60, "{n} cases of kind {kind:?}");
    }
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
