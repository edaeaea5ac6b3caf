//! # optedit-cond
//!
//! Turns what a user gives into what the optedit models take:
//!
//! - **Text.** [`ClipTokenizer`] reads a diffusers `tokenizer/` folder and
//!   reproduces transformers' `CLIPTokenizer` (Radford et al., "Learning
//!   Transferable Visual Models From Natural Language Supervision",
//!   arXiv 2103.00020; byte-level BPE with `</w>`, 77 ids padded);
//!   [`PromptEncoder`] runs it through the CLIP text encoder of
//!   `optedit-models` to conditional and unconditional embeddings, batched;
//!   [`SdxlPromptEncoder`] does the same with SDXL's two encoders (prompt
//!   and pooled embeddings) and [`sdxl_add_time_ids`] makes SDXL's size
//!   conditions.
//! - **ControlNet conditions** (Zhang et al., "Adding Conditional Control to
//!   Text-to-Image Diffusion Models", arXiv 2302.05543), each a
//!   [`ConditionImage`] whose [`to_tensor`](ConditionImage::to_tensor) is the
//!   `[1, 3, H, W]` tensor in `[0, 1]` the ControlNet takes, `H` and `W` being
//!   8x the latent size:
//!   - [`pose`]: OpenPose JSON or keypoint lists, rendered by
//!     [`pose_render`] exactly as the ControlNet OpenPose annotator
//!     (`controlnet_aux.open_pose.util.draw_bodypose`) draws them, through a
//!     port of OpenCV's rasteriser (`ellipse2Poly`, `fillConvexPoly`,
//!     `circle`);
//!   - [`canny`]: OpenCV's `cv2.Canny` (aperture 3, L1 gradient), ported;
//!   - [`scribble`]: a drawing to the white-on-black stroke map;
//!   - [`layout`]: a segmentation/layout map, checked and resized
//!     nearest-neighbour.
//!
//! Bad input is a [`CondError`] naming the argument or file; nothing panics on
//! it.
//!
//! ```no_run
//! use std::path::Path;
//! use burn::backend::Flex;
//! use optedit_cond::{pose, pose_render, PromptEncoder};
//!
//! let device = Default::default();
//! let text = PromptEncoder::<Flex>::from_pipeline_dir(Path::new("sd15"), &device)?;
//! let embeddings = text.encode_with_negative("a dancer on a stage", Some("blurry"))?;
//! let people = pose::read_openpose_json(Path::new("pose.json"), None)?;
//! let control = pose_render::pose_condition(&people, 512, 512)?.to_tensor::<Flex>(&device);
//! # let _ = (embeddings, control);
//! # Ok::<(), optedit_cond::CondError>(())
//! ```
#![deny(missing_docs)]

pub mod canny;
pub mod error;
pub mod file;
pub mod image;
pub mod layout;
pub mod pose;
pub mod pose_render;
pub mod prompt;
mod raster;
pub mod scribble;
pub mod sdxl;
pub mod tokenizer;

pub use crate::error::{CondError, Result};
pub use crate::image::{ConditionImage, LATENT_SCALE};
pub use crate::pose::{BodyPose, Coordinates, Keypoint};
pub use crate::prompt::{PooledEmbeddings, PromptEmbeddings, PromptEncoder};
pub use crate::sdxl::{
    sdxl_add_time_ids, SdxlPromptEmbeddings, SdxlPromptEncoder, SdxlTextEmbeddings, SizeConditions,
};
pub use crate::tokenizer::{ClipTokenizer, SpecialTokens, CLIP_MAX_LENGTH};
