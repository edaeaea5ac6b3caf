//! Summaries over cases: edit accuracy (overall and per attribute),
//! background preservation, and the class-wise feature distance (CSFID idea
//! of arXiv 2311.16882) against reference renders.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::{ClassKey, References};
use crate::metrics::{frechet_diagonal, mean, Moments};
use crate::runner::{CaseRecord, RunOptions};
use crate::scenes::Attribute;

/// A count of successes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Successes.
    pub correct: usize,
    /// Trials.
    pub total: usize,
    /// `correct / total` (`None` without trials).
    pub rate: Option<f64>,
}

impl Rate {
    fn of(flags: impl IntoIterator<Item = bool>) -> Self {
        let (mut correct, mut total) = (0, 0);
        for f in flags {
            correct += usize::from(f);
            total += 1;
        }
        Self {
            correct,
            total,
            rate: (total > 0).then(|| correct as f64 / total as f64),
        }
    }
}

/// The feature distance of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassDistance {
    /// Edited regions of the class.
    pub samples: usize,
    /// Fréchet distance (diagonal covariances) to the class's references.
    pub distance: f64,
}

/// The measures of a subset of cases (one kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartSummary {
    /// Cases.
    pub cases: usize,
    /// Share of cases whose every edited attribute is judged right.
    pub edit_accuracy: Option<f64>,
    /// Mean background PSNR, dB.
    pub psnr_bg: Option<f64>,
    /// Mean background MAE, 0-255.
    pub mae_bg: Option<f64>,
}

impl PartSummary {
    fn of(records: &[&CaseRecord]) -> Self {
        Self {
            cases: records.len(),
            edit_accuracy: Rate::of(records.iter().map(|r| r.correct)).rate,
            psnr_bg: mean(records.iter().filter_map(|r| r.psnr_bg)),
            mae_bg: mean(records.iter().filter_map(|r| r.mae_bg)),
        }
    }
}

/// The settings a summary was made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummarySettings {
    /// Method.
    pub method: String,
    /// Preservation weight.
    pub lambda: f64,
    /// DDIM steps.
    pub steps: usize,
    /// Edit strength.
    pub strength: f64,
    /// Optimised steps.
    pub t_u: usize,
    /// Gradient steps per optimised step.
    pub k: usize,
    /// Optimiser step size.
    pub lr: f64,
    /// Guidance scale.
    pub guidance: f64,
    /// Seed.
    pub seed: u64,
    /// The mask override (`per case` without one).
    pub mask: String,
    /// ControlNet scale.
    pub control_scale: f64,
    /// Whether the input's pixels outside the mask were pasted back.
    pub paste_back: bool,
}

impl SummarySettings {
    /// The settings of `options`.
    pub fn of(options: &RunOptions) -> Self {
        let c = &options.config;
        Self {
            method: options.method.word().into(),
            lambda: c.lambda,
            steps: c.num_steps,
            strength: c.strength,
            t_u: c.t_u,
            k: c.k,
            lr: c.lr,
            guidance: c.guidance_scale,
            seed: c.seed,
            mask: options
                .mask_override
                .map_or_else(|| "per case".into(), |m| m.to_string()),
            control_scale: options.control_scale,
            paste_back: c.paste_back,
        }
    }
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How the cases were run.
    pub settings: SummarySettings,
    /// Cases measured.
    pub cases: usize,
    /// Cases whose edit diverged (counted as wrong, without background measures).
    pub failed: usize,
    /// Share of cases whose every edited attribute is judged right.
    pub edit_accuracy: Option<f64>,
    /// Per edited attribute (`colour`, `shape`, `pose`).
    pub attribute_accuracy: BTreeMap<Attribute, Rate>,
    /// Kept attributes of edited objects judged unchanged.
    pub kept_accuracy: Rate,
    /// Mean background PSNR, dB (each case capped at 100 dB).
    pub psnr_bg: Option<f64>,
    /// Mean background MAE, 0-255.
    pub mae_bg: Option<f64>,
    /// Class-wise feature distance: the mean over classes present of the
    /// per-class Fréchet distances.
    pub csfid: Option<f64>,
    /// Its mean over object classes only.
    pub csfid_object: Option<f64>,
    /// Its mean over pose classes only.
    pub csfid_pose: Option<f64>,
    /// Per class.
    pub csfid_classes: BTreeMap<ClassKey, ClassDistance>,
    /// Reference renders per class.
    pub references_per_class: usize,
    /// Mean coverage of the masks used.
    pub mask_coverage: Option<f64>,
    /// Mean IoU of the masks used with the true regions.
    pub mask_iou: Option<f64>,
    /// Mean wall time per case, seconds.
    pub seconds_per_case: Option<f64>,
    /// By case kind (`text`, `pose`, `text+pose`).
    pub by_kind: BTreeMap<String, PartSummary>,
}

/// The class-wise distances of `records`' regions to `references` (classes
/// without references are left out).
pub fn class_distances(
    records: &[CaseRecord],
    references: &References,
) -> BTreeMap<ClassKey, ClassDistance> {
    let mut groups: BTreeMap<ClassKey, Vec<&[f32]>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.error.is_none()) {
        for region in &r.regions {
            groups
                .entry(region.class)
                .or_default()
                .push(&region.features);
        }
    }
    groups
        .into_iter()
        .filter_map(|(class, feats)| {
            let edited = Moments::of(&feats)?;
            let reference = references.classes.get(&class)?;
            Some((
                class,
                ClassDistance {
                    samples: edited.count,
                    distance: frechet_diagonal(&edited, reference),
                },
            ))
        })
        .collect()
}

/// Summarises `records` (in any order).
pub fn summarise(
    records: &[CaseRecord],
    references: &References,
    settings: SummarySettings,
) -> Summary {
    let ok: Vec<&CaseRecord> = records.iter().filter(|r| r.error.is_none()).collect();
    let attribute_accuracy = Attribute::ALL
        .into_iter()
        .map(|a| {
            (
                a,
                Rate::of(records.iter().flat_map(|r| {
                    r.edited
                        .iter()
                        .filter(move |x| x.attribute == a)
                        .map(|x| x.correct)
                })),
            )
        })
        .filter(|(_, r)| r.total > 0)
        .collect();
    let distances = class_distances(records, references);
    let dist = |pose: Option<bool>| {
        mean(
            distances
                .iter()
                .filter(|(k, _)| pose.is_none_or(|p| k.is_pose() == p))
                .map(|(_, d)| d.distance),
        )
    };
    let mut kinds: BTreeMap<String, Vec<&CaseRecord>> = BTreeMap::new();
    for r in records {
        kinds.entry(r.kind.clone()).or_default().push(r);
    }
    Summary {
        settings,
        cases: records.len(),
        failed: records.len() - ok.len(),
        edit_accuracy: Rate::of(records.iter().map(|r| r.correct)).rate,
        attribute_accuracy,
        kept_accuracy: Rate::of(
            records
                .iter()
                .flat_map(|r| r.kept.iter().map(|x| x.correct)),
        ),
        psnr_bg: mean(ok.iter().filter_map(|r| r.psnr_bg)),
        mae_bg: mean(ok.iter().filter_map(|r| r.mae_bg)),
        csfid: dist(None),
        csfid_object: dist(Some(false)),
        csfid_pose: dist(Some(true)),
        csfid_classes: distances,
        references_per_class: references.per_class,
        mask_coverage: mean(ok.iter().map(|r| r.mask_coverage)),
        mask_iou: mean(ok.iter().filter_map(|r| r.mask_iou)),
        seconds_per_case: mean(records.iter().map(|r| r.seconds)),
        by_kind: kinds
            .into_iter()
            .map(|(k, v)| (k, PartSummary::of(&v)))
            .collect(),
    }
}

/// A share as a percentage with one decimal, `–` when absent.
pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1}", 100.0 * v))
}

/// A number with `digits` decimals, `–` when absent.
pub(crate) fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

impl Summary {
    /// The markdown table header matching [`markdown_row`](Self::markdown_row).
    pub fn markdown_header() -> String {
        "| method | lambda | mask | cases | edit acc % | colour % | shape % | pose % | kept % | bg PSNR dB | bg MAE | CSFID | CSFID obj | CSFID pose | s/case |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            .into()
    }

    /// One markdown table row.
    pub fn markdown_row(&self) -> String {
        let s = &self.settings;
        let acc = |a| pct(self.attribute_accuracy.get(&a).and_then(|r| r.rate));
        let lambda = if s.method == "optimise" {
            format!("{}", s.lambda)
        } else {
            "–".into()
        };
        format!(
            "| {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.method,
            lambda,
            if s.method == "sdedit" {
                "none"
            } else {
                &s.mask
            },
            self.cases,
            if self.failed > 0 {
                format!(" ({} failed)", self.failed)
            } else {
                String::new()
            },
            pct(self.edit_accuracy),
            acc(Attribute::Colour),
            acc(Attribute::Shape),
            acc(Attribute::Pose),
            pct(self.kept_accuracy.rate),
            num(self.psnr_bg, 2),
            num(self.mae_bg, 2),
            num(self.csfid, 2),
            num(self.csfid_object, 2),
            num(self.csfid_pose, 2),
            num(self.seconds_per_case, 1),
        )
    }

    /// `summary.md`: a heading with the settings, the header and the row.
    pub fn markdown(&self) -> String {
        let s = &self.settings;
        format!(
            "<!-- optedit eval: {} cases; steps {}, strength {}, t_u {}, k {}, lr {}, guidance {}, seed {}, control scale {}{}; CSFID with {} references per class -->\n{}\n{}\n",
            self.cases,
            s.steps,
            s.strength,
            s.t_u,
            s.k,
            s.lr,
            s.guidance,
            s.seed,
            s.control_scale,
            if s.paste_back { ", pasted back" } else { "" },
            self.references_per_class,
            Self::markdown_header(),
            self.markdown_row()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{AttributeResult, RegionFeatures};
    use optedit_world::PoseClass;

    fn record(id: &str, correct: bool, psnr: f64, class: ClassKey, f: Vec<f32>) -> CaseRecord {
        CaseRecord {
            id: id.into(),
            kind: if class.is_pose() { "pose" } else { "text" }.into(),
            method: "optimise".into(),
            mask: "true".into(),
            source_prompt: String::new(),
            prompt: String::new(),
            correct,
            edited: vec![AttributeResult {
                attribute: if class.is_pose() {
                    Attribute::Pose
                } else {
                    Attribute::Colour
                },
                target: "x".into(),
                predicted: "y".into(),
                correct,
            }],
            kept: vec![],
            psnr_bg: Some(psnr),
            mae_bg: Some(1.0),
            mask_coverage: 0.1,
            mask_iou: Some(1.0),
            mask_empty: false,
            regions: vec![RegionFeatures { class, features: f }],
            error: None,
            seconds: 2.0,
            stages: BTreeMap::new(),
        }
    }

    #[test]
    fn summary_aggregates_cases_and_classes() {
        let pose = ClassKey::Pose(PoseClass::Waving);
        let obj = ClassKey::Object {
            colour: optedit_world::Colour::Red,
            shape: optedit_world::Shape::Star,
        };
        let records = vec![
            record("a", true, 30.0, obj, vec![1.0, 0.0]),
            record("b", false, 40.0, obj, vec![3.0, 0.0]),
            record("c", true, 50.0, pose, vec![0.0, 0.0]),
        ];
        let mut refs = References::new("x".into(), 2);
        refs.classes.insert(
            obj,
            Moments {
                count: 2,
                mean: vec![2.0, 0.0],
                var: vec![2.0, 0.0],
            },
        );
        refs.classes.insert(
            pose,
            Moments {
                count: 2,
                mean: vec![0.0, 3.0],
                var: vec![0.0, 0.0],
            },
        );
        let s = summarise(&records, &refs, SummarySettings::of(&RunOptions::default()));
        assert_eq!(s.cases, 3);
        assert!((s.edit_accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.attribute_accuracy[&Attribute::Colour].correct, 1);
        assert_eq!(s.attribute_accuracy[&Attribute::Pose].rate, Some(1.0));
        assert_eq!(s.psnr_bg, Some(40.0));
        // Object class: edited mean 2, var 2 = the references: distance 0.
        assert_eq!(s.csfid_classes[&obj].distance, 0.0);
        assert_eq!(s.csfid_classes[&obj].samples, 2);
        // Pose class: mean shift 3, no spread: 9.
        assert_eq!(s.csfid_pose, Some(9.0));
        assert_eq!(s.csfid, Some(4.5));
        assert_eq!(s.by_kind["text"].cases, 2);
        let row = s.markdown_row();
        assert!(
            row.starts_with("| optimise | 0.6 | per case | 3 | 66.7 |"),
            "{row}"
        );
        assert_eq!(
            row.matches('|').count(),
            Summary::markdown_header()
                .lines()
                .next()
                .unwrap()
                .matches('|')
                .count()
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Summary>(&json).unwrap(), s);
    }
}
