//! Summaries over cases: edit accuracy (overall and per attribute),
//! background preservation, and the class-wise feature distance (CSFID idea
//! of arXiv 2311.16882) against reference renders.
//!
//! Every rate carries its 95% Wilson interval and every background mean its
//! 95% case-bootstrap interval ([`crate::stats`]). A case whose edit failed
//! counts as wrong in every rate (edit accuracy, per attribute, kept
//! attributes) and has no background values: a mean over fewer cases than
//! the run holds says over how many (`(n=...)` in the markdown).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::{ClassKey, References};
use crate::metrics::{frechet_diagonal, mean, Moments};
use crate::runner::{CaseRecord, Method, RunOptions};
use crate::scenes::Attribute;
use crate::stats::{bootstrap_mean, wilson, Interval};

/// A count of successes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Successes.
    pub correct: usize,
    /// Trials.
    pub total: usize,
    /// `correct / total` (`None` without trials).
    pub rate: Option<f64>,
    /// The 95% Wilson score interval of the rate ([`wilson`]; `None`
    /// without trials, and in summaries written before it was recorded).
    #[serde(default)]
    pub interval: Option<Interval>,
}

impl Rate {
    /// The rate of some outcomes (`true` = success), with its interval.
    pub fn of(flags: impl IntoIterator<Item = bool>) -> Self {
        let (mut correct, mut total) = (0, 0);
        for f in flags {
            correct += usize::from(f);
            total += 1;
        }
        Self {
            correct,
            total,
            rate: (total > 0).then(|| correct as f64 / total as f64),
            interval: wilson(correct, total),
        }
    }
}

/// A mean over cases with its 95% bootstrap interval ([`bootstrap_mean`],
/// one value per case) and the number of cases it is over.
fn mean_of(values: impl IntoIterator<Item = f64>) -> (Option<f64>, Option<Interval>, usize) {
    let values: Vec<[f64; 1]> = values.into_iter().map(|v| [v]).collect();
    (
        mean(values.iter().map(|v| v[0])),
        bootstrap_mean(&values),
        values.len(),
    )
}

/// The feature distance of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassDistance {
    /// Edited regions of the class.
    pub samples: usize,
    /// Fréchet distance (diagonal covariances) to the class's references.
    pub distance: f64,
}

/// The measures of a subset of cases (one kind). The intervals and counts
/// are absent (`None`, 0) in summaries written before they were recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartSummary {
    /// Cases.
    pub cases: usize,
    /// Share of cases whose every edited attribute is judged right (a
    /// failed edit counts as wrong).
    pub edit_accuracy: Option<f64>,
    /// Its 95% Wilson interval.
    #[serde(default)]
    pub edit_interval: Option<Interval>,
    /// The background measures (in the JSON beside the fields above).
    #[serde(flatten)]
    pub background: Background,
}

impl PartSummary {
    /// The measures of `records`.
    pub fn of(records: &[&CaseRecord]) -> Self {
        let edit = Rate::of(records.iter().map(|r| r.correct));
        Self {
            cases: records.len(),
            edit_accuracy: edit.rate,
            edit_interval: edit.interval,
            background: Background::of(records),
        }
    }
}

/// The background measures of some cases (of a [`Summary`] or a
/// [`PartSummary`]). The intervals and counts are absent (`None`, 0) in
/// summaries written before they were recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Background {
    /// Mean background PSNR, dB (each case capped at 100 dB).
    pub psnr_bg: Option<f64>,
    /// Its 95% case-bootstrap interval.
    #[serde(default)]
    pub psnr_bg_interval: Option<Interval>,
    /// Cases the mean PSNR is over (failed edits have none).
    #[serde(default)]
    pub psnr_bg_cases: usize,
    /// Mean background SSIM ([`crate::metrics::ssim_outside`]).
    #[serde(default)]
    pub ssim_bg: Option<f64>,
    /// Its 95% case-bootstrap interval.
    #[serde(default)]
    pub ssim_bg_interval: Option<Interval>,
    /// Cases the mean SSIM is over.
    #[serde(default)]
    pub ssim_bg_cases: usize,
    /// Mean background MAE, 0-255.
    pub mae_bg: Option<f64>,
}

impl Background {
    /// The background measures of `records` (those without a value, as
    /// failed edits, are left out of each mean).
    pub fn of(records: &[&CaseRecord]) -> Self {
        let (psnr_bg, psnr_bg_interval, psnr_bg_cases) =
            mean_of(records.iter().filter_map(|r| r.psnr_bg));
        let (ssim_bg, ssim_bg_interval, ssim_bg_cases) =
            mean_of(records.iter().filter_map(|r| r.ssim_bg));
        Self {
            psnr_bg,
            psnr_bg_interval,
            psnr_bg_cases,
            ssim_bg,
            ssim_bg_interval,
            ssim_bg_cases,
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
    /// Gradient steps per denoising step after the first `t_u` (0 in
    /// summaries written before it was recorded).
    #[serde(default)]
    pub k_late: usize,
    /// Whether the late gradient steps moved only the latent outside the
    /// mask (false in summaries written before it was recorded).
    #[serde(default)]
    pub k_late_outside_mask: bool,
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
    /// The latent optimiser ([`optedit_edit::OptimizerKind::word`]; `adam`
    /// in summaries written before it was recorded).
    #[serde(default = "adam")]
    pub optimizer: String,
    /// Where the losses compare latents ([`optedit_edit::LossSpace::word`];
    /// `next` in summaries written before it was recorded).
    #[serde(default = "next")]
    pub loss_space: String,
    /// Guidance scale of the inversion (1 in summaries written before it
    /// was recorded).
    #[serde(default = "one")]
    pub inversion_guidance: f64,
    /// The learning-rate schedule (`Constant` in summaries written before
    /// it was recorded).
    #[serde(default = "constant")]
    pub lr_schedule: String,
    /// The loss above which an edit fails as diverged (1e4 in summaries
    /// written before it was recorded).
    #[serde(default = "max_loss")]
    pub max_loss: f64,
    /// Weight of the preservation loss inside the mask (0 in summaries
    /// written before it was recorded).
    #[serde(default)]
    pub preservation_inside: f64,
    /// What the gradient steps differentiate under guidance
    /// ([`optedit_edit::GuidanceGradient::word`]; `both` in summaries
    /// written before it was recorded).
    #[serde(default = "both")]
    pub guidance_gradient: String,
}

fn both() -> String {
    optedit_edit::GuidanceGradient::Both.word().into()
}

fn constant() -> String {
    format!("{:?}", optedit_edit::LrSchedule::Constant)
}

fn max_loss() -> f64 {
    1e4
}

fn next() -> String {
    optedit_edit::LossSpace::Next.word().into()
}

fn one() -> f64 {
    1.0
}

fn adam() -> String {
    optedit_edit::OptimizerKind::Adam.word().into()
}

impl SummarySettings {
    /// The method column of a summary row: the method, and in brackets the
    /// settings that differ from the defaults of this build
    /// ([`edit_notes`](Self::edit_notes)).
    pub fn method_cell(&self) -> String {
        let notes = self.edit_notes();
        if notes.is_empty() {
            self.method.clone()
        } else {
            format!("{} ({})", self.method, notes.join(", "))
        }
    }

    /// The edit settings that differ from [`EditConfig`]'s defaults, as
    /// short notes (`normalized-gd`, `k late 1`, `strength 0.6`, ...): what
    /// tells the rows of an ablation apart. Steps, strength and guidance
    /// for every editor; the inversion's guidance for those that invert;
    /// the optimiser's settings for the optimise method; none for a
    /// calibration row.
    ///
    /// [`EditConfig`]: optedit_edit::EditConfig
    pub fn edit_notes(&self) -> Vec<String> {
        let Some(method) = Method::from_word(&self.method).and_then(Method::editor) else {
            return Vec::new();
        };
        let d = optedit_edit::EditConfig::default();
        let optimise = method == optedit_edit::Method::Optimise;
        let inverts = method != optedit_edit::Method::SdEdit;
        let mut notes = Vec::new();
        if optimise && self.optimizer != d.optimizer.word() {
            notes.push(self.optimizer.clone());
        }
        if optimise && self.loss_space != d.loss_space.word() {
            notes.push(format!("{} space", self.loss_space));
        }
        if optimise && self.guidance_gradient != d.guidance_gradient.word() {
            notes.push(format!("{} gradient", self.guidance_gradient));
        }
        let differ = |applies: bool, name: &str, value: f64, default: f64| {
            (applies && value != default).then(|| format!("{name} {value}"))
        };
        notes.extend(differ(optimise, "t_u", self.t_u as f64, d.t_u as f64));
        notes.extend(differ(optimise, "k", self.k as f64, d.k as f64));
        notes.extend(differ(
            optimise,
            "k late",
            self.k_late as f64,
            d.k_late as f64,
        ));
        if optimise && self.k_late_outside_mask != d.k_late_outside_mask {
            notes.push(format!("late outside mask {}", self.k_late_outside_mask));
        }
        notes.extend(differ(optimise, "lr", self.lr, d.lr));
        notes.extend(differ(
            optimise,
            "preserved inside",
            self.preservation_inside,
            d.preservation_inside,
        ));
        notes.extend(differ(true, "steps", self.steps as f64, d.num_steps as f64));
        notes.extend(differ(true, "strength", self.strength, d.strength));
        notes.extend(differ(true, "guidance", self.guidance, d.guidance_scale));
        notes.extend(differ(
            inverts,
            "inversion guidance",
            self.inversion_guidance,
            d.inversion_guidance_scale,
        ));
        notes
    }

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
            k_late: c.k_late,
            k_late_outside_mask: c.k_late_outside_mask,
            lr: c.lr,
            guidance: c.guidance_scale,
            seed: c.seed,
            mask: options
                .mask_override
                .map_or_else(|| "per case".into(), |m| m.to_string()),
            control_scale: options.control_scale,
            paste_back: c.paste_back,
            optimizer: c.optimizer.word().into(),
            loss_space: c.loss_space.word().into(),
            inversion_guidance: c.inversion_guidance_scale,
            lr_schedule: format!("{:?}", c.lr_schedule),
            max_loss: c.max_loss,
            preservation_inside: c.preservation_inside,
            guidance_gradient: c.guidance_gradient.word().into(),
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
    /// Its 95% Wilson interval (absent in summaries written before it was
    /// recorded, as the other intervals and counts below).
    #[serde(default)]
    pub edit_interval: Option<Interval>,
    /// Per edited attribute (`colour`, `shape`, `pose`).
    pub attribute_accuracy: BTreeMap<Attribute, Rate>,
    /// Kept attributes of edited objects judged unchanged.
    pub kept_accuracy: Rate,
    /// The background measures of the cases whose edit did not fail (in
    /// the JSON beside the other fields).
    #[serde(flatten)]
    pub background: Background,
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
    /// By case kind ([`crate::CaseKind::word`]: `text`, `pose`, `text+pose`,
    /// `edges`, `scribble`, `layout`, `multi`).
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
    let edit = Rate::of(records.iter().map(|r| r.correct));
    Summary {
        settings,
        cases: records.len(),
        failed: records.len() - ok.len(),
        edit_accuracy: edit.rate,
        edit_interval: edit.interval,
        attribute_accuracy,
        kept_accuracy: Rate::of(
            records
                .iter()
                .flat_map(|r| r.kept.iter().map(|x| x.correct)),
        ),
        background: Background::of(&ok),
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

/// A number with `digits` decimals, `–` when absent.
pub(crate) fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// A share as a percentage with its interval, `87.1% [82.0, 91.0]` (without
/// the brackets when there is no interval), `–` when absent.
pub(crate) fn pct_ci(v: Option<f64>, interval: Option<Interval>) -> String {
    match (v, interval) {
        (None, _) => "–".into(),
        (Some(v), None) => format!("{:.1}%", 100.0 * v),
        (Some(v), Some(i)) => format!(
            "{:.1}% [{:.1}, {:.1}]",
            100.0 * v,
            100.0 * i.low,
            100.0 * i.high
        ),
    }
}

/// A mean with `digits` decimals and its interval, `26.50 [25.91, 27.08]`,
/// followed by ` (n=190)` when it is over fewer values (`n`) than `of`;
/// `–` when absent.
pub(crate) fn mean_ci(
    v: Option<f64>,
    interval: Option<Interval>,
    digits: usize,
    n: usize,
    of: usize,
) -> String {
    let Some(v) = v else {
        return "–".into();
    };
    let mut out = format!("{v:.digits$}");
    if let Some(i) = interval {
        out.push_str(&format!(" [{:.digits$}, {:.digits$}]", i.low, i.high));
    }
    // n = 0 with a mean: a summary written before counts were recorded.
    if n > 0 && n < of {
        out.push_str(&format!(" (n={n})"));
    }
    out
}

/// The cells of a row of the summary table ([`Summary::markdown_header`]):
/// a run's, or several seeds' pooled by [`crate::compare()`].
#[derive(Debug, Clone, Default)]
pub(crate) struct RowCells {
    pub cases: String,
    pub edit: String,
    pub colour: String,
    pub shape: String,
    pub pose: String,
    pub kept: String,
    pub psnr: String,
    pub ssim: String,
    pub mae: String,
    pub csfid: String,
    pub csfid_object: String,
    pub csfid_pose: String,
    pub seconds: String,
}

impl RowCells {
    /// The markdown row: the method, lambda and mask of `settings`, then the cells.
    pub(crate) fn markdown(&self, settings: &SummarySettings) -> String {
        let s = settings;
        let method = s.method_cell();
        let lambda = if s.method == "optimise" {
            format!("{}", s.lambda)
        } else {
            "–".into()
        };
        let mask = if Method::from_word(&s.method).is_some_and(|m| !m.uses_mask()) {
            "none"
        } else {
            &s.mask
        };
        format!(
            "| {method} | {lambda} | {mask} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.cases,
            self.edit,
            self.colour,
            self.shape,
            self.pose,
            self.kept,
            self.psnr,
            self.ssim,
            self.mae,
            self.csfid,
            self.csfid_object,
            self.csfid_pose,
            self.seconds,
        )
    }
}

impl Summary {
    /// The markdown table header matching [`markdown_row`](Self::markdown_row).
    /// Rates are shown as `87.1% [82.0, 91.0]` and means as `26.50 [25.91,
    /// 27.08]`: the value and its 95% interval.
    pub fn markdown_header() -> String {
        "| method | lambda | mask | cases | edit acc | colour | shape | pose | kept | bg PSNR dB | bg SSIM | bg MAE | CSFID | CSFID obj | CSFID pose | s/case |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            .into()
    }

    /// One markdown table row: rates with their 95% Wilson intervals, the
    /// background PSNR and SSIM with their 95% bootstrap intervals (and the
    /// number of cases they are over when edits failed).
    pub fn markdown_row(&self) -> String {
        let b = &self.background;
        let acc = |a| {
            let r = self.attribute_accuracy.get(&a);
            pct_ci(r.and_then(|r| r.rate), r.and_then(|r| r.interval))
        };
        RowCells {
            cases: if self.failed > 0 {
                format!("{} ({} failed)", self.cases, self.failed)
            } else {
                self.cases.to_string()
            },
            edit: pct_ci(self.edit_accuracy, self.edit_interval),
            colour: acc(Attribute::Colour),
            shape: acc(Attribute::Shape),
            pose: acc(Attribute::Pose),
            kept: pct_ci(self.kept_accuracy.rate, self.kept_accuracy.interval),
            psnr: mean_ci(
                b.psnr_bg,
                b.psnr_bg_interval,
                2,
                b.psnr_bg_cases,
                self.cases,
            ),
            ssim: mean_ci(
                b.ssim_bg,
                b.ssim_bg_interval,
                3,
                b.ssim_bg_cases,
                self.cases,
            ),
            mae: num(b.mae_bg, 2),
            csfid: num(self.csfid, 2),
            csfid_object: num(self.csfid_object, 2),
            csfid_pose: num(self.csfid_pose, 2),
            seconds: num(self.seconds_per_case, 1),
        }
        .markdown(&self.settings)
    }

    /// `summary.md`: a heading with the settings, the header and the row.
    pub fn markdown(&self) -> String {
        let s = &self.settings;
        format!(
            "<!-- optedit eval: {} cases; steps {}, strength {}, t_u {}, k {}, k late {}{}, lr {}, optimizer {}, loss space {}, preservation inside {}, gradient through {}, guidance {}, inversion guidance {}, seed {}, control scale {}{}; CSFID with {} references per class -->\n{}\n{}\n",
            self.cases,
            s.steps,
            s.strength,
            s.t_u,
            s.k,
            s.k_late,
            if s.k_late_outside_mask {
                " (outside the mask)"
            } else {
                ""
            },
            s.lr,
            s.optimizer,
            s.loss_space,
            s.preservation_inside,
            s.guidance_gradient,
            s.guidance,
            s.inversion_guidance,
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
    use crate::runner::{test_record, RegionFeatures};
    use crate::stats::wilson;
    use optedit_world::PoseClass;

    fn record(id: &str, correct: bool, psnr: f64, class: ClassKey, f: Vec<f32>) -> CaseRecord {
        let kind = if class.is_pose() { "pose" } else { "text" };
        CaseRecord {
            regions: vec![RegionFeatures { class, features: f }],
            ..test_record(id, kind, correct, Some(psnr))
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
        assert_eq!(s.background.psnr_bg, Some(40.0));
        // Object class: edited mean 2, var 2 = the references: distance 0.
        assert_eq!(s.csfid_classes[&obj].distance, 0.0);
        assert_eq!(s.csfid_classes[&obj].samples, 2);
        // Pose class: mean shift 3, no spread: 9.
        assert_eq!(s.csfid_pose, Some(9.0));
        assert_eq!(s.csfid, Some(4.5));
        assert_eq!(s.by_kind["text"].cases, 2);
        // 2 of 3: Wilson [20.8%, 93.9%].
        let i = s.edit_interval.unwrap();
        assert!((i.low - 0.207_660).abs() < 1e-5 && (i.high - 0.938_510).abs() < 1e-5);
        assert_eq!(
            s.attribute_accuracy[&Attribute::Colour].interval,
            wilson(1, 2)
        );
        assert_eq!(
            (s.background.psnr_bg_cases, s.background.ssim_bg_cases),
            (3, 3)
        );
        assert!(s.background.psnr_bg_interval.unwrap().contains(40.0));
        assert!((s.background.ssim_bg.unwrap() - 0.4).abs() < 1e-12);
        let row = s.markdown_row();
        assert!(
            row.starts_with("| optimise | 0.6 | per case | 3 | 66.7% [20.8, 93.9] | 50.0% [9.5, 90.5] | – | 100.0% [20.7, 100.0] | – | 40.00 ["),
            "{row}"
        );
        assert!(!row.contains("(n="), "{row}");
        assert_eq!(
            row.matches('|').count(),
            Summary::markdown_header()
                .lines()
                .next()
                .unwrap()
                .matches('|')
                .count()
        );
        // JSON keeps everything (up to serde_json's float parsing, which may
        // be one unit in the last place off).
        let json = serde_json::to_string(&s).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back.markdown(), s.markdown());
        assert_eq!(back.by_kind["text"].background.psnr_bg_cases, 2);
        let (a, b) = (back.edit_interval.unwrap(), i);
        assert!((a.low - b.low).abs() < 1e-12 && (a.high - b.high).abs() < 1e-12);
        // Another optimiser is named in the row and the settings line.
        let mut options = RunOptions::default();
        options.config.optimizer = optedit_edit::OptimizerKind::Adam;
        let other = summarise(&records, &refs, SummarySettings::of(&options));
        assert!(
            other
                .markdown_row()
                .starts_with("| optimise (adam) | 0.6 | per case | 3 |"),
            "{}",
            other.markdown_row()
        );
        assert!(other.markdown().contains("optimizer adam,"));
        // Every lever that differs from the defaults is named in the row.
        let mut options = RunOptions::default();
        options.config.optimizer = optedit_edit::OptimizerKind::AdamKept;
        options.config.k_late = 2;
        options.config.k_late_outside_mask = false;
        options.config.loss_space = optedit_edit::LossSpace::Clean;
        options.config.strength = 0.6;
        options.config.preservation_inside = 1.0;
        options.config.guidance_gradient = optedit_edit::GuidanceGradient::Conditional;
        let levers = summarise(&records, &refs, SummarySettings::of(&options));
        assert!(
            levers.markdown_row().starts_with(
                "| optimise (adam-kept, clean space, conditional gradient, k late 2, late outside mask false, preserved inside 1, strength 0.6) | 0.6 |"
            ),
            "{}",
            levers.markdown_row()
        );
        assert!(levers
            .markdown()
            .contains("loss space clean, preservation inside 1, gradient through conditional,"));
        assert!(s.settings.edit_notes().is_empty());
        // A baseline's row names its own differing settings, not the
        // optimiser's; a calibration row none.
        let mut options = RunOptions::default();
        options.method = Method::Edit(optedit_edit::Method::SdEdit);
        options.config.strength = 0.6;
        options.config.k_late = 2;
        let sdedit = summarise(&records, &refs, SummarySettings::of(&options));
        assert!(
            sdedit
                .markdown_row()
                .starts_with("| sdedit (strength 0.6) | – | none |"),
            "{}",
            sdedit.markdown_row()
        );
        options.method = Method::Identity;
        assert!(SummarySettings::of(&options).edit_notes().is_empty());
        assert!(s.markdown().contains("optimizer normalized-gd,"));
        // Settings written before the optimiser, the late steps, the loss
        // space and the inversion guidance were recorded read as what those
        // runs used: Adam, no late steps, the next latent, guidance 1.
        let before = SummarySettings::of(&RunOptions {
            config: optedit_edit::EditConfig {
                optimizer: optedit_edit::OptimizerKind::Adam,
                k_late: 0,
                k_late_outside_mask: false,
                guidance_gradient: optedit_edit::GuidanceGradient::Both,
                ..Default::default()
            },
            ..RunOptions::default()
        });
        let mut old = serde_json::to_value(&before).unwrap();
        old.as_object_mut().unwrap().remove("optimizer");
        old.as_object_mut().unwrap().remove("k_late");
        old.as_object_mut().unwrap().remove("k_late_outside_mask");
        old.as_object_mut().unwrap().remove("loss_space");
        old.as_object_mut().unwrap().remove("inversion_guidance");
        old.as_object_mut().unwrap().remove("lr_schedule");
        old.as_object_mut().unwrap().remove("max_loss");
        old.as_object_mut().unwrap().remove("preservation_inside");
        old.as_object_mut().unwrap().remove("guidance_gradient");
        let old: SummarySettings = serde_json::from_value(old).unwrap();
        assert_eq!(old, before);
    }

    #[test]
    fn failed_cases_are_wrong_everywhere_and_means_say_their_count() {
        let obj = ClassKey::Object {
            colour: optedit_world::Colour::Red,
            shape: optedit_world::Shape::Star,
        };
        let mut failed = record("f", false, 0.0, obj, vec![0.0, 0.0]);
        failed.error = Some("diverged".into());
        (failed.psnr_bg, failed.ssim_bg, failed.mae_bg) = (None, None, None);
        failed.regions.clear();
        failed.edited[0].predicted = crate::runner::FAILED.into();
        let records = vec![
            record("a", true, 30.0, obj, vec![1.0, 0.0]),
            record("b", true, 34.0, obj, vec![1.0, 0.0]),
            failed,
        ];
        let refs = References::new("x".into(), 2);
        let s = summarise(&records, &refs, SummarySettings::of(&RunOptions::default()));
        assert_eq!((s.cases, s.failed), (3, 1));
        assert_eq!(s.edit_accuracy, Some(2.0 / 3.0));
        assert_eq!(s.attribute_accuracy[&Attribute::Colour].total, 3);
        assert_eq!(s.attribute_accuracy[&Attribute::Colour].correct, 2);
        assert_eq!(
            (s.background.psnr_bg, s.background.psnr_bg_cases),
            (Some(32.0), 2)
        );
        assert_eq!(s.by_kind["text"].background.psnr_bg_cases, 2);
        assert_eq!(s.by_kind["text"].edit_interval, wilson(2, 3));
        let row = s.markdown_row();
        assert!(
            row.contains("| 3 (1 failed) | 66.7% [20.8, 93.9] |"),
            "{row}"
        );
        assert!(row.contains(" (n=2) | 0.320 ["), "{row}");
        // Summaries written before intervals and SSIM parse, and show none.
        let mut json = serde_json::to_value(&s).unwrap();
        let object = json.as_object_mut().unwrap();
        for key in [
            "edit_interval",
            "psnr_bg_interval",
            "psnr_bg_cases",
            "ssim_bg",
            "ssim_bg_interval",
            "ssim_bg_cases",
        ] {
            object.remove(key).unwrap();
        }
        object["kept_accuracy"]
            .as_object_mut()
            .unwrap()
            .remove("interval");
        let old: Summary = serde_json::from_value(json).unwrap();
        let row = old.markdown_row();
        assert!(
            row.contains("| 3 (1 failed) | 66.7% | 66.7% [20.8, 93.9] |"),
            "{row}"
        );
        assert!(row.contains("| 32.00 | – |"), "{row}");
    }

    #[test]
    fn cells_show_intervals_and_counts() {
        let i = Interval {
            low: 0.82,
            high: 0.91,
        };
        assert_eq!(pct_ci(Some(0.871), Some(i)), "87.1% [82.0, 91.0]");
        assert_eq!(pct_ci(Some(0.871), None), "87.1%");
        assert_eq!(pct_ci(None, Some(i)), "–");
        let j = Interval {
            low: 25.914,
            high: 27.081,
        };
        assert_eq!(
            mean_ci(Some(26.5), Some(j), 2, 210, 210),
            "26.50 [25.91, 27.08]"
        );
        assert_eq!(
            mean_ci(Some(26.5), Some(j), 2, 190, 210),
            "26.50 [25.91, 27.08] (n=190)"
        );
        assert_eq!(mean_ci(Some(26.5), None, 1, 0, 210), "26.5");
        assert_eq!(mean_ci(None, None, 2, 0, 210), "–");
        // Calibration rows and SDEdit show no mask.
        for (method, mask) in [
            (Method::Identity, "none"),
            (Method::Oracle, "none"),
            (Method::SDEDIT, "none"),
            (Method::Blank, "per case"),
            (Method::DIFFEDIT, "per case"),
        ] {
            let settings = SummarySettings::of(&RunOptions {
                method,
                ..RunOptions::default()
            });
            let row = RowCells::default().markdown(&settings);
            assert!(
                row.starts_with(&format!("| {} | – | {mask} |", method.word())),
                "{row}"
            );
        }
    }
}
