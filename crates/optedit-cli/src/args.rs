//! Command-line arguments: one struct per subcommand, with the `--help` text
//! of every flag. Numeric edit defaults come from [`EditConfig::default`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use optedit_edit::{EditConfig, GuidanceGradient, LossSpace, Method, OptimizerKind, Worded};
use optedit_models::kernels::{ComputeDtype, DEFAULT_WEIGHT_CACHE_LIMIT};

/// Size policy shown in the help of every command that takes `--image`.
pub const SIZE_POLICY: &str =
    "Images whose sides are not multiples of the VAE factor (8 for SD 1.5, 4 for the demo model) \
are centre-cropped to the largest multiple of it (at most factor - 1 pixels lost per dimension, \
split between both sides), edited, and the edited crop is pasted back into the original, so the \
output always has the input's size and the lost border keeps its original pixels.";

const EDIT_ABOUT: &str = "Edit an image with a target prompt and any number of ControlNets \
(optimisation-based editing, arXiv 2311.16882; or the DiffEdit / SDEdit baselines).

ControlNets come in groups: each `--controlnet DIR` starts a group, and the one condition flag \
(--pose, --scribble, --edges or --layout) and the optional --control-scale that follow it belong \
to it. Example:
  optedit edit --model sd15 --image in.png --prompt \"a dancer\" \\
    --controlnet cn-openpose --pose pose.json --control-scale 0.8 \\
    --controlnet cn-canny --edges auto -o out.png

Inputs larger than --max-size (default: 768 for SD 1.5 and 2.1, the native 1024 for SDXL, the \
native size for smaller ones) are scaled down, centre-cropped to the VAE factor, and the result put back at the \
input's size. Condition images the size of the input are fitted like it; other sizes are \
resized to the model's size. Inputs: PNG, JPEG or WebP, turned upright by their EXIF \
orientation. The output's format follows its extension (.png, .jpg/.jpeg or .webp); it is \
written atomically (never a partial file) and may not be one of the inputs.";

/// optedit: optimisation-based multi-modal image editing with Stable
/// Diffusion 1.5 and ControlNet.
#[derive(Debug, Parser)]
#[command(name = "optedit", version, about, long_about = None, after_help = SIZE_POLICY)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Edit an image (the whole method, or a baseline with --method).
    #[command(long_about = EDIT_ABOUT, after_help = SIZE_POLICY)]
    Edit(EditArgs),
    /// Write the estimated (DiffEdit) edit mask as an image at the input's size.
    #[command(after_help = SIZE_POLICY)]
    Mask(MaskArgs),
    /// Invert an image with DDIM and reconstruct it; prints the PSNR vs the input.
    #[command(after_help = SIZE_POLICY)]
    Reconstruct(ReconstructArgs),
    /// Render an OpenPose JSON file as the skeleton image the OpenPose ControlNet takes.
    PoseRender(PoseRenderArgs),
    /// Write the Canny edge map of an image (as the Canny ControlNet annotator).
    Edges(EdgesArgs),
    /// Edit many images: one edit per line of a JSON Lines job file, the
    /// models loaded once; resumable and shardable (`batch merge` checks
    /// the shards' records).
    #[command(long_about = BATCH_ABOUT)]
    Batch(BatchArgs),
    /// Evaluate editing methods on the procedural world (make cases, run a
    /// method over them, measure the model's own quality).
    #[command(subcommand, long_about = EVAL_ABOUT)]
    Eval(EvalCommand),
}

/// Where the models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// The CPU (burn's Flex backend).
    Cpu,
    /// An NVIDIA GPU (burn's CUDA backend; needs a build with `--features cuda`).
    Cuda,
}

/// The words of the evaluation methods ([`optedit_eval::Method::ALL`])
/// that `keep` keeps, comma-separated.
fn eval_method_words(keep: impl Fn(optedit_eval::Method) -> bool) -> String {
    optedit_eval::Method::ALL
        .into_iter()
        .filter(|&m| keep(m))
        .map(optedit_eval::Method::word)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The help of `optedit edit --method`.
fn edit_method_help() -> String {
    format!(
        "Editing method: {} (optimise: the optimisation-based method, arXiv 2311.16882; \
diffedit: DiffEdit, arXiv 2210.11427, masked blending with the inversion; sdedit: SDEdit, \
arXiv 2108.01073, noise to --strength and denoise, no mask)",
        Method::words()
    )
}

/// The help of `optedit eval run --method`, naming every method.
fn eval_method_help() -> String {
    format!(
        "Method: an editor ({}), or a calibration row ({}: what the referee makes of results \
whose answer is known; no model runs, the edit settings are ignored)",
        eval_method_words(|m| !m.is_calibration()),
        eval_method_words(optedit_eval::Method::is_calibration)
    )
}

/// The Stable Diffusion model and the device.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Stable Diffusion 1.x model: a diffusers folder (unet/, vae/, text_encoder/,
    /// tokenizer/, scheduler/) with safetensors weights (.bin/.ckpt are refused).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Where the models run (cuda needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
    /// How the CPU kernels multiply: f32, bf16 (operands rounded to bf16,
    /// sums in f32; needs a CPU with AMX or AVX512-BF16) or auto (bf16 where
    /// the CPU has it, else f32). Ignored by --device cuda.
    #[arg(long, value_name = "f32|bf16|auto", default_value = "f32", value_parser = parse_dtype)]
    pub dtype: ComputeDtype,
    /// Memory the CPU kernels may keep for transformed convolution filters,
    /// in MiB (an SD 1.5 edit keeps about 0.53 GiB); 0 transforms each
    /// filter on every call: slower, same results.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_WEIGHT_CACHE_LIMIT >> 20)]
    pub weight_cache_mib: usize,
}

impl ModelArgs {
    /// The compute dtype for the CPU kernels: `--dtype` on the CPU, f32 on
    /// CUDA (which ignores it, so that `--dtype bf16` is no error there).
    pub fn kernel_dtype(&self) -> ComputeDtype {
        match self.device {
            DeviceKind::Cpu => self.dtype,
            DeviceKind::Cuda => ComputeDtype::F32,
        }
    }
}

/// `--dtype`: `f32`, `bf16` or `auto`.
fn parse_dtype(word: &str) -> Result<ComputeDtype, String> {
    word.parse()
        .map_err(|e: optedit_models::ModelError| e.to_string())
}

/// Input image, output file and verbosity.
#[derive(Debug, Clone, Args)]
pub struct IoArgs {
    /// Input image (PNG, JPEG or WebP). See the size policy below.
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// Output image: .png, .jpg/.jpeg or .webp, by its extension (written
    /// atomically; may not be an input file).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// No progress bars and no summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Prompts.
#[derive(Debug, Clone, Args)]
pub struct PromptArgs {
    /// Target prompt: what the edited image should show.
    #[arg(long)]
    pub prompt: String,
    /// Prompt describing the input image (the inversion's condition; default empty).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub source_prompt: String,
    /// Negative prompt for classifier-free guidance (default: the empty prompt).
    #[arg(long)]
    pub negative_prompt: Option<String>,
}

/// ControlNet groups (associated by position, see `optedit edit --help`).
#[derive(Debug, Clone, Args)]
pub struct ControlArgs {
    /// ControlNet folder (diffusers layout, safetensors). Starts a group: the
    /// condition flag and --control-scale after it belong to it. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub controlnet: Vec<PathBuf>,
    /// Condition of the current group: OpenPose JSON (pixel coordinates are
    /// taken relative to the file's canvas_width/height, else to the input image).
    #[arg(long, value_name = "FILE")]
    pub pose: Vec<PathBuf>,
    /// Condition of the current group: a scribble drawing (either polarity).
    #[arg(long, value_name = "FILE")]
    pub scribble: Vec<PathBuf>,
    /// Condition of the current group: `auto` (Canny of the input image with
    /// --canny-low/--canny-high) or an edge-map image.
    #[arg(long, value_name = "auto|FILE")]
    pub edges: Vec<String>,
    /// Condition of the current group: a segmentation/layout map (resized nearest).
    #[arg(long, value_name = "FILE")]
    pub layout: Vec<PathBuf>,
    /// Conditioning scale of the current group.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub control_scale: Vec<f64>,
    /// Low Canny threshold for `--edges auto`.
    #[arg(long, value_name = "T", default_value_t = optedit::conditions::CANNY_LOW)]
    pub canny_low: f64,
    /// High Canny threshold for `--edges auto`.
    #[arg(long, value_name = "T", default_value_t = optedit::conditions::CANNY_HIGH)]
    pub canny_high: f64,
}

/// Mask choice and post-processing.
#[derive(Debug, Clone, Args)]
pub struct MaskChoiceArgs {
    /// Edit mask: `auto` (estimated, DiffEdit-style), `none` (the whole image
    /// may change) or a mask image (white = may change; the input's size is
    /// fitted like it, scaled and cropped; other sizes are resized). Not for
    /// sdedit. [default: auto]
    #[arg(long, value_name = "auto|none|FILE")]
    pub mask: Option<String>,
    /// Grow the mask by this many latent pixels (VAE-factor image pixels
    /// each: 8 for SD, 4 for the demo model).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mask_dilate: usize,
    /// Soften the mask with a box blur of this radius in latent pixels.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mask_blur: usize,
}

/// The knobs of [`EditConfig`].
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Weight of the preservation loss (1 - lambda weighs the guidance loss), in [0, 1].
    /// At the defaults the preservation loss covers the background only, so
    /// lambda mainly switches it on; with --preservation-inside 1
    /// --k-late-outside-mask false it trades the edit (0) against the
    /// input (1).
    #[arg(long, default_value_t = EditConfig::default().lambda)]
    pub lambda: f64,
    /// Number of DDIM steps of the full schedule.
    #[arg(long, value_name = "N", default_value_t = EditConfig::default().num_steps)]
    pub steps: usize,
    /// Where the edit starts in the schedule, in (0, 1] (1 = from pure noise level).
    #[arg(long, value_name = "S", default_value_t = EditConfig::default().strength)]
    pub strength: f64,
    /// Number of optimised denoising steps, counted from the start.
    #[arg(long = "t-u", value_name = "N", default_value_t = EditConfig::default().t_u)]
    pub t_u: usize,
    /// Gradient steps per optimised timestep.
    #[arg(long, value_name = "N", default_value_t = EditConfig::default().k)]
    pub k: usize,
    /// Gradient steps per denoising step after the first t_u (0: plain DDIM there).
    #[arg(long, value_name = "N", default_value_t = EditConfig::default().k_late)]
    pub k_late: usize,
    /// Whether the late gradient steps (--k-late) move only the latent
    /// outside the mask (true: the background is held, the edit region left
    /// to the condition) or the whole latent (false).
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set,
          default_value_t = EditConfig::default().k_late_outside_mask)]
    pub k_late_outside_mask: bool,
    /// Step size of the latent optimiser.
    #[arg(long, value_name = "X", default_value_t = EditConfig::default().lr)]
    pub lr: f64,
    /// Latent optimiser: adam (state reset at each timestep), adam-kept
    /// (state kept across timesteps), normalized-gd (gradient descent
    /// divided by the gradient's root mean square over the latent) or sgd.
    #[arg(long, value_name = "NAME", value_parser = OptimizerKind::parse_word,
          default_value_t = EditConfig::default().optimizer)]
    pub optimizer: OptimizerKind,
    /// Where the losses compare latents: next (the next noisy latent against
    /// the target trajectory one step later, the paper's) or clean (the
    /// predicted clean latent against the target's clean latent).
    #[arg(long, value_name = "SPACE", value_parser = LossSpace::parse_word,
          default_value_t = EditConfig::default().loss_space)]
    pub loss_space: LossSpace,
    /// Weight of the preservation loss inside the edit mask, in [0, 1]: 0
    /// preserves only outside the mask; 1 preserves the whole image, so
    /// that inside the mask lambda weighs the source against the guidance
    /// image.
    #[arg(long, value_name = "W",
          default_value_t = EditConfig::default().preservation_inside)]
    pub preservation_inside: f64,
    /// What the gradient steps differentiate under classifier-free
    /// guidance: both (both branches, the exact gradient), conditional
    /// (the conditional branch only: a smaller backward pass), detached
    /// (the prediction held constant: no backward pass through the network,
    /// an approximation for speed) or frozen (detached, and one prediction
    /// per optimised step, which the step reuses: an optimised step costs
    /// what a plain one does).
    #[arg(long, value_name = "BRANCHES", value_parser = GuidanceGradient::parse_word,
          default_value_t = EditConfig::default().guidance_gradient)]
    pub guidance_gradient: GuidanceGradient,
    /// Classifier-free guidance scale under the edit condition.
    #[arg(long, value_name = "W", default_value_t = EditConfig::default().guidance_scale)]
    pub guidance: f64,
    /// Classifier-free guidance scale of the inversion under the source
    /// prompt (1: unguided, the method's).
    #[arg(long, value_name = "W",
          default_value_t = EditConfig::default().inversion_guidance_scale)]
    pub inversion_guidance: f64,
    /// Seed of every random draw.
    #[arg(long, default_value_t = EditConfig::default().seed)]
    pub seed: u64,
    /// Copy the input's pixels outside the mask back into the result.
    #[arg(long)]
    pub paste_back: bool,
}

impl ConfigArgs {
    /// The edit configuration (unlisted fields keep their defaults).
    pub fn edit_config(&self) -> EditConfig {
        let d = EditConfig::default();
        EditConfig {
            lambda: self.lambda,
            num_steps: self.steps,
            strength: self.strength,
            t_u: self.t_u,
            k: self.k,
            k_late: self.k_late,
            k_late_outside_mask: self.k_late_outside_mask,
            lr: self.lr,
            optimizer: self.optimizer,
            loss_space: self.loss_space,
            preservation_inside: self.preservation_inside,
            guidance_gradient: self.guidance_gradient,
            guidance_scale: self.guidance,
            inversion_guidance_scale: self.inversion_guidance,
            seed: self.seed,
            paste_back: self.paste_back || d.paste_back,
            ..d
        }
    }
}

/// `optedit edit`.
#[derive(Debug, Clone, Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub prompts: PromptArgs,
    #[command(flatten)]
    pub controls: ControlArgs,
    #[command(flatten)]
    pub mask: MaskChoiceArgs,
    /// Which editor runs (the help, [`edit_method_help`], names each one).
    #[arg(
        long,
        value_name = "NAME",
        value_parser = Method::parse_word,
        default_value = Method::Optimise.word(),
        help = edit_method_help()
    )]
    pub method: Method,
    /// Scale the input down so that its longer side is at most N pixels
    /// before editing; the result is scaled back to the input's size
    /// [default: 768 for SD 1.5 and 2.1, the native 1024 for SDXL, the
    /// native size for smaller ones, 128 for the demo model].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_size: Option<u32>,
    /// Print a JSON summary of the edit on stdout: output, input, sizes
    /// (input, scaled, model), method, the seconds of each stage, the mask's
    /// coverage.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Also write mask.png, guidance.png, the condition images and
    /// side-by-side.png (input | mask | result) into this folder.
    #[arg(long, value_name = "DIR")]
    pub save_intermediates: Option<PathBuf>,
}

/// `optedit mask`.
#[derive(Debug, Clone, Args)]
pub struct MaskArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub prompts: PromptArgs,
    #[command(flatten)]
    pub controls: ControlArgs,
    /// Classifier-free guidance scale of both predictions.
    #[arg(long, value_name = "W", default_value_t = EditConfig::default().guidance_scale)]
    pub guidance: f64,
    /// Seed of the noise draws.
    #[arg(long, default_value_t = EditConfig::default().seed)]
    pub seed: u64,
    /// Grow the mask by this many latent pixels (VAE-factor image pixels each).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mask_dilate: usize,
    /// Soften the mask with a box blur of this radius in latent pixels.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mask_blur: usize,
}

/// `optedit reconstruct`.
#[derive(Debug, Clone, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    /// Prompt describing the image (the condition of inversion and reconstruction;
    /// default empty).
    #[arg(long, alias = "prompt", default_value = "", hide_default_value = true)]
    pub source_prompt: String,
    /// Number of DDIM steps of the full schedule.
    #[arg(long, value_name = "N", default_value_t = EditConfig::default().num_steps)]
    pub steps: usize,
    /// How far into the schedule the inversion goes, in (0, 1].
    #[arg(long, value_name = "S", default_value_t = EditConfig::default().strength)]
    pub strength: f64,
}

/// `optedit pose-render`.
#[derive(Debug, Clone, Args)]
pub struct PoseRenderArgs {
    /// OpenPose JSON file (`{"people": [{"pose_keypoints_2d": [...]}]}`). Pixel
    /// coordinates are relative to its canvas_width/height when present, else
    /// to --width x --height; values all in [0, 1] are taken as normalised.
    #[arg(long, value_name = "FILE")]
    pub pose: PathBuf,
    /// Canvas width in pixels.
    #[arg(long, value_name = "PX", default_value_t = 512)]
    pub width: u32,
    /// Canvas height in pixels.
    #[arg(long, value_name = "PX", default_value_t = 512)]
    pub height: u32,
    /// Output image: .png, .jpg/.jpeg or .webp (written atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// No summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `optedit edges`.
#[derive(Debug, Clone, Args)]
pub struct EdgesArgs {
    /// Input image (PNG, JPEG or WebP); the edge map has its size.
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// Low Canny threshold.
    #[arg(long, value_name = "T", default_value_t = 100.0)]
    pub canny_low: f64,
    /// High Canny threshold.
    #[arg(long, value_name = "T", default_value_t = 200.0)]
    pub canny_high: f64,
    /// Output image: .png, .jpg/.jpeg or .webp (written atomically; may not be the input).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// No summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

const BATCH_ABOUT: &str = "Edit many images: each line of the JSON Lines job file (--jobs) is \
one edit, run with the models loaded once (the `optedit` crate's `optedit::batch`).

  {\"image\": \"photos/cat.jpg\", \"source_prompt\": \"a cat\", \"prompt\": \"a dog\"}
  {\"image\": \"photos/man.png\", \"prompt\": \"a dancer\", \"mask\": \"none\", \"controls\": [{\"net\": 0, \"pose\": \"poses/man.json\"}], \"output\": \"dancer.webp\"}
  {\"image\": \"photos/car.png\", \"prompt\": \"a red car\", \"method\": \"sdedit\", \"options\": {\"strength\": 0.6, \"seed\": 3}}

Fields: image and prompt (required), source_prompt, negative_prompt, mask (auto, none or a \
mask image), controls (each: net, the index of a --controlnet, and one of pose, scribble, \
edges (auto or a file), layout; scale, canny_low, canny_high), method, options (lambda, \
steps, strength, t_u, k, k_late, k_late_outside_mask, lr, optimizer, loss_space, \
preservation_inside, guidance_gradient, guidance, inversion_guidance, seed, paste_back, max_size, mask_dilate, mask_blur: the flags of this \
command, which they override for the line), output. Input paths are relative to the job \
file's folder; output (default <line>.png, lines counted from 0) is relative to --out and \
its extension picks the format.

Each result is written atomically into --out, then its record (line, status ok or error, \
error, seconds per stage, output) is appended to --out/records.jsonl \
(records-<i>-of-<n>.jsonl with --shard i/n). A failing line is recorded and the batch goes \
on. --resume continues a stopped run: lines recorded ok (output present, line unchanged) \
are skipped, the rest run. --shard i/n takes the lines whose number l has l % n == i, so n \
processes or machines split one file with no coordination; `optedit batch merge` then \
checks that their records cover the file exactly once. docs/scaling.md runs the shards as a \
Kubernetes Indexed Job, or with xargs -P on one machine.

  optedit batch --model sd15 --jobs jobs.jsonl --out out/
  optedit batch --model sd15 --jobs jobs.jsonl --out out/ --shard 0/2 --resume
  optedit batch merge --jobs jobs.jsonl --into out/all.jsonl out/records-*.jsonl

Exit status: 0 when every line is done, 3 when the run finished but some lines failed (see \
the records), 1 when the batch could not run, 2 for usage errors.";

const EVAL_ABOUT: &str = "Evaluate editing methods on the procedural world of the demo model \
(issue 7; the comparison of arXiv 2311.16882 in miniature).

  optedit eval make-cases --out cases.jsonl --count 350 --kinds text,pose,text+pose,edges,scribble,layout,multi
  optedit eval run --model models/optedit-demo --cases cases.jsonl --method optimise --out results/optimise
  optedit eval compare --cases cases.jsonl --out results/compare results/optimise results/sdedit
  optedit eval quality --model models/optedit-demo --count 100

The model folder is a demo pipeline: the Stable Diffusion parts, controlnet-pose/, \
controlnet-canny/, controlnet-scribble/, controlnet-layout/ (each needed only by the cases \
that condition on it) and classifier/model.safetensors.";

/// `optedit batch`: run a job file, or `optedit batch merge`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BatchArgs {
    /// `merge`.
    #[command(subcommand)]
    pub command: Option<BatchCommand>,
    #[command(flatten)]
    pub run: Option<BatchRunArgs>,
}

/// `optedit batch` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum BatchCommand {
    /// Check that records files (the shards') cover a job file exactly
    /// once, each line with its current text; write them as one file.
    Merge(BatchMergeArgs),
}

/// `optedit batch` (running a job file).
#[derive(Debug, Clone, Args)]
// clap leaves the group of a struct with flattened fields empty, so that
// `Option<BatchRunArgs>` would always be `None`: `--jobs` (required unless
// `merge`) marks it present.
#[group(args = ["jobs"])]
pub struct BatchRunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// ControlNet folder, loaded once; repeatable. A job line's control
    /// names it by position: `"net": 0` is the first --controlnet.
    #[arg(long, value_name = "DIR")]
    pub controlnet: Vec<PathBuf>,
    /// The job file: JSON Lines, one edit per line (see above).
    #[arg(long, value_name = "FILE")]
    pub jobs: PathBuf,
    /// Output folder (made if missing): the results and the records file.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Run only the lines l with l % N == I (lines counted from 0).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<optedit::batch::Shard>,
    /// Continue the records in --out: skip the lines done, run the rest
    /// (without it, a folder holding records of this shard is refused).
    #[arg(long)]
    pub resume: bool,
    /// Edit at most N lines in this run (the rest are left for --resume).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Editing method of the lines that name none (the help of `optedit
    /// edit --method` names each).
    #[arg(long, value_name = "NAME", value_parser = Method::parse_word,
          default_value = Method::Optimise.word())]
    pub method: Method,
    /// Scale each input down so that its longer side is at most N pixels
    /// [default: as `optedit edit`].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_size: Option<u32>,
    /// Grow the masks by this many latent pixels.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mask_dilate: usize,
    /// Soften the masks with a box blur of this radius in latent pixels.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mask_blur: usize,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// No progress bar, no log lines and no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `optedit batch merge`.
#[derive(Debug, Clone, Args)]
pub struct BatchMergeArgs {
    /// The job file the records were made from.
    #[arg(long, value_name = "FILE")]
    pub jobs: PathBuf,
    /// Records files (`records*.jsonl` of the shards' runs).
    #[arg(value_name = "RECORDS", required = true)]
    pub records: Vec<PathBuf>,
    /// Write the merged records here, in line order (atomically; not one
    /// of the records files).
    #[arg(long, value_name = "FILE")]
    pub into: Option<PathBuf>,
    /// No summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `optedit eval` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Write a JSONL file of edit cases on held-out world scenes (deterministic in --seed).
    MakeCases(MakeCasesArgs),
    /// Run a method over a case file: per-case records, summary, markdown row, grid.
    Run(EvalRunArgs),
    /// The model's own quality: attribute accuracy of plain samples, inversion PSNR.
    Quality(QualityArgs),
    /// Put finished runs side by side: one summary table, one picture grid.
    Compare(CompareArgs),
}

/// `optedit eval make-cases`.
#[derive(Debug, Clone, Args)]
pub struct MakeCasesArgs {
    /// Output JSONL file (written atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Number of cases.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub count: usize,
    /// Seed of the draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Case kinds, cycled in order: comma-separated `text` (colour or shape of
    /// one object), `pose` (the figure's pose, with the pose ControlNet),
    /// `text+pose` (both), `edges` (an object's shape, with the Canny edges of
    /// the target), `scribble` (an object's shape, with a scribble of the
    /// target), `layout` (an object's shape, with the target's layout map),
    /// `multi` (an object's colour or shape and the pose, with the pose and
    /// the edges ControlNets).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "text,pose,text+pose,edges,scribble,layout,multi"
    )]
    pub kinds: String,
    /// Mask of every case: true, dilate:N, erode:N, box, estimated or full.
    #[arg(long, value_name = "SPEC", default_value = "true")]
    pub mask: String,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// No summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `optedit eval run`.
#[derive(Debug, Clone, Args)]
pub struct EvalRunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The JSONL case file.
    #[arg(long, value_name = "FILE")]
    pub cases: PathBuf,
    /// Which method runs (the help, [`eval_method_help`], names each one).
    #[arg(
        long,
        value_parser = optedit_eval::Method::parse_word,
        default_value = optedit_eval::Method::OPTIMISE.word(),
        help = eval_method_help()
    )]
    pub method: optedit_eval::Method,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Give every case this mask instead of its own: true, dilate:N, erode:N,
    /// box, estimated or full.
    #[arg(long, value_name = "SPEC")]
    pub mask_override: Option<String>,
    /// Conditioning scale of the ControlNets.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub control_scale: f64,
    /// Negative prompt for classifier-free guidance (default: empty).
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// Run only the first N cases.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Results folder (default: `target/eval/<cases>-<method>[-l<lambda>][-<mask>]`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue a results folder: cases already in its cases.jsonl are skipped.
    #[arg(long)]
    pub resume: bool,
    /// Cases in grid.png (input | mask | result | target render); 0 for none.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub grid: usize,
    /// Real renders per class for the class-wise feature distance.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub reference_count: usize,
    /// Reference-feature cache file [default: DIR/references.json].
    #[arg(long, value_name = "FILE")]
    pub references: Option<PathBuf>,
    /// Classifier weights [default: MODEL/classifier/model.safetensors].
    #[arg(long, value_name = "FILE")]
    pub classifier: Option<PathBuf>,
    /// No progress bar and no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `optedit eval compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Results folders of `optedit eval run`, in row order. `RUN1,RUN2,RUN3`
    /// (comma-separated, no spaces) pools runs of the same method, cases and
    /// settings made with different --seed into one row: the mean edit
    /// accuracy over the seeds with a case-bootstrap interval, each seed's
    /// accuracy, and the pooled background PSNR and SSIM.
    #[arg(value_name = "RUN[,RUN...]", required = true)]
    pub runs: Vec<PathBuf>,
    /// The case file the runs were made from (the grid renders its inputs and targets).
    #[arg(long, value_name = "FILE")]
    pub cases: PathBuf,
    /// Output folder: compare.md (summary rows), compare-kinds.md (edit
    /// accuracy and background PSNR per kind of case), compare-paired.md
    /// (the first run against each other, case by case, with an exact sign
    /// test) and compare.png (input | first run's mask | each run's result
    /// | target).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Cases in the grid (the first ones with a result image in every run); 0 for none.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub rows: usize,
}

/// `optedit eval quality`.
#[derive(Debug, Clone, Args)]
pub struct QualityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Samples generated, and images reconstructed.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub count: usize,
    /// DDIM steps.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub steps: usize,
    /// Classifier-free guidance scale of the samples.
    #[arg(long, value_name = "W", default_value_t = 7.5)]
    pub guidance: f64,
    /// Inversion depth of the reconstruction, in (0, 1] (1 = from the noisiest step).
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub strength: f64,
    /// Seed of the samples' noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Results folder (quality.json, quality.md, samples.png, reconstructions.png).
    #[arg(long, value_name = "DIR", default_value = "target/eval/quality")]
    pub out: PathBuf,
    /// Rows in the picture grids; 0 for none.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub grid: usize,
    /// Classifier weights [default: MODEL/classifier/model.safetensors].
    #[arg(long, value_name = "FILE")]
    pub classifier: Option<PathBuf>,
    /// No progress bar and no summary.
    #[arg(short, long)]
    pub quiet: bool,
}
