//! A case's ground truth: source and target scenes rendered, the true edit
//! region, the mask the method is given and the regions the judge reads.

use image::{GrayImage, Luma, RgbImage};
use optedit_judge::region::judged_box;
use optedit_world::{Colour, PoseClass, Rendered, SceneSpec, Shape};
use serde::{Deserialize, Serialize};

use crate::cases::{Case, MaskSpec};
use crate::error::Result;
use crate::features::ClassKey;
use crate::metrics::{bounding_box, dilate, erode, union};

/// Pixels by which the preserved-background exclusion grows the true edit
/// region: the decoded edges of an edited object may bleed a little.
pub const REGION_DILATION: u32 = 2;

/// An attribute the judge names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    /// An object's colour.
    Colour,
    /// An object's shape.
    Shape,
    /// The figure's pose class.
    Pose,
}

impl Attribute {
    /// Every attribute.
    pub const ALL: [Attribute; 3] = [Attribute::Colour, Attribute::Shape, Attribute::Pose];

    /// Its name.
    pub fn word(self) -> &'static str {
        match self {
            Attribute::Colour => "colour",
            Attribute::Shape => "shape",
            Attribute::Pose => "pose",
        }
    }
}

/// The name of class `index` of `attribute` ("blue", "star", "waving"), or
/// "nothing" for the judge's "nothing recognisable" class (one past the
/// world's classes).
pub fn value_name(attribute: Attribute, index: usize) -> String {
    let classes = match attribute {
        Attribute::Colour => Colour::ALL.len(),
        Attribute::Shape => Shape::ALL.len(),
        Attribute::Pose => PoseClass::ALL.len(),
    };
    if index == classes {
        return NOTHING.to_string();
    }
    match attribute {
        Attribute::Colour => Colour::ALL.get(index).map(|c| c.word().to_string()),
        Attribute::Shape => Shape::ALL.get(index).map(|s| s.word().to_string()),
        Attribute::Pose => PoseClass::ALL.get(index).map(|p| p.phrase().to_string()),
    }
    .unwrap_or_else(|| format!("#{index}"))
}

/// What the judge's "nothing recognisable" outcome is called in records.
pub const NOTHING: &str = "nothing";

/// One region the judge reads: a box around the edited thing's source and
/// target masks (the same for every method, and not the target's outline:
/// the judge is not shown the answer), what the thing should be there, and
/// its class for the feature distance.
#[derive(Debug, Clone)]
pub struct JudgedRegion {
    /// The judged box ([`optedit_judge::region::judged_box`]
    /// of the thing's source and target masks).
    pub mask: GrayImage,
    /// Its class (the feature distance groups by it).
    pub class: ClassKey,
    /// Attributes the case changes, with their target class indices.
    pub edited: Vec<(Attribute, usize)>,
    /// Attributes of the thing the case keeps, with their class indices.
    pub kept: Vec<(Attribute, usize)>,
}

/// Source and target scenes of a case, rendered.
#[derive(Debug, Clone)]
pub struct CaseScenes {
    /// The source scene.
    pub source: SceneSpec,
    /// The target scene (the source with the edit applied).
    pub target: SceneSpec,
    /// The source render (the method's input).
    pub source_render: Rendered,
    /// The target render (the ideal result).
    pub target_render: Rendered,
    /// Source and target masks of every edited thing.
    pub parts: Vec<(GrayImage, GrayImage)>,
}

impl CaseScenes {
    /// Samples and renders the scenes of `case`.
    pub fn of(case: &Case) -> Result<Self> {
        let source = case.source_spec()?;
        let target = case.target_spec(&source)?;
        let (source_render, target_render) = (source.render(), target.render());
        let mut parts = Vec::new();
        if let Some(i) = case.edit.object {
            parts.push((
                source_render.object_masks[i].clone(),
                target_render.object_masks[i].clone(),
            ));
        }
        if case.edit.pose.is_some() {
            parts.push((
                source_render.figure_mask.clone(),
                target_render.figure_mask.clone(),
            ));
        }
        Ok(Self {
            source,
            target,
            source_render,
            target_render,
            parts,
        })
    }

    /// The input image.
    pub fn input(&self) -> &RgbImage {
        &self.source_render.image
    }

    fn size(&self) -> (u32, u32) {
        self.source_render.image.dimensions()
    }

    /// The true edit region: the union of the edited things' source and
    /// target masks.
    pub fn true_region(&self) -> GrayImage {
        union(self.size(), self.parts.iter().flat_map(|(s, t)| [s, t]))
    }

    /// The region excluded from the background measures: the true region
    /// dilated by [`REGION_DILATION`].
    pub fn background_exclusion(&self) -> GrayImage {
        dilate(&self.true_region(), REGION_DILATION)
    }

    /// The pixel mask of `spec` (`None` for [`MaskSpec::Estimated`], which
    /// the editor estimates).
    pub fn pixel_mask(&self, spec: MaskSpec) -> Option<GrayImage> {
        let (w, h) = self.size();
        Some(match spec {
            MaskSpec::True => self.true_region(),
            MaskSpec::Dilate(r) => dilate(&self.true_region(), r),
            MaskSpec::Erode(r) => erode(&self.true_region(), r),
            MaskSpec::Box => {
                let boxes: Vec<GrayImage> = self
                    .parts
                    .iter()
                    .map(|(s, t)| bounding_box(&union((w, h), [s, t])))
                    .collect();
                union((w, h), &boxes)
            }
            MaskSpec::Full => GrayImage::from_pixel(w, h, Luma([255])),
            MaskSpec::Estimated => return None,
        })
    }

    /// The regions the judge reads: the edited object (its colour and/or
    /// shape; class = its target colour and shape) and/or the figure (its
    /// pose; class = its target pose), each as the box around the thing's
    /// source and target masks.
    pub fn judged_regions(&self, case: &Case) -> Vec<JudgedRegion> {
        let mut out = Vec::new();
        let (s, t) = (&self.source_render, &self.target_render);
        if let Some(i) = case.edit.object {
            let o = &self.target.objects[i];
            let (mut edited, mut kept) = (Vec::new(), Vec::new());
            let colour = (Attribute::Colour, o.colour.index());
            let shape = (Attribute::Shape, o.shape.index());
            if case
                .edit
                .colour
                .is_some_and(|c| c != self.source.objects[i].colour)
            {
                edited.push(colour)
            } else {
                kept.push(colour)
            }
            if case
                .edit
                .shape
                .is_some_and(|s| s != self.source.objects[i].shape)
            {
                edited.push(shape)
            } else {
                kept.push(shape)
            }
            out.push(JudgedRegion {
                mask: judged_box(&[&s.object_masks[i], &t.object_masks[i]]),
                class: ClassKey::Object {
                    colour: o.colour,
                    shape: o.shape,
                },
                edited,
                kept,
            });
        }
        if let Some(p) = case.edit.pose {
            let edited = if p != self.source.figure.pose {
                vec![(Attribute::Pose, p.index())]
            } else {
                Vec::new()
            };
            let kept = if edited.is_empty() {
                vec![(Attribute::Pose, p.index())]
            } else {
                Vec::new()
            };
            out.push(JudgedRegion {
                mask: judged_box(&[&s.figure_mask, &t.figure_mask]),
                class: ClassKey::Pose(p),
                edited,
                kept,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::{CaseEdit, ControlName};
    use crate::metrics::coverage;

    fn case(edit: CaseEdit) -> Case {
        Case {
            id: "t".into(),
            seed: 11,
            objects: Some(2),
            edit,
            controls: vec![ControlName::Pose],
            mask: MaskSpec::True,
            prompt: None,
            source_prompt: None,
        }
    }

    #[test]
    fn regions_follow_the_edit() {
        let source = case(CaseEdit::default()).source_spec().unwrap();
        let shape = Shape::ALL
            .into_iter()
            .find(|&s| s != source.objects[1].shape)
            .unwrap();
        let pose = PoseClass::ALL
            .into_iter()
            .find(|&p| p != source.figure.pose)
            .unwrap();
        let c = case(CaseEdit {
            object: Some(1),
            shape: Some(shape),
            pose: Some(pose),
            ..CaseEdit::default()
        });
        let s = CaseScenes::of(&c).unwrap();
        assert_eq!(s.parts.len(), 2);
        let truth = s.true_region();
        // The background of source and target agrees exactly outside the true region.
        let outside = crate::metrics::psnr_outside(s.input(), &s.target_render.image, &truth);
        assert_eq!(outside, Some(crate::metrics::PSNR_CAP_DB));
        let area = coverage(&truth);
        assert!(coverage(&s.pixel_mask(MaskSpec::Dilate(3)).unwrap()) > area);
        assert!(coverage(&s.pixel_mask(MaskSpec::Erode(1)).unwrap()) < area);
        assert!(coverage(&s.pixel_mask(MaskSpec::Box).unwrap()) > area);
        assert_eq!(coverage(&s.pixel_mask(MaskSpec::Full).unwrap()), 1.0);
        assert!(s.pixel_mask(MaskSpec::Estimated).is_none());
        assert!(coverage(&s.background_exclusion()) > area);
        let regions = s.judged_regions(&c);
        assert_eq!(regions.len(), 2);
        assert_eq!(regions[0].edited, vec![(Attribute::Shape, shape.index())]);
        assert_eq!(
            regions[0].kept,
            vec![(Attribute::Colour, source.objects[1].colour.index())]
        );
        assert_eq!(regions[1].edited, vec![(Attribute::Pose, pose.index())]);
        assert_eq!(regions[1].class, ClassKey::Pose(pose));
        assert_eq!(value_name(Attribute::Pose, pose.index()), pose.phrase());
        assert_eq!(value_name(Attribute::Pose, PoseClass::ALL.len()), NOTHING);
        assert_eq!(value_name(Attribute::Shape, Shape::ALL.len()), NOTHING);
        // Each judged box covers the thing's source and target masks, and is
        // more than their union (a box, not the target's outline).
        for (r, (src, tgt)) in regions.iter().zip(&s.parts) {
            let both = union(src.dimensions(), [src, tgt]);
            for (x, y, p) in both.enumerate_pixels() {
                if p[0] > 127 {
                    assert!(r.mask.get_pixel(x, y)[0] > 127);
                }
            }
            assert!(coverage(&r.mask) > coverage(&both));
        }
    }
}
