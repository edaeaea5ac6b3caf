//! ControlNet groups: `--controlnet DIR` followed by one condition flag and
//! an optional `--control-scale`, associated by their positions on the
//! command line; and the condition images they make.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ArgMatches;
use image::DynamicImage;
use optedit_cond::layout::{layout_condition, LayoutOptions};
use optedit_cond::scribble::{scribble_condition, ScribbleOptions};
use optedit_cond::{pose, pose_render, BodyPose, ConditionImage};

use optedit::images::Fit;

use crate::UsageError;

/// A group's condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// OpenPose JSON.
    Pose(PathBuf),
    /// Scribble drawing.
    Scribble(PathBuf),
    /// Canny of the input image.
    EdgesAuto,
    /// An edge-map image.
    Edges(PathBuf),
    /// Layout / segmentation map.
    Layout(PathBuf),
}

impl Condition {
    /// Short name (used in file names).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Pose(_) => "pose",
            Self::Scribble(_) => "scribble",
            Self::EdgesAuto | Self::Edges(_) => "edges",
            Self::Layout(_) => "layout",
        }
    }

    /// The file it reads, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Pose(p) | Self::Scribble(p) | Self::Edges(p) | Self::Layout(p) => Some(p),
            Self::EdgesAuto => None,
        }
    }
}

/// One `--controlnet` group.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlSpec {
    /// ControlNet folder.
    pub model: PathBuf,
    /// Its condition.
    pub condition: Condition,
    /// Conditioning scale.
    pub scale: f64,
}

enum Item {
    Start(PathBuf),
    Cond(&'static str, String, Condition),
    Scale(f64),
}

fn indexed<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> Vec<(usize, T)> {
    match (m.indices_of(id), m.get_many::<T>(id)) {
        (Some(i), Some(v)) => i.zip(v.cloned()).collect(),
        _ => Vec::new(),
    }
}

/// The groups of a subcommand's matches (`m` is the subcommand's own).
pub fn parse_groups(m: &ArgMatches) -> Result<Vec<ControlSpec>> {
    let mut items: Vec<(usize, Item)> = Vec::new();
    items.extend(
        indexed::<PathBuf>(m, "controlnet")
            .into_iter()
            .map(|(i, p)| (i, Item::Start(p))),
    );
    for (id, flag) in [
        ("pose", "--pose"),
        ("scribble", "--scribble"),
        ("layout", "--layout"),
    ] {
        for (i, p) in indexed::<PathBuf>(m, id) {
            let text = p.display().to_string();
            let c = match id {
                "pose" => Condition::Pose(p),
                "scribble" => Condition::Scribble(p),
                _ => Condition::Layout(p),
            };
            items.push((i, Item::Cond(flag, text, c)));
        }
    }
    for (i, v) in indexed::<String>(m, "edges") {
        let c = if v == "auto" {
            Condition::EdgesAuto
        } else {
            Condition::Edges(PathBuf::from(&v))
        };
        items.push((i, Item::Cond("--edges", v, c)));
    }
    items.extend(
        indexed::<f64>(m, "control_scale")
            .into_iter()
            .map(|(i, s)| (i, Item::Scale(s))),
    );
    items.sort_by_key(|(i, _)| *i);

    struct Group {
        model: PathBuf,
        cond: Option<(&'static str, Condition)>,
        scale: Option<f64>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let usage = |msg: String| anyhow::Error::from(UsageError(msg));
    for (_, item) in items {
        match item {
            Item::Start(model) => groups.push(Group {
                model,
                cond: None,
                scale: None,
            }),
            Item::Cond(flag, text, c) => {
                let g = groups.last_mut().ok_or_else(|| {
                    usage(format!(
                        "`{flag} {text}` needs a `--controlnet <DIR>` before it (each --controlnet starts a group; the condition flag after it belongs to it)"
                    ))
                })?;
                if let Some((first, _)) = &g.cond {
                    return Err(usage(format!(
                        "--controlnet {} has two condition flags ({first} and {flag}); give one per --controlnet",
                        g.model.display()
                    )));
                }
                g.cond = Some((flag, c));
            }
            Item::Scale(s) => {
                let g = groups.last_mut().ok_or_else(|| {
                    usage(format!(
                        "`--control-scale {s}` needs a `--controlnet <DIR>` before it"
                    ))
                })?;
                if g.scale.is_some() {
                    return Err(usage(format!(
                        "--controlnet {} has two --control-scale values",
                        g.model.display()
                    )));
                }
                if !s.is_finite() {
                    return Err(usage(format!("--control-scale {s} must be finite")));
                }
                g.scale = Some(s);
            }
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let (_, condition) = g.cond.ok_or_else(|| {
                usage(format!(
                    "--controlnet {} has no condition: give one of --pose, --scribble, --edges, --layout after it",
                    g.model.display()
                ))
            })?;
            Ok(ControlSpec {
                model: g.model,
                condition,
                scale: g.scale.unwrap_or(1.0),
            })
        })
        .collect()
}

/// A condition read from disk (before the crop is known).
pub enum Source {
    /// Poses, already normalised.
    Pose(Vec<BodyPose>),
    /// An image (scribble, edge map or layout).
    Image(DynamicImage),
    /// Canny of the input.
    EdgesAuto,
}

/// Reads a group's condition file; pose pixel coordinates are relative to the
/// file's canvas size, else to `image_size`.
pub fn read_source(spec: &ControlSpec, image_size: (u32, u32)) -> Result<Source> {
    Ok(match &spec.condition {
        Condition::Pose(p) => Source::Pose(read_pose(p, image_size)?),
        Condition::EdgesAuto => Source::EdgesAuto,
        Condition::Scribble(p) | Condition::Edges(p) | Condition::Layout(p) => {
            Source::Image(optedit::images::read(p)?)
        }
    })
}

/// Reads OpenPose JSON: coordinates relative to its `canvas_width/height`
/// when present; else normalised when all within `[0, 1]`; else pixels of
/// `size`.
pub fn read_pose(path: &Path, size: (u32, u32)) -> Result<Vec<BodyPose>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: malformed JSON", path.display()))?;
    let has_canvas = value.get("canvas_width").is_some_and(|v| !v.is_null());
    let pixels = !has_canvas
        && value["people"].as_array().is_some_and(|people| {
            people.iter().any(|p| {
                p["pose_keypoints_2d"].as_array().is_some_and(|k| {
                    k.chunks(3).any(|c| {
                        let f =
                            |i: usize| c.get(i).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                        f(2) > 0.0 && (f(0) > 1.0 || f(1) > 1.0)
                    })
                })
            })
        });
    Ok(pose::read_openpose_json(path, pixels.then_some(size))?)
}

/// The part of `image` (the scaled input's size) the model sees.
fn crop_scaled(image: &DynamicImage, fit: &Fit) -> DynamicImage {
    let [x, y, w, h] = fit.crop;
    image.crop_imm(x, y, w, h)
}

/// The condition image of a group at the model's input size: sources the
/// input's size are fitted like it (scaled and cropped), other sizes
/// resized to the model's size; poses are drawn at the scaled size.
pub fn condition_image(
    source: &Source,
    spec: &ControlSpec,
    input: &DynamicImage,
    fit: &Fit,
    canny: (f64, f64),
) -> Result<ConditionImage> {
    let size = fit.size();
    let input_size = (fit.width, fit.height);
    // Layout maps are scaled nearest (their colours are labels), the rest
    // smoothly.
    let fitted = |img: &DynamicImage, nearest: bool| -> Result<DynamicImage> {
        if (img.width(), img.height()) != input_size {
            Ok(img.clone())
        } else if nearest && fit.is_scaled() {
            let scaled = optedit_cond::image::resize_nearest(
                &img.to_rgb8(),
                fit.scaled_width,
                fit.scaled_height,
            )?;
            Ok(crop_scaled(&DynamicImage::ImageRgb8(scaled), fit))
        } else {
            Ok(DynamicImage::ImageRgb8(fit.apply(&img.to_rgb8())))
        }
    };
    let name = spec
        .condition
        .file()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "--edges auto".into());
    let out = match (source, &spec.condition) {
        (Source::Pose(people), _) => {
            let scaled =
                pose_render::render_body_poses(people, fit.scaled_width, fit.scaled_height)?;
            ConditionImage::new(crop_scaled(&DynamicImage::ImageRgb8(scaled), fit).to_rgb8())
        }
        (Source::EdgesAuto, _) => optedit_cond::canny::canny_condition(
            &DynamicImage::ImageRgb8(fit.apply(&input.to_rgb8())),
            canny.0,
            canny.1,
            None,
        ),
        (Source::Image(img), Condition::Scribble(_)) => scribble_condition(
            &fitted(img, false)?,
            &ScribbleOptions {
                size: Some(size),
                ..ScribbleOptions::default()
            },
        ),
        (Source::Image(img), Condition::Layout(_)) => layout_condition(
            &fitted(img, true)?,
            &LayoutOptions {
                size: Some(size),
                max_colors: None,
            },
        ),
        (Source::Image(img), _) => ConditionImage::from_gray(&fit.apply_gray(&img.to_luma8())),
    };
    out.with_context(|| format!("condition {name}"))
}
