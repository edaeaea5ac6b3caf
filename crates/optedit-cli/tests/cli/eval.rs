//! End-to-end tests of `optedit eval` on the tiny fixture models with a
//! randomly initialised classifier (numbers only have to be well formed).

use std::path::{Path, PathBuf};

use crate::common::{assert_failure, assert_success, optedit, stderr};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The demo layout on the tiny models: SD, both ControlNets, a random classifier.
fn demo_model(root: &Path) -> PathBuf {
    let fixtures = optedit_fixtures::fixtures_dir();
    let dir = root.join("model");
    copy_dir(&fixtures.join("tiny-sd"), &dir);
    for name in ["controlnet-pose", "controlnet-canny"] {
        copy_dir(&fixtures.join("tiny-controlnet"), &dir.join(name));
    }
    std::fs::create_dir_all(dir.join("classifier")).unwrap();
    optedit_eval::AttributeClassifier::<burn::backend::Flex>::new(&Default::default())
        .save(&dir.join("classifier/model.safetensors"))
        .unwrap();
    dir
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn number(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn eval_make_cases_is_deterministic_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    for out in [&a, &b] {
        assert_success(&optedit([
            "eval",
            "make-cases",
            "--out",
            &s(out),
            "--count",
            "6",
            "--seed",
            "3",
            "--quiet",
        ]));
    }
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    assert_eq!(text.lines().count(), 6);
    assert!(
        text.lines().next().unwrap().contains(r#""id":"text-0001""#),
        "{text}"
    );
    assert!(text.contains(r#""id":"text+pose-0003""#) && text.contains(r#""controls":["pose"]"#));
    // Every kind by default, in order, each with its ControlNets.
    for (id, controls) in [
        ("edges-0004", r#"["edges"]"#),
        ("scribble-0005", r#"["scribble"]"#),
        ("layout-0006", r#"["layout"]"#),
    ] {
        let line = text.lines().find(|l| l.contains(id)).expect(id);
        assert!(
            line.contains(&format!(r#""controls":{controls}"#)),
            "{line}"
        );
    }

    // Never over an existing file without --force.
    assert_failure(
        &optedit(["eval", "make-cases", "--out", &s(&a), "--count", "2"]),
        2,
        &["exists", "--force"],
    );
    assert_success(&optedit([
        "eval",
        "make-cases",
        "--out",
        &s(&a),
        "--count",
        "2",
        "--force",
        "--quiet",
    ]));
    assert_eq!(std::fs::read_to_string(&a).unwrap().lines().count(), 2);
    assert_failure(
        &optedit([
            "eval",
            "make-cases",
            "--out",
            &s(&b),
            "--force",
            "--kinds",
            "text,sketch",
        ]),
        2,
        &[
            "sketch",
            "text, pose, text+pose, edges, scribble, layout, multi",
        ],
    );
    assert_failure(
        &optedit([
            "eval",
            "make-cases",
            "--out",
            &s(&b),
            "--force",
            "--mask",
            "blob",
        ]),
        2,
        &["--mask", "dilate:N"],
    );
}

#[test]
fn eval_run_reports_bad_case_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.jsonl");
    std::fs::write(
        &cases,
        "{\"id\":\"a\",\"seed\":5,\"edit\":{\"pose\":\"with raised arms\"}}\n{\"id\":\"b\",\"seed\":5,\"edit\":{\"object\":0,\"colour\":\"teal\"}}\n",
    )
    .unwrap();
    let out = optedit([
        "eval",
        "run",
        "--model",
        "no-such-model",
        "--cases",
        &s(&cases),
        "--quiet",
    ]);
    assert_failure(
        &out,
        1,
        &[
            "--cases",
            "line 2",
            "edit.colour",
            "teal",
            "red, green, blue, yellow, purple",
        ],
    );
    let out = optedit([
        "eval",
        "run",
        "--model",
        "x",
        "--cases",
        &s(&cases),
        "--mask-override",
        "erode:y",
    ]);
    assert_failure(&out, 2, &["--mask-override"]);
}

/// `eval run --method` takes the word of every evaluation method (and
/// `optimize`), names them all when it refuses another, and lists them in
/// its help.
#[test]
fn eval_run_method_words() {
    let dir = tempfile::tempdir().unwrap();
    let cases = s(&dir.path().join("no-such-cases.jsonl"));
    let words = "optimise, diffedit, sdedit, identity, blank, oracle";
    let run = |method: &str| {
        optedit([
            "eval", "run", "--model", "x", "--cases", &cases, "--method", method, "--quiet",
        ])
    };
    assert_failure(
        &run("oracles"),
        2,
        &["invalid value", "oracles", "--method", words],
    );
    // Each word parses: the run goes on as far as the missing case file.
    for word in words.split(", ").chain(["optimize"]) {
        assert_failure(&run(word), 1, &["--cases", "no-such-cases.jsonl"]);
    }
    let help = optedit(["eval", "run", "--help"]);
    assert_success(&help);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains(
            "an editor (optimise, diffedit, sdedit), or a calibration row (identity, blank, oracle:"
        ),
        "{help}"
    );
    assert!(help.contains("[default: optimise]"), "{help}");
}

/// The calibration rows run from the command line with no editor, and
/// pool over seeds in `eval compare`; `optedit edit` does not take them.
#[test]
fn eval_run_calibration_rows_and_pooled_seeds() {
    let root = tempfile::tempdir().unwrap();
    let model = demo_model(root.path());
    let cases = root.path().join("cases.jsonl");
    assert_success(&optedit([
        "eval",
        "make-cases",
        "--out",
        &s(&cases),
        "--count",
        "2",
        "--seed",
        "1",
        "--kinds",
        "text,pose",
        "--quiet",
    ]));
    let run = |method: &str, name: &str, seed: &str| {
        let out = root.path().join(name);
        let o = optedit([
            "eval",
            "run",
            "--model",
            &s(&model),
            "--cases",
            &s(&cases),
            "--out",
            &s(&out),
            "--method",
            method,
            "--seed",
            seed,
            "--reference-count",
            "1",
            "--grid",
            "1",
            "--quiet",
        ]);
        assert_success(&o);
        (out, String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let (blank, row) = run("blank", "blank", "0");
    assert!(row.contains("| blank | – | per case | 2 |"), "{row}");
    let records = std::fs::read_to_string(blank.join("cases.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 2);
    for line in records.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (r["method"].as_str(), r["mask"].as_str()),
            (Some("blank"), Some("true"))
        );
        assert!(r["error"].is_null(), "{r}");
        // Only the excluded region changed.
        assert_eq!(number(&r, "psnr_bg"), 100.0);
        let ssim = number(&r, "ssim_bg");
        assert!(ssim > 0.0 && ssim <= 1.0, "{ssim}");
        assert!(r["stages"].as_object().unwrap().is_empty(), "{r}");
    }
    assert!(blank.join("grid.png").is_file());

    // Identity with two seeds, pooled into one row next to blank.
    let (id0, row) = run("identity", "identity-s0", "0");
    assert!(row.contains("| identity | – | none | 2 |"), "{row}");
    let (id1, _) = run("identity", "identity-s1", "1");
    let cmp = root.path().join("compare");
    let pooled = format!("{},{}", s(&id0), s(&id1));
    assert_success(&optedit([
        "eval",
        "compare",
        "--cases",
        &s(&cases),
        "--out",
        &s(&cmp),
        "--rows",
        "1",
        &pooled,
        &s(&blank),
    ]));
    let table = std::fs::read_to_string(cmp.join("compare.md")).unwrap();
    let row = table.lines().nth(2).unwrap();
    assert!(
        row.starts_with("| identity | – | none | 2 × 2 seeds (0, 1) | "),
        "{table}"
    );
    assert!(
        table.lines().nth(3).unwrap().starts_with("| blank |"),
        "{table}"
    );
    let kinds = std::fs::read_to_string(cmp.join("compare-kinds.md")).unwrap();
    assert!(kinds.contains("| identity-s{0,1} | 1 × 2 |"), "{kinds}");
    // Pooling runs of one seed twice is refused.
    let twice = format!("{},{}", s(&id0), s(&id0));
    assert_failure(
        &optedit([
            "eval",
            "compare",
            "--cases",
            &s(&cases),
            "--out",
            &s(&cmp),
            &twice,
        ]),
        2,
        &["same seed 0"],
    );

    // `optedit edit` takes editors only.
    let refused = optedit([
        "edit",
        "--model",
        &s(&model),
        "--image",
        "in.png",
        "--prompt",
        "a red star",
        "-o",
        &s(&root.path().join("out.png")),
        "--method",
        "oracle",
    ]);
    assert_failure(&refused, 2, &["invalid value", "oracle", "--method"]);
    assert!(stderr(&refused).contains("optimise, diffedit, sdedit"));
}

#[test]
fn eval_run_and_quality_end_to_end() {
    let root = tempfile::tempdir().unwrap();
    let model = demo_model(root.path());
    let cases = root.path().join("cases.jsonl");
    assert_success(&optedit([
        "eval",
        "make-cases",
        "--out",
        &s(&cases),
        "--count",
        "3",
        "--seed",
        "1",
        "--quiet",
    ]));
    let out = root.path().join("results");
    let run = |limit: &str, extra: &[&str]| {
        let mut args: Vec<String> = [
            "eval",
            "run",
            "--model",
            &s(&model),
            "--cases",
            &s(&cases),
            "--out",
            &s(&out),
            "--steps",
            "2",
            "--t-u",
            "1",
            "--k",
            "1",
            "--reference-count",
            "2",
            "--grid",
            "2",
            "--limit",
            limit,
            "--quiet",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        args.extend(extra.iter().map(|x| x.to_string()));
        optedit(args)
    };
    let first = run("2", &[]);
    assert_success(&first);
    let row = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        row.contains("| optimise (t_u 1, k 1, steps 2) | 0.6 | per case | 2 |"),
        "{row}"
    );

    let records = std::fs::read_to_string(out.join("cases.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 2);
    for line in records.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let psnr = number(&r, "psnr_bg");
        assert!(psnr.is_finite() && (0.0..=100.0).contains(&psnr), "{psnr}");
        assert!((0.0..=255.0).contains(&number(&r, "mae_bg")));
        assert!(number(&r, "seconds") > 0.0);
        assert!(r["regions"][0]["features"].as_array().unwrap().len() == 128);
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["cases"], 2);
    assert!((0.0..=1.0).contains(&number(&summary, "edit_accuracy")));
    assert!(number(&summary, "csfid").is_finite() && number(&summary, "csfid") >= 0.0);
    assert!(std::fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("| method | lambda |"));
    let grid = image::open(out.join("grid.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (4 * 128 + 6, 2 * 128 + 2));

    // The folder holds results: refused without --resume; resumed, the third case is added.
    assert_failure(&run("2", &[]), 2, &["--out", "--resume"]);
    let more = run("3", &["--resume"]);
    assert_success(&more);
    assert_eq!(
        std::fs::read_to_string(out.join("cases.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert_failure(
        &run("3", &["--resume", "--lambda", "0.2"]),
        1,
        &["resume", "other settings"],
    );
    // Other weights in the same folder (a retrained model): refused too.
    let weights = model.join("unet/diffusion_pytorch_model.safetensors");
    let original = std::fs::read(&weights).unwrap();
    let mut changed = original.clone();
    *changed.last_mut().unwrap() ^= 1; // the last byte of the tensor data
    std::fs::write(&weights, &changed).unwrap();
    assert_failure(&run("3", &["--resume"]), 1, &["resume", "other settings"]);
    std::fs::write(&weights, &original).unwrap();

    // Runs side by side: the run twice gives two equal rows and two result columns.
    let cmp = root.path().join("compare");
    let compare = |runs: &[&Path]| {
        let mut args = vec![
            "eval".to_string(),
            "compare".into(),
            "--cases".into(),
            s(&cases),
        ];
        args.extend(["--out".to_string(), s(&cmp)]);
        args.extend(runs.iter().map(|r| s(r)));
        optedit(args)
    };
    let side = compare(&[&out, &out]);
    assert_success(&side);
    let table = std::fs::read_to_string(cmp.join("compare.md")).unwrap();
    // Header, two rows, two settings comments, a blank line, the legend.
    assert_eq!(table.lines().count(), 8, "{table}");
    assert!(table
        .lines()
        .take(6)
        .all(|l| l.starts_with('|') || l.starts_with("<!--")));
    assert!(table
        .lines()
        .nth(7)
        .unwrap()
        .starts_with("Brackets: 95% intervals"));
    assert_eq!(table.lines().nth(2), table.lines().nth(3));
    let kinds = std::fs::read_to_string(cmp.join("compare-kinds.md")).unwrap();
    assert_eq!(kinds.lines().count(), 4, "{kinds}");
    assert!(
        kinds.lines().nth(2).unwrap().starts_with("| results | "),
        "{kinds}"
    );
    // A run against itself never disagrees.
    let paired = std::fs::read_to_string(cmp.join("compare-paired.md")).unwrap();
    assert_eq!(paired.lines().count(), 3, "{paired}");
    let row = paired.lines().nth(2).unwrap();
    assert!(
        row.starts_with("| results | ") && row.ends_with(" | 0 | 0 | 1.000 |"),
        "{paired}"
    );
    let grid = image::open(cmp.join("compare.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (5 * 128 + 8, 2 * 128 + 2));
    assert_failure(&compare(&[&out, &root.path().join("none")]), 2, &["none"]);

    let q = root.path().join("quality");
    let quality = optedit([
        "eval",
        "quality",
        "--model",
        &s(&model),
        "--count",
        "1",
        "--steps",
        "2",
        "--out",
        &s(&q),
        "--quiet",
    ]);
    assert_success(&quality);
    assert!(String::from_utf8_lossy(&quality.stdout).contains("inversion + reconstruction PSNR"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(q.join("quality.json")).unwrap()).unwrap();
    assert!((0.0..=1.0).contains(&number(&report["samples"], "mean")));
    assert!(number(&report["reconstruction"], "psnr_mean").is_finite());
    assert!(q.join("samples.png").is_file() && q.join("reconstructions.png").is_file());
}
