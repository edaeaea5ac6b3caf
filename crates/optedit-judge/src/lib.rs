//! # optedit-judge
//!
//! The referee of optedit's demo benchmark, and what training and evaluation
//! of the demo model share:
//!
//! - [`classifier`]: the attribute classifier, a small CNN that reads a
//!   128x128 scene of [`optedit_world`] with a region mask and names the
//!   shape and colour of the object in the region and the figure's pose, or
//!   "nothing recognisable" (one extra class per head); its pooled features
//!   are the space of the class-wise feature distance. Its weights load
//!   strictly from the safetensors file the demo pipeline keeps at
//!   `classifier/model.safetensors`.
//! - [`region`]: the judged box of an edit (around the thing's source *and*
//!   target masks, so the judge is never shown the answer) and the mask
//!   operations behind it.
//! - [`conditions`]: the condition images of the demo model's ControlNets
//!   (pose, Canny, scribble, layout) built from a rendered scene.
//!
//! The classifier's training (its examples, the garbage it learns to call
//! "nothing", held-out accuracy) lives in the unpublished `optedit-train`
//! crate; this crate holds only what inference needs, so the evaluation
//! harness and the `optedit` command compile no training code.
//!
//! ```no_run
//! use std::path::Path;
//! use burn::backend::Flex;
//! use optedit_cond::image::rgb_batch_to_signed_tensor;
//! use optedit_judge::classifier::{masks_to_tensor, AttributeClassifier};
//! use optedit_judge::region::judged_box;
//!
//! let device = Default::default();
//! let judge = AttributeClassifier::<Flex>::load(
//!     Path::new("optedit-demo/classifier/model.safetensors"),
//!     &device,
//! )?;
//! let scene = optedit_world::SceneSpec::sample(7).render();
//! let region = judged_box(&[&scene.object_masks[0]]);
//! let out = judge.forward(
//!     rgb_batch_to_signed_tensor::<Flex, _>(&[&scene.image], &device),
//!     masks_to_tensor::<Flex, _>(&[&region], &device),
//! );
//! let shape = out.shape.argmax(1); // an index of `Shape::ALL`, or NOTHING_SHAPE
//! # let _ = shape;
//! # Ok::<(), optedit_judge::JudgeError>(())
//! ```
#![warn(missing_docs)]

pub mod classifier;
pub mod conditions;
pub mod error;
pub mod region;

pub use classifier::{AttributeClassifier, ClassifierOutput};
pub use conditions::ControlKind;
pub use error::{JudgeError, Result};
