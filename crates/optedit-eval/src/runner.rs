//! Running one case: the models of a demo pipeline folder, the method
//! (optimisation, DiffEdit or SDEdit through `optedit-edit`), and the
//! per-case measures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use image::{GrayImage, RgbImage};
use optedit_cond::image::{
    latent_mask_to_gray, rgb_to_signed_tensor, rgb_to_tensor, tensor_to_rgb,
};
use optedit_edit::Method as EditMethod;
use optedit_edit::{
    ControlCondition, EditCondition, EditConfig, EditError, Editor, EstimatedMask, FullMask,
    MaskSource, Progress, SdPipeline, Stage, UserMask,
};
use optedit_judge::conditions::{condition_image, edge_image};
use optedit_models::ControlNetModel;
use serde::{Deserialize, Serialize};

use crate::cases::{Case, ControlName, MaskSpec};
use crate::error::{io, EvalError, Result};
use crate::features::{fingerprint, ClassKey, Judge};
use crate::metrics::{coverage, iou, mae_outside, psnr_outside, ssim_outside};
use crate::scenes::{value_name, Attribute, CaseScenes};

/// The editing method, or a calibration row.
///
/// The editors are [`optedit_edit::Method`]'s, with its words; the
/// calibration "methods" edit nothing and call no model: they are the
/// rows that show what the referee makes of results whose answer is known
/// (the input unchanged, the edit region blanked, the target itself), so
/// that a table's edit accuracies can be read against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// An editor: the optimisation-based method (arXiv 2311.16882),
    /// DiffEdit (arXiv 2210.11427) with the case's mask, or SDEdit (arXiv
    /// 2108.01073, no mask).
    Edit(EditMethod),
    /// Calibration row, not an editor: the result is the input, unchanged
    /// (no mask; a sound judge calls almost none of these edits right).
    Identity,
    /// Calibration row, not an editor: the input with the case's edit
    /// region (its mask, [`CaseScenes::pixel_mask`]; the true region
    /// [`CaseScenes::true_region`] for the `estimated` and `full` masks)
    /// filled with flat grey [`BLANK_GREY`], the rest unchanged (a sound
    /// judge calls almost none of these right).
    Blank,
    /// Calibration row, not an editor: the result is the target render, the
    /// ideal edit (no mask; a sound judge calls almost all of these right).
    Oracle,
}

/// The fill of the [`Method::Blank`] calibration row: RGB(128, 128, 128).
pub const BLANK_GREY: [u8; 3] = [128, 128, 128];

/// The number of editors ([`EditMethod::ALL`]).
const EDITORS: usize = EditMethod::ALL.len();

impl Method {
    /// The optimisation-based method.
    pub const OPTIMISE: Method = Method::Edit(EditMethod::Optimise);
    /// DiffEdit.
    pub const DIFFEDIT: Method = Method::Edit(EditMethod::DiffEdit);
    /// SDEdit.
    pub const SDEDIT: Method = Method::Edit(EditMethod::SdEdit);

    /// The calibration rows.
    pub const CALIBRATION: [Method; 3] = [Method::Identity, Method::Blank, Method::Oracle];

    /// Every method, the editors ([`EditMethod::ALL`]) first.
    pub const ALL: [Method; EDITORS + 3] = {
        let mut all = [Method::Identity; EDITORS + 3];
        let mut i = 0;
        while i < EDITORS {
            all[i] = Method::Edit(EditMethod::ALL[i]);
            i += 1;
        }
        let mut j = 0;
        while j < Self::CALIBRATION.len() {
            all[EDITORS + j] = Self::CALIBRATION[j];
            j += 1;
        }
        all
    };

    /// Its name: an editor's [`EditMethod::word`] (`optimise`, `diffedit`,
    /// `sdedit`), or `identity`, `blank`, `oracle`.
    pub fn word(self) -> &'static str {
        match self {
            Method::Edit(m) => m.word(),
            Method::Identity => "identity",
            Method::Blank => "blank",
            Method::Oracle => "oracle",
        }
    }

    /// The method named `word` (as [`word`](Self::word) writes it; also
    /// `optimize`, as [`EditMethod::from_word`] reads it).
    pub fn from_word(word: &str) -> Option<Method> {
        EditMethod::from_word(word)
            .map(Method::Edit)
            .or_else(|| Self::CALIBRATION.into_iter().find(|m| m.word() == word))
    }

    /// The editor, unless it is a calibration row.
    pub fn editor(self) -> Option<EditMethod> {
        match self {
            Method::Edit(m) => Some(m),
            _ => None,
        }
    }

    /// Whether it is a calibration row (identity, blank, oracle), which
    /// edits nothing and calls no model.
    pub fn is_calibration(self) -> bool {
        self.editor().is_none()
    }

    /// Whether it uses the case's (or the override's) mask: not SDEdit,
    /// identity or oracle, whose records say `none`.
    pub fn uses_mask(self) -> bool {
        match self {
            Method::Edit(m) => m.uses_mask(),
            Method::Blank => true,
            Method::Identity | Method::Oracle => false,
        }
    }
}

impl optedit_edit::Worded for Method {
    const WHAT: &'static str = "method";
    fn all() -> &'static [Self] {
        &Method::ALL
    }
    fn word(self) -> &'static str {
        Method::word(self)
    }
    fn from_word(word: &str) -> Option<Self> {
        Method::from_word(word)
    }
}

impl From<EditMethod> for Method {
    fn from(m: EditMethod) -> Self {
        Method::Edit(m)
    }
}

/// Where the parts of a demo pipeline live.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPaths {
    /// The Stable Diffusion folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/).
    pub pipeline: PathBuf,
    /// The classifier's weights.
    pub classifier: PathBuf,
    /// The pose ControlNet folder.
    pub pose: PathBuf,
    /// The Canny ControlNet folder (the `canny` and `edges` controls).
    pub canny: PathBuf,
    /// The scribble ControlNet folder.
    pub scribble: PathBuf,
    /// The layout ControlNet folder.
    pub layout: PathBuf,
}

impl ModelPaths {
    /// The layout `optedit-train` exports: `dir/{controlnet-pose,
    /// controlnet-canny, controlnet-scribble, controlnet-layout}/` and
    /// `dir/classifier/model.safetensors`.
    pub fn demo(dir: &Path) -> Self {
        Self {
            pipeline: dir.to_path_buf(),
            classifier: dir.join("classifier/model.safetensors"),
            pose: dir.join(ControlName::Pose.kind().folder()),
            canny: dir.join(ControlName::Canny.kind().folder()),
            scribble: dir.join(ControlName::Scribble.kind().folder()),
            layout: dir.join(ControlName::Layout.kind().folder()),
        }
    }

    /// The folder of a ControlNet (`canny` and `edges` share one).
    pub fn controlnet(&self, name: ControlName) -> &Path {
        match name {
            ControlName::Pose => &self.pose,
            ControlName::Canny | ControlName::Edges => &self.canny,
            ControlName::Scribble => &self.scribble,
            ControlName::Layout => &self.layout,
        }
    }
}

/// The models an evaluation uses (parameters frozen).
#[derive(Debug)]
pub struct EvalModels<B: AutodiffBackend> {
    /// Stable Diffusion.
    pub pipeline: SdPipeline<B>,
    /// The classifier that judges results.
    pub judge: Judge<B::InnerBackend>,
    /// Fingerprint of the classifier's weights (keys cached references).
    pub classifier_fingerprint: String,
    /// Fingerprint of the weight files of the pipeline (UNet, text encoder,
    /// VAE) and of the ControlNets loaded: a resumed run must use the same
    /// weights, not only the same folder names.
    pub weights_fingerprint: String,
    /// The ControlNets loaded.
    pub controlnets: BTreeMap<ControlName, ControlNetModel<B>>,
}

impl<B: AutodiffBackend> EvalModels<B> {
    /// Loads the pipeline, the classifier and the ControlNets in `controls`
    /// (a folder that two controls share, as `canny` and `edges` do, once).
    pub fn load(paths: &ModelPaths, controls: &[ControlName], device: &B::Device) -> Result<Self> {
        let pipeline = SdPipeline::load(&paths.pipeline, device)?;
        let judge = Judge::load(&paths.classifier, device)?;
        let mut controlnets: BTreeMap<ControlName, ControlNetModel<B>> = BTreeMap::new();
        let mut weight_dirs: Vec<PathBuf> = ["unet", "text_encoder", "vae"]
            .iter()
            .map(|p| paths.pipeline.join(p))
            .collect();
        for &c in controls {
            let dir = paths.controlnet(c);
            if !dir.is_dir() {
                return Err(EvalError::argument(
                    c.kind().folder(),
                    format!(
                        "{}: no such folder, and a case conditions on the {} ControlNet",
                        dir.display(),
                        c.word()
                    ),
                ));
            }
            let shared = controlnets
                .iter()
                .find(|(other, _)| paths.controlnet(**other) == dir)
                .map(|(_, net)| net.clone());
            let net = match shared {
                Some(net) => net,
                None => {
                    weight_dirs.push(dir.to_path_buf());
                    ControlNetModel::load(dir, device)?.no_grad()
                }
            };
            controlnets.insert(c, net);
        }
        Ok(Self {
            pipeline,
            judge,
            classifier_fingerprint: fingerprint(&paths.classifier)?,
            weights_fingerprint: weights_fingerprint(&weight_dirs)?,
            controlnets,
        })
    }
}

/// The fingerprints of the `*.safetensors` files in `dirs` (each folder's
/// files in name order), joined.
fn weights_fingerprint(dirs: &[PathBuf]) -> Result<String> {
    let mut parts = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        for f in files {
            parts.push(fingerprint(&f)?);
        }
    }
    Ok(parts.join(","))
}

/// How cases are run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// The method.
    pub method: Method,
    /// Its configuration (steps, strength, lambda, optimiser, seed...).
    pub config: EditConfig,
    /// A mask for every case instead of each case's own.
    pub mask_override: Option<MaskSpec>,
    /// Conditioning scale of every ControlNet.
    pub control_scale: f64,
    /// Negative prompt of the target condition (default: empty).
    pub negative_prompt: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            method: Method::OPTIMISE,
            config: EditConfig::default(),
            mask_override: None,
            control_scale: 1.0,
            negative_prompt: None,
        }
    }
}

/// The judge's verdict on one attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeResult {
    /// The attribute.
    pub attribute: Attribute,
    /// The value it should have.
    pub target: String,
    /// The value the judge sees.
    pub predicted: String,
    /// Whether they agree.
    pub correct: bool,
}

/// Classifier features of one judged region of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionFeatures {
    /// The region's target class.
    pub class: ClassKey,
    /// The features.
    pub features: Vec<f32>,
}

/// The measures of one case (a line of `cases.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The case.
    pub id: String,
    /// The case's kind: `text`, `pose`, `text+pose`, `edges`, `scribble`,
    /// `layout` or `multi` ([`crate::CaseKind::word`]).
    pub kind: String,
    /// The method.
    pub method: String,
    /// The mask given (`none` for SDEdit and the identity and oracle rows).
    pub mask: String,
    /// The source prompt used.
    pub source_prompt: String,
    /// The target prompt used.
    pub prompt: String,
    /// Whether every edited attribute is judged to have its target value.
    pub correct: bool,
    /// The edited attributes.
    pub edited: Vec<AttributeResult>,
    /// The kept attributes of the edited object (e.g. its shape in a colour edit).
    pub kept: Vec<AttributeResult>,
    /// PSNR (dB) vs the input outside the true edit region dilated by 2 px.
    pub psnr_bg: Option<f64>,
    /// SSIM vs the input there ([`ssim_outside`]: the mean of the SSIM map
    /// over window centres outside the region; absent in records written
    /// before it was measured).
    #[serde(default)]
    pub ssim_bg: Option<f64>,
    /// Mean absolute error (0-255) vs the input there.
    pub mae_bg: Option<f64>,
    /// Share of the image the method's mask covers (at pixel resolution).
    pub mask_coverage: f64,
    /// IoU of the method's mask with the true edit region.
    pub mask_iou: Option<f64>,
    /// The mask was empty, so the result is the plain reconstruction.
    pub mask_empty: bool,
    /// Features of the judged regions.
    pub regions: Vec<RegionFeatures>,
    /// The edit failed (diverged): no background measures, `correct =
    /// false`, and every edited and kept attribute recorded as wrong
    /// (predicted [`FAILED`]).
    pub error: Option<String>,
    /// Wall time of the whole case, seconds.
    pub seconds: f64,
    /// Wall time of each editor stage, seconds.
    pub stages: BTreeMap<String, f64>,
}

/// The pictures of one case.
#[derive(Debug, Clone)]
pub struct CaseImages {
    /// The source render.
    pub input: RgbImage,
    /// The mask the method used (white = may change).
    pub mask: GrayImage,
    /// The result.
    pub result: RgbImage,
    /// The target render.
    pub target: RgbImage,
}

/// A case's record and pictures.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The measures.
    pub record: CaseRecord,
    /// The pictures (`result` is the input when the edit failed).
    pub images: CaseImages,
}

/// The condition image of control `c` for a case: the source image's Canny
/// edges for `canny`; for the others the demo model's condition of the
/// *target* render (`optedit_judge::conditions::condition_image`): its
/// OpenPose skeleton, Canny edges, scribble or layout.
pub fn control_image(c: ControlName, scenes: &CaseScenes) -> Result<RgbImage> {
    Ok(match c {
        ControlName::Canny => edge_image(scenes.input())?,
        ControlName::Pose | ControlName::Edges | ControlName::Scribble | ControlName::Layout => {
            condition_image(c.kind(), &scenes.target_render)?
        }
    })
}

/// What records predict for the attributes of a case whose edit failed.
pub const FAILED: &str = "failed";

/// What a method made of a case, in pixels.
struct Produced {
    /// The result.
    result: RgbImage,
    /// The mask used (white = may change); `None` for a row that used none
    /// (identity, oracle).
    mask: Option<GrayImage>,
    /// Time per editor stage.
    timings: Vec<(Stage, std::time::Duration)>,
    /// The editor's mask was empty.
    empty: bool,
}

/// The result of a calibration row: no model, no randomness.
fn calibration(method: Method, scenes: &CaseScenes, mask_spec: MaskSpec) -> Result<Produced> {
    let input = scenes.input();
    let (result, mask) = match method {
        Method::Identity => (input.clone(), None),
        Method::Oracle => (scenes.target_render.image.clone(), None),
        Method::Blank => {
            let region = match (mask_spec, scenes.pixel_mask(mask_spec)) {
                (MaskSpec::Full, _) | (_, None) => scenes.true_region(),
                (_, Some(m)) => m,
            };
            let mut result = input.clone();
            for (p, m) in result.pixels_mut().zip(region.pixels()) {
                // Inside as the measures count it: above 127.
                if m[0] > 127 {
                    *p = image::Rgb(BLANK_GREY);
                }
            }
            (result, Some(region))
        }
        Method::Edit(_) => {
            return Err(EvalError::argument(
                "method",
                format!("{} is an editor, not a calibration row", method.word()),
            ))
        }
    };
    Ok(Produced {
        result,
        mask,
        timings: Vec::new(),
        empty: false,
    })
}

/// The result image, the latent mask used and the stage timings.
type MethodOutput<B> = (
    Tensor<B, 4>,
    Option<Tensor<B, 4>>,
    Vec<(Stage, std::time::Duration)>,
    bool,
);

fn apply_method<B: AutodiffBackend>(
    models: &EvalModels<B>,
    case: &Case,
    scenes: &CaseScenes,
    options: &RunOptions,
    mask_spec: MaskSpec,
    progress: &mut dyn Progress,
) -> Result<std::result::Result<MethodOutput<B>, EditError>> {
    let p = &models.pipeline;
    let source_prompt = case
        .source_prompt
        .clone()
        .unwrap_or_else(|| scenes.source.caption());
    let target_prompt = case
        .prompt
        .clone()
        .unwrap_or_else(|| scenes.target.caption());
    let editor = Editor::new(p, options.config.clone())?;
    let source = editor.encode_prompt(&source_prompt, None)?;
    let target = editor.encode_prompt(&target_prompt, options.negative_prompt.as_deref())?;
    let mut controls = Vec::new();
    for &c in &case.controls {
        let net = models.controlnets.get(&c).ok_or_else(|| {
            EvalError::argument(
                "controls",
                format!(
                    "case {} needs the {} ControlNet, which is not loaded",
                    case.id,
                    c.word()
                ),
            )
        })?;
        let image = control_image(c, scenes)?;
        controls.push(
            ControlCondition::new(net, rgb_to_tensor::<B>(&image, &p.device))
                .with_scale(options.control_scale),
        );
    }
    let condition = EditCondition {
        prompt: target,
        controls,
    };
    let image = rgb_to_signed_tensor::<B>(scenes.input(), &p.device);
    let mut mask_source: Box<dyn MaskSource<B::InnerBackend>> =
        match (mask_spec, scenes.pixel_mask(mask_spec)) {
            (MaskSpec::Full, _) => Box::new(FullMask),
            (_, Some(m)) => {
                let (w, h) = m.dimensions();
                let pixels = m.pixels().map(|v| f32::from(v[0]) / 255.0).collect();
                Box::new(UserMask::new(pixels, w as usize, h as usize)?)
            }
            (_, None) => Box::new(EstimatedMask::default()),
        };
    let editor_method = options.method.editor().ok_or_else(|| {
        EvalError::argument(
            "method",
            format!(
                "{} is a calibration row, not an editor",
                options.method.word()
            ),
        )
    })?;
    let out = editor
        .edit_with(
            editor_method,
            image,
            &source,
            &condition,
            mask_source.as_mut(),
            progress,
        )
        .map(|o| (o.image, o.mask, o.timings, o.mask_empty));
    match out {
        Ok(o) => Ok(Ok(o)),
        // A diverged edit is an outcome of the method, measured as a failure.
        Err(e @ EditError::Diverged { .. }) => Ok(Err(e)),
        Err(source) => Err(EvalError::Edit {
            id: case.id.clone(),
            source,
        }),
    }
}

/// Runs `case` with `options` and measures the result: edit accuracy by the
/// judge on the target regions, background PSNR / MAE / SSIM outside the
/// true edit region dilated by 2 px, the mask's coverage and IoU, the
/// regions' features. A calibration row ([`Method::is_calibration`]) makes
/// its result without any model and is measured the same way.
pub fn run_case<B: AutodiffBackend>(
    models: &EvalModels<B>,
    case: &Case,
    options: &RunOptions,
    progress: &mut dyn Progress,
) -> Result<CaseOutcome> {
    let clock = Instant::now();
    let scenes = CaseScenes::of(case)?;
    let input = scenes.input().clone();
    let (w, h) = input.dimensions();
    let mask_spec = options.mask_override.unwrap_or(case.mask);
    let outcome = if options.method.is_calibration() {
        Ok(calibration(options.method, &scenes, mask_spec)?)
    } else {
        let f = models.pipeline.vae_scale() as u32;
        if w % f != 0 || h % f != 0 {
            return Err(EvalError::argument(
                "model",
                format!("{w}x{h} scenes are not a multiple of the VAE factor {f}"),
            ));
        }
        match apply_method(models, case, &scenes, options, mask_spec, progress)? {
            Ok((image, latent_mask, timings, empty)) => Ok(Produced {
                result: tensor_to_rgb(image)?,
                mask: Some(match latent_mask {
                    Some(m) => latent_mask_to_gray(m, f)?,
                    None => GrayImage::from_pixel(w, h, image::Luma([255])),
                }),
                timings,
                empty,
            }),
            Err(e) => Err(e),
        }
    };
    let mut record = CaseRecord {
        id: case.id.clone(),
        kind: case.kind().word().to_string(),
        method: options.method.word().to_string(),
        mask: if options.method.uses_mask() {
            mask_spec.to_string()
        } else {
            "none".into()
        },
        source_prompt: case
            .source_prompt
            .clone()
            .unwrap_or_else(|| scenes.source.caption()),
        prompt: case
            .prompt
            .clone()
            .unwrap_or_else(|| scenes.target.caption()),
        correct: false,
        edited: Vec::new(),
        kept: Vec::new(),
        psnr_bg: None,
        ssim_bg: None,
        mae_bg: None,
        mask_coverage: 1.0,
        mask_iou: None,
        mask_empty: false,
        regions: Vec::new(),
        error: None,
        seconds: 0.0,
        stages: BTreeMap::new(),
    };
    let truth = scenes.true_region();
    let (result, mask) = match outcome {
        Err(e) => {
            record.error = Some(e.to_string());
            // A failed edit is wrong on everything it was to change or keep.
            for r in scenes.judged_regions(case) {
                let failed = |&(a, target): &(Attribute, usize)| AttributeResult {
                    attribute: a,
                    target: value_name(a, target),
                    predicted: FAILED.into(),
                    correct: false,
                };
                record.edited.extend(r.edited.iter().map(failed));
                record.kept.extend(r.kept.iter().map(failed));
            }
            (input.clone(), GrayImage::new(w, h))
        }
        Ok(Produced {
            result,
            mask,
            timings,
            empty,
        }) => {
            record.mask_empty = empty;
            let mask = match mask {
                Some(m) => {
                    record.mask_coverage = coverage(&m);
                    record.mask_iou = iou(&m, &truth);
                    m
                }
                None => {
                    record.mask_coverage = 0.0;
                    GrayImage::new(w, h)
                }
            };
            let exclusion = scenes.background_exclusion();
            record.psnr_bg = psnr_outside(&result, &input, &exclusion);
            record.ssim_bg = ssim_outside(&result, &input, &exclusion);
            record.mae_bg = mae_outside(&result, &input, &exclusion);
            for (stage, d) in timings {
                *record.stages.entry(stage.to_string()).or_default() += d.as_secs_f64();
            }
            judge_result(models, case, &scenes, &result, &mut record);
            (result, mask)
        }
    };
    record.seconds = clock.elapsed().as_secs_f64();
    Ok(CaseOutcome {
        record,
        images: CaseImages {
            input,
            mask,
            result,
            target: scenes.target_render.image.clone(),
        },
    })
}

fn judge_result<B: AutodiffBackend>(
    models: &EvalModels<B>,
    case: &Case,
    scenes: &CaseScenes,
    result: &RgbImage,
    record: &mut CaseRecord,
) {
    let regions = scenes.judged_regions(case);
    let images: Vec<&RgbImage> = regions.iter().map(|_| result).collect();
    let masks: Vec<&GrayImage> = regions.iter().map(|r| &r.mask).collect();
    let verdicts = models.judge.judge(&images, &masks);
    let check =
        |j: &crate::features::Judgement, &(a, target): &(Attribute, usize)| AttributeResult {
            attribute: a,
            target: value_name(a, target),
            predicted: value_name(a, j.predicted(a)),
            correct: j.predicted(a) == target,
        };
    for (r, j) in regions.iter().zip(verdicts) {
        record.edited.extend(r.edited.iter().map(|a| check(&j, a)));
        record.kept.extend(r.kept.iter().map(|a| check(&j, a)));
        record.regions.push(RegionFeatures {
            class: r.class,
            features: j.features,
        });
    }
    record.correct = record.edited.iter().all(|a| a.correct);
}

/// A record for unit tests: case `id` of `kind`, method `optimise` with
/// the true mask, one edited attribute (the pose in a `pose` case, else
/// the colour) judged `correct`, and the background PSNR `psnr_bg` (SSIM
/// `psnr_bg / 100`, MAE 1); `None` makes it a failed edit.
#[cfg(test)]
pub(crate) fn test_record(id: &str, kind: &str, correct: bool, psnr_bg: Option<f64>) -> CaseRecord {
    CaseRecord {
        id: id.into(),
        kind: kind.into(),
        method: "optimise".into(),
        mask: "true".into(),
        source_prompt: String::new(),
        prompt: String::new(),
        correct,
        edited: vec![AttributeResult {
            attribute: if kind == "pose" {
                Attribute::Pose
            } else {
                Attribute::Colour
            },
            target: "x".into(),
            predicted: "y".into(),
            correct,
        }],
        kept: vec![],
        psnr_bg,
        ssim_bg: psnr_bg.map(|p| p / 100.0),
        mae_bg: psnr_bg.map(|_| 1.0),
        mask_coverage: 0.1,
        mask_iou: Some(1.0),
        mask_empty: false,
        regions: vec![],
        error: psnr_bg.is_none().then(|| "diverged".into()),
        seconds: 2.0,
        stages: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_words_are_those_result_files_record() {
        let words: Vec<&str> = Method::ALL.iter().map(|m| m.word()).collect();
        assert_eq!(
            words,
            ["optimise", "diffedit", "sdedit", "identity", "blank", "oracle"]
        );
        for m in Method::ALL {
            assert_eq!(Method::from_word(m.word()), Some(m));
            assert_eq!(m.is_calibration(), m.editor().is_none());
        }
        assert_eq!(Method::from_word("optimize"), Some(Method::OPTIMISE));
        assert_eq!(Method::from_word("inpaint"), None);
        // The command line parses it through `Worded`, listing every word.
        use optedit_edit::Worded;
        assert_eq!(Method::parse_word("blank"), Ok(Method::Blank));
        assert_eq!(
            Method::parse_word("inpaint"),
            Err("expected one of optimise, diffedit, sdedit, identity, blank, oracle".into())
        );
        assert_eq!(Method::from(EditMethod::SdEdit), Method::SDEDIT);
        let masked: Vec<bool> = Method::ALL.iter().map(|m| m.uses_mask()).collect();
        assert_eq!(masked, [true, true, false, false, true, false]);
    }
}
