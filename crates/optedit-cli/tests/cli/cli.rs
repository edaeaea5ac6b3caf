//! End-to-end tests of the `optedit` binary on the tiny fixture models.

use std::path::{Path, PathBuf};
use std::process::Output;

use image::{ImageFormat, ImageReader, Rgb, RgbImage};
use tempfile::TempDir;

use crate::common::{assert_failure, assert_success, optedit};
use optedit_fixtures::photo::exif_orientation;

/// Few steps: the tiny models make this fast.
const FAST: &[&str] = &["--steps", "4", "--t-u", "1", "--k", "1", "--quiet"];

fn sd() -> PathBuf {
    optedit_fixtures::fixtures_dir().join("tiny-sd")
}

fn sdxl() -> PathBuf {
    optedit_fixtures::fixtures_dir().join("tiny-sdxl")
}

fn controlnet() -> PathBuf {
    optedit_fixtures::fixtures_dir().join("tiny-controlnet")
}

/// A test picture with flat regions and sharp edges.
fn write_image(path: &Path, width: u32, height: u32) {
    let img = RgbImage::from_fn(width, height, |x, y| {
        let inside = x > width / 4 && x < 3 * width / 4 && y > height / 3 && y < 2 * height / 3;
        let (dx, dy) = (x as i64 - 40, y as i64 - 30);
        if inside {
            Rgb([220, 40, 30])
        } else if dx * dx + dy * dy < 15 * 15 {
            Rgb([20, 60, 200])
        } else {
            Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
        }
    });
    img.save(path).expect("write test image");
}

fn write_pose(path: &Path) {
    let mut values = Vec::new();
    for i in 0..18 {
        let x = 0.3 + 0.02 * (i % 6) as f64;
        let y = 0.1 + 0.045 * i as f64;
        values.extend([x, y, 1.0]);
    }
    let json = serde_json::json!({ "people": [{ "pose_keypoints_2d": values }] });
    std::fs::write(path, json.to_string()).expect("write pose");
}

/// Size of a PNG file (fails unless it is one).
fn png_size(path: &Path) -> (u32, u32) {
    let reader = ImageReader::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .with_guessed_format()
        .unwrap();
    assert_eq!(
        reader.format(),
        Some(ImageFormat::Png),
        "{} is not a PNG",
        path.display()
    );
    let img = reader
        .decode()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

/// No temporary file is left in `dir`.
fn assert_no_temporaries(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".tmp"),
                "temporary file {name} left in {}",
                dir.display()
            );
        }
    }
}

struct Setup {
    dir: TempDir,
    image: PathBuf,
}

impl Setup {
    fn new(width: u32, height: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("in.png");
        write_image(&image, width, height);
        Self { dir, image }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `optedit edit` with the tiny model, the input and `extra` flags.
    fn edit(&self, out: &Path, extra: &[&str]) -> Output {
        self.edit_with(&sd(), out, extra)
    }

    /// `optedit edit` with `model`, the input and `extra` flags.
    fn edit_with(&self, model: &Path, out: &Path, extra: &[&str]) -> Output {
        let mut args: Vec<String> = vec![
            "edit".into(),
            "--model".into(),
            model.display().to_string(),
            "--image".into(),
            self.image.display().to_string(),
            "--prompt".into(),
            "a red square".into(),
            "-o".into(),
            out.display().to_string(),
        ];
        args.extend(FAST.iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        optedit(args)
    }
}

#[test]
fn edit_text_only() {
    let s = Setup::new(128, 128);
    let out = s.path("out.png");
    let run = s.edit(&out, &[]);
    assert_success(&run);
    assert_eq!(png_size(&out), (128, 128));
    assert_no_temporaries(s.dir.path());
}

#[test]
fn edit_with_edges_auto_and_intermediates() {
    let s = Setup::new(128, 128);
    let out = s.path("out.png");
    let inter = s.path("inter");
    let cn = controlnet().display().to_string();
    let inter_s = inter.display().to_string();
    let run = s.edit(
        &out,
        &[
            "--controlnet",
            &cn,
            "--edges",
            "auto",
            "--mask",
            "none",
            "--save-intermediates",
            &inter_s,
        ],
    );
    assert_success(&run);
    assert_eq!(png_size(&out), (128, 128));
    assert_eq!(png_size(&inter.join("mask.png")), (128, 128));
    assert_eq!(png_size(&inter.join("guidance.png")), (128, 128));
    assert_eq!(png_size(&inter.join("condition-1-edges.png")), (128, 128));
    assert_eq!(png_size(&inter.join("side-by-side.png")), (3 * 128, 128));
}

#[test]
fn edit_with_two_controlnet_groups() {
    let s = Setup::new(128, 128);
    let pose = s.path("pose.json");
    write_pose(&pose);
    let out = s.path("out.png");
    let cn = controlnet().display().to_string();
    let pose_s = pose.display().to_string();
    let run = s.edit(
        &out,
        &[
            "--controlnet",
            &cn,
            "--edges",
            "auto",
            "--control-scale",
            "0.5",
            "--controlnet",
            &cn,
            "--pose",
            &pose_s,
            "--mask",
            "none",
        ],
    );
    assert_success(&run);
    assert_eq!(png_size(&out), (128, 128));
}

#[test]
fn edit_baselines() {
    let s = Setup::new(128, 128);
    for method in ["diffedit", "sdedit"] {
        let out = s.path(&format!("{method}.png"));
        let run = s.edit(&out, &["--method", method, "--json"]);
        assert_success(&run);
        assert_eq!(png_size(&out), (128, 128), "{method}");
        let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(summary["method"], method);
        assert_eq!(summary["mask_coverage"].is_null(), method == "sdedit");
    }
}

/// An SDXL folder loads through the same `--model` flag, and every method
/// edits with it (issue 26); a pipeline class of another family is refused
/// by name.
#[test]
fn edit_runs_every_method_on_sdxl() {
    let s = Setup::new(72, 56);
    for method in ["optimise", "diffedit", "sdedit"] {
        let out = s.path(&format!("{method}.png"));
        let run = s.edit_with(&sdxl(), &out, &["--method", method, "--json"]);
        assert_success(&run);
        assert_eq!(png_size(&out), (72, 56), "{method}");
        let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(summary["method"], method);
    }
    let other = s.path("flux");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(
        other.join("model_index.json"),
        r#"{"_class_name": "FluxPipeline"}"#,
    )
    .unwrap();
    let out = s.path("flux.png");
    expect_edit_failure(
        &s,
        &s.image,
        &other,
        &out,
        &[],
        1,
        &["FluxPipeline", "model_index.json"],
    );
}

/// The format and size of an image file, by its content.
fn format_and_size(path: &Path) -> (ImageFormat, (u32, u32)) {
    let reader = ImageReader::open(path)
        .unwrap()
        .with_guessed_format()
        .unwrap();
    let format = reader.format().expect("a known format");
    let img = reader.decode().unwrap();
    (format, (img.width(), img.height()))
}

#[test]
fn edit_scales_a_large_input_down_and_writes_by_extension() {
    // 200x150 is larger than the tiny model's native 128: the model sees
    // 128x96 and the result comes back at 200x150, in the output's format.
    let s = Setup::new(200, 150);
    let out = s.path("out.jpg");
    let run = s.edit(&out, &["--json"]);
    assert_success(&run);
    assert_eq!(format_and_size(&out), (ImageFormat::Jpeg, (200, 150)));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["input_size"], serde_json::json!([200, 150]));
    assert_eq!(summary["model_size"], serde_json::json!([128, 96]));
    assert_eq!(summary["method"], "optimise");
    assert_eq!(summary["output"], out.display().to_string());
    let coverage = summary["mask_coverage"].as_f64().expect("a mask");
    assert!((0.0..=1.0).contains(&coverage), "{coverage}");
    let stages: Vec<&str> = summary["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert!(
        stages.contains(&"load") && stages.contains(&"write"),
        "{stages:?}"
    );

    // --max-size: smaller still, and WebP.
    let out = s.path("small.webp");
    let run = s.edit(&out, &["--max-size", "64", "--method", "sdedit", "--json"]);
    assert_success(&run);
    assert_eq!(format_and_size(&out), (ImageFormat::WebP, (200, 150)));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["model_size"], serde_json::json!([64, 48]));
}

#[test]
fn an_exif_rotated_jpeg_larger_than_max_size_comes_back_upright_as_jpeg() {
    // Stored 200x150 with EXIF orientation 6 (a phone held upright): the
    // picture is 150x200. The model sees it at most 96 on the long side;
    // the result is a JPEG at the upright 150x200.
    let s = Setup::new(8, 8);
    let stored = RgbImage::from_fn(200, 150, |x, y| Rgb([(x + y) as u8, 90, 200]));
    let photo = s.path("phone.jpg");
    let mut bytes = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    image::ImageEncoder::set_exif_metadata(&mut enc, exif_orientation(6)).unwrap();
    image::ImageEncoder::write_image(
        enc,
        stored.as_raw(),
        200,
        150,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    std::fs::write(&photo, &bytes).unwrap();
    let out = s.path("edited.jpg");
    let mut args: Vec<String> = [
        "edit",
        "--model",
        &sd().display().to_string(),
        "--image",
        &photo.display().to_string(),
        "--prompt",
        "a red square",
        "-o",
        &out.display().to_string(),
        "--max-size",
        "96",
        "--json",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(FAST.iter().map(|a| a.to_string()));
    let run = optedit(args);
    assert_success(&run);
    assert_eq!(format_and_size(&out), (ImageFormat::Jpeg, (150, 200)));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["input_size"], serde_json::json!([150, 200]));
    assert_eq!(summary["model_size"], serde_json::json!([72, 96]));
    // The input file is untouched.
    assert_eq!(std::fs::read(&photo).unwrap(), bytes);
}

#[test]
fn bad_method_and_max_size_are_usage_errors() {
    let s = Setup::new(128, 128);
    let out = s.path("out.png");
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &["--method", "inpaint"],
        2,
        &["inpaint", "optimise, diffedit, sdedit"],
    );
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &["--max-size", "4"],
        2,
        &["--max-size", "factor 8"],
    );
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &["--dtype", "fp16"],
        2,
        &["--dtype", "fp16", "f32, bf16 or auto"],
    );
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &["--guidance-gradient", "half"],
        2,
        &["--guidance-gradient", "half", "both, conditional"],
    );
    // `optimize` is the same method; `--dtype auto` runs anywhere.
    assert_success(&s.edit(&out, &["--method", "optimize", "--dtype", "auto"]));
}

/// The kept filter transforms change time and memory, not the image:
/// `--weight-cache-mib 0` gives the default's bytes. At 256 x 256 the
/// UNet's first level has 256 tiles, so its convolutions take Winograd's
/// path on every call, forward and (with the exact gradient) backward.
#[test]
fn the_weight_cache_does_not_change_the_edit() {
    let s = Setup::new(256, 256);
    let (kept, remade) = (s.path("kept.png"), s.path("remade.png"));
    let exact = ["--guidance-gradient", "both"];
    assert_success(&s.edit(&kept, &exact));
    assert_success(&s.edit(
        &remade,
        &[&exact[..], &["--weight-cache-mib", "0"]].concat(),
    ));
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        std::fs::read(&remade).unwrap()
    );
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &s.path("bad.png"),
        &["--weight-cache-mib", "lots"],
        2,
        &["--weight-cache-mib", "lots"],
    );
}

#[test]
fn edit_with_user_mask_keeps_size_of_odd_input() {
    // 130x123 under --max-size 256 (no scaling): the models see the
    // centred 128x120 crop; the output has the input's size and the
    // cropped-off border is the input's.
    let s = Setup::new(130, 123);
    let mask = s.path("mask.png");
    RgbImage::from_fn(
        130,
        123,
        |x, _| if x < 65 { Rgb([255; 3]) } else { Rgb([0; 3]) },
    )
    .save(&mask)
    .unwrap();
    let out = s.path("out.png");
    let run = s.edit(
        &out,
        &["--mask", &mask.display().to_string(), "--max-size", "256"],
    );
    assert_success(&run);
    assert_eq!(png_size(&out), (130, 123));
    let input = image::open(&s.image).unwrap().to_rgb8();
    let output = image::open(&out).unwrap().to_rgb8();
    for (x, y) in [(0, 0), (129, 122), (0, 60), (64, 0), (64, 122), (129, 60)] {
        assert_eq!(
            input.get_pixel(x, y),
            output.get_pixel(x, y),
            "border pixel ({x}, {y})"
        );
    }
}

#[test]
fn mask_command() {
    for (w, h) in [(128, 128), (130, 123)] {
        let s = Setup::new(w, h);
        let out = s.path("mask.png");
        let run = optedit([
            "mask",
            "--model",
            &sd().display().to_string(),
            "--image",
            &s.image.display().to_string(),
            "--prompt",
            "a blue square",
            "-o",
            &out.display().to_string(),
            "--quiet",
        ]);
        assert_success(&run);
        assert_eq!(png_size(&out), (w, h));
    }
}

#[test]
fn reconstruct_command() {
    let s = Setup::new(128, 128);
    let out = s.path("recon.png");
    let run = optedit([
        "reconstruct",
        "--model",
        &sd().display().to_string(),
        "--image",
        &s.image.display().to_string(),
        "--steps",
        "4",
        "-o",
        &out.display().to_string(),
        "--quiet",
    ]);
    assert_success(&run);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("PSNR") && stdout.contains("dB"), "{stdout}");
    assert_eq!(png_size(&out), (128, 128));
}

#[test]
fn pose_render_command() {
    let s = Setup::new(8, 8);
    let pose = s.path("pose.json");
    write_pose(&pose);
    let out = s.path("pose.png");
    let run = optedit([
        "pose-render",
        "--pose",
        &pose.display().to_string(),
        "--width",
        "96",
        "--height",
        "64",
        "-o",
        &out.display().to_string(),
    ]);
    assert_success(&run);
    assert_eq!(png_size(&out), (96, 64));
    let img = image::open(&out).unwrap().to_rgb8();
    assert!(
        img.pixels().any(|p| p.0 != [0, 0, 0]),
        "the skeleton is drawn"
    );
}

#[test]
fn edges_command() {
    let s = Setup::new(130, 123);
    let out = s.path("edges.png");
    let run = optedit([
        "edges",
        "--image",
        &s.image.display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    assert_success(&run);
    assert_eq!(png_size(&out), (130, 123));
    let img = image::open(&out).unwrap().to_luma8();
    assert!(img.pixels().any(|p| p.0[0] == 255), "edges found");
}

// ---- bad inputs ----

/// Runs `edit` with `image`, `model` and `out`, expecting failure with
/// `code` and every needle in the message, and no output nor temporary file.
fn expect_edit_failure(
    s: &Setup,
    image: &Path,
    model: &Path,
    out: &Path,
    extra: &[&str],
    code: i32,
    needles: &[&str],
) {
    let mut args: Vec<String> = vec![
        "edit".into(),
        "--model".into(),
        model.display().to_string(),
        "--image".into(),
        image.display().to_string(),
        "--prompt".into(),
        "x".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(FAST.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = optedit(args);
    assert_failure(&run, code, needles);
    if out != image {
        assert!(!out.exists(), "{} was written", out.display());
    }
    assert_no_temporaries(s.dir.path());
    if let Some(parent) = out.parent() {
        assert_no_temporaries(parent);
    }
}

#[test]
fn missing_image_file() {
    let s = Setup::new(8, 8);
    let missing = s.path("missing.png");
    expect_edit_failure(
        &s,
        &missing,
        &sd(),
        &s.path("out.png"),
        &[],
        1,
        &["missing.png"],
    );
}

#[test]
fn non_image_file() {
    let s = Setup::new(8, 8);
    let bad = s.path("notes.png");
    std::fs::write(&bad, "this is not an image").unwrap();
    expect_edit_failure(
        &s,
        &bad,
        &sd(),
        &s.path("out.png"),
        &[],
        1,
        &["notes.png", "decode"],
    );
}

#[test]
fn truncated_jpeg() {
    let s = Setup::new(8, 8);
    let whole = s.path("whole.jpg");
    RgbImage::from_fn(64, 48, |x, y| Rgb([x as u8 * 3, y as u8 * 5, 60]))
        .save(&whole)
        .unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    let cut = s.path("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    expect_edit_failure(&s, &cut, &sd(), &s.path("out.jpg"), &[], 1, &["cut.jpg"]);
}

#[test]
fn wrong_model_folder() {
    let s = Setup::new(128, 128);
    let out = s.path("out.png");
    expect_edit_failure(
        &s,
        &s.image,
        &controlnet(),
        &out,
        &[],
        1,
        &["tiny-controlnet"],
    );
    let empty = s.path("empty-model");
    std::fs::create_dir(&empty).unwrap();
    expect_edit_failure(&s, &s.image, &empty, &out, &[], 1, &["empty-model"]);
    expect_edit_failure(&s, &s.image, &s.path("nowhere"), &out, &[], 1, &["nowhere"]);
}

#[test]
fn pickle_models_are_refused() {
    let s = Setup::new(128, 128);
    let out = s.path("out.png");
    let ckpt = s.path("v1-5-pruned.ckpt");
    std::fs::write(&ckpt, b"not really a pickle").unwrap();
    expect_edit_failure(
        &s,
        &s.image,
        &ckpt,
        &out,
        &[],
        1,
        &["v1-5-pruned.ckpt", "safetensors"],
    );

    // A diffusers folder whose UNet weights are a .bin.
    let folder = s.path("pickled");
    std::fs::create_dir_all(folder.join("unet")).unwrap();
    std::fs::copy(
        sd().join("model_index.json"),
        folder.join("model_index.json"),
    )
    .unwrap();
    std::fs::copy(
        sd().join("unet/config.json"),
        folder.join("unet/config.json"),
    )
    .unwrap();
    std::fs::write(folder.join("unet/diffusion_pytorch_model.bin"), b"pickle").unwrap();
    expect_edit_failure(
        &s,
        &s.image,
        &folder,
        &out,
        &[],
        1,
        &["diffusion_pytorch_model.bin", "safetensors"],
    );

    let bin = s.path("controlnet.bin");
    std::fs::write(&bin, b"pickle").unwrap();
    let bin_s = bin.display().to_string();
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &["--controlnet", &bin_s, "--edges", "auto"],
        1,
        &["controlnet.bin", "safetensors"],
    );
}

#[test]
fn unwritable_output() {
    let s = Setup::new(128, 128);
    let nowhere = s.path("no-such-dir").join("out.png");
    expect_edit_failure(&s, &s.image, &sd(), &nowhere, &[], 1, &["no-such-dir"]);

    let file = s.path("a-file");
    std::fs::write(&file, "x").unwrap();
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &file.join("out.png"),
        &[],
        1,
        &["a-file"],
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = s.path("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root writes anywhere: only check where the folder really is read-only.
        let writable = std::fs::write(ro.join("probe"), "x").is_ok();
        if !writable {
            expect_edit_failure(
                &s,
                &s.image,
                &sd(),
                &ro.join("out.png"),
                &[],
                1,
                &["read-only"],
            );
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn output_equal_to_input_is_refused() {
    let s = Setup::new(128, 128);
    let before = std::fs::read(&s.image).unwrap();
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &s.image,
        &[],
        2,
        &["in.png", "overwrite"],
    );
    // Same file through another spelling of the path.
    let other = s.dir.path().join(".").join("in.png");
    expect_edit_failure(&s, &s.image, &sd(), &other, &[], 2, &["overwrite"]);
    assert_eq!(
        std::fs::read(&s.image).unwrap(),
        before,
        "the input is unchanged"
    );
}

#[test]
fn condition_flag_without_controlnet() {
    let s = Setup::new(128, 128);
    let out = s.path("out.png");
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &["--edges", "auto"],
        2,
        &["--edges", "--controlnet"],
    );
    let cn = controlnet().display().to_string();
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &["--controlnet", &cn],
        2,
        &["no condition"],
    );
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &[
            "--controlnet",
            &cn,
            "--edges",
            "auto",
            "--scribble",
            "s.png",
        ],
        2,
        &["two condition flags"],
    );
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &out,
        &["--control-scale", "0.5"],
        2,
        &["--control-scale"],
    );
}

#[test]
fn unknown_output_format_is_refused() {
    let s = Setup::new(128, 128);
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &s.path("out.tif"),
        &[],
        2,
        &["out.tif", ".png", ".jpg", ".webp"],
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_says_how_to_rebuild() {
    let s = Setup::new(128, 128);
    expect_edit_failure(
        &s,
        &s.image,
        &sd(),
        &s.path("out.png"),
        &["--device", "cuda"],
        2,
        &["--features cuda"],
    );
}

/// A randomly initialised demo-model folder (VAE factor 4, ControlNets with
/// condition factor 4), written by the training crate's export.
fn factor_4_model(root: &Path) -> PathBuf {
    use optedit_train::conditions::ControlKind;
    use optedit_train::export::{export, DemoParts};
    use optedit_train::stages::{text_to_image::TextToImage, vae};
    type B = burn::backend::Flex;
    let device = Default::default();
    let vae_model = vae::new_vae::<B>(&device).unwrap();
    let t2i = TextToImage::<B>::new(&device).unwrap();
    let canny = optedit_models::ControlNetModel::<B>::from_unet(
        &t2i.unet,
        serde_json::from_value(optedit_train::demo::controlnet_config()).unwrap(),
        &device,
    )
    .unwrap();
    let out = root.join("demo");
    let parts = DemoParts {
        vae: &vae_model,
        scaling_factor: 0.5,
        text_to_image: &t2i,
        controlnets: vec![(ControlKind::Canny, &canny)],
        classifier: None,
    };
    export(&out, &parts, &sd().join("tokenizer")).unwrap();
    out
}

#[test]
fn a_factor_4_model_edits_a_size_that_is_not_a_multiple_of_8_with_a_controlnet() {
    // 132 x 100 is a multiple of the demo VAE's factor 4 but not of 8: the
    // condition builders used to reject it.
    let s = Setup::new(132, 100);
    let model = factor_4_model(s.dir.path());
    let out = s.path("out.png");
    let cn = model.join("controlnet-canny").display().to_string();
    assert_success(&s.edit_with(&model, &out, &["--controlnet", &cn, "--edges", "auto"]));
    assert_eq!(png_size(&out), (132, 100));
}
