//! # optedit-eval
//!
//! The evaluation harness of optedit's demo model (issue 7): the comparison
//! of "Optimisation-Based Multi-Modal Semantic Image Editing" (arXiv
//! 2311.16882, section 5) in miniature, on the procedural world of
//! [`optedit_world`], where every edit has an exact ground truth.
//!
//! - **Cases** ([`cases`]): a JSONL file, one edit per line (world seed,
//!   object colour / shape and/or figure pose, ControlNets, mask), of seven
//!   kinds ([`CaseKind`]): text, pose, text+pose, edges, scribble, layout
//!   and multi (text + pose + edges); parsed with errors naming the line
//!   and field, and made deterministically from held-out scenes by
//!   [`make_cases`].
//! - **Running** ([`runner`], [`evaluate()`]): each case's source render is
//!   edited towards its target caption (and the pose skeleton, edges,
//!   scribble or layout of the target scene) by the optimisation method,
//!   DiffEdit or SDEdit of `optedit-edit`; records,
//!   summary, markdown row and a before/after grid go to a results folder,
//!   atomically and resumably.
//! - **Measures** ([`metrics`], [`summary`]), as in the paper:
//!   - *edit accuracy*: the attribute classifier of `optedit-train` reads
//!     the result in the target object's (or figure's) region, dilated by
//!     2 px; a case is right when every edited attribute is judged to have
//!     its target value (per-attribute rates too);
//!   - *background preservation*: PSNR, mean absolute error (0-255) and
//!     SSIM ([`metrics::ssim_outside`]) between result and input outside
//!     the true edit region (the union of the edited things' source and
//!     target masks) dilated by 2 px;
//!   - *class-wise feature distance* (the paper's CSFID idea): classifier
//!     features of edited regions grouped by target class (object colour and
//!     shape, or pose), against features of real renders of the class
//!     ([`features::References`]); per class a Fréchet distance with
//!     diagonal covariances ([`metrics::frechet_diagonal`] says why),
//!     averaged over the classes present.
//! - **Statistics** ([`stats`]): a 95% Wilson interval on every rate and a
//!   95% case-bootstrap interval on every background mean; failed edits
//!   count as wrong everywhere.
//! - **Calibration rows** ([`Method::Identity`], [`Method::Blank`],
//!   [`Method::Oracle`]): the input unchanged, the edit region blanked, the
//!   target render, run and measured like a method, with no model call.
//! - **Comparison** ([`compare()`]): finished runs side by side, one
//!   summary table and one picture grid (`docs/results.md`); runs of
//!   several seeds pool into one row ([`RunGroup`]).
//! - **Model quality** ([`quality()`]): attribute accuracy of plain samples
//!   of held-out captions, and DDIM inversion + reconstruction PSNR.
//!
//! The `optedit eval` subcommands of `optedit-cli` drive all of it.
#![deny(missing_docs)]

pub mod cases;
pub mod compare;
pub mod error;
pub mod evaluate;
pub mod features;
pub mod generate;
pub mod grid;
pub mod metrics;
pub mod output;
pub mod paired;
pub mod quality;
pub mod runner;
pub mod scenes;
pub mod stats;
pub mod summary;

pub use cases::{
    cases_to_jsonl, parse_cases, read_cases, Case, CaseEdit, CaseKind, ControlName, MaskSpec,
};
pub use compare::{compare, Comparison, RunGroup};
pub use error::{EvalError, Result};
pub use evaluate::{evaluate, Observer, Quiet, RunEvent, RunPlan};
pub use features::{ClassKey, Judge, Judgement, References};
pub use generate::{make_cases, MakeOptions};
pub use paired::{paired_table, sign_test_p, Paired};
pub use quality::{quality, QualityOptions, QualityReport};
pub use runner::{
    control_image, run_case, CaseOutcome, CaseRecord, EvalModels, Method, ModelPaths, RunOptions,
};
pub use scenes::{Attribute, CaseScenes};
pub use stats::{bootstrap_mean, wilson, Interval};
pub use summary::{summarise, Summary};

/// The classifier type the judge wraps (re-exported for tests and tools).
pub use optedit_judge::classifier::AttributeClassifier;
