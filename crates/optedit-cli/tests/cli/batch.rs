//! End-to-end tests of `optedit batch` on the tiny fixture models: two
//! shards run as two processes merge to what one unsharded run makes; a
//! batch killed halfway and resumed finishes with nothing lost or
//! duplicated; bad lines are recorded as errors and the batch goes on.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use serde_json::Value;
use tempfile::TempDir;

use crate::common::{assert_failure, assert_success, optedit, stderr};

/// Few steps: the tiny models make each line a fraction of a second.
const FAST: &[&str] = &["--steps", "4", "--t-u", "1", "--k", "1", "--quiet"];

fn fixture(name: &str) -> String {
    optedit_fixtures::fixtures_dir()
        .join(name)
        .display()
        .to_string()
}

fn write_photo(path: &Path, w: u32, h: u32, shift: u32) {
    RgbImage::from_fn(w, h, |x, y| {
        let inside = x > w / 4 && x < 3 * w / 4 && y > h / 3 && y < 2 * h / 3;
        if inside {
            Rgb([220, (40 + shift) as u8, 30])
        } else {
            Rgb([
                ((x * 255 / w + shift) % 256) as u8,
                (y * 255 / h) as u8,
                128,
            ])
        }
    })
    .save(path)
    .unwrap();
}

/// A job folder with three photos, a mask and `lines` as jobs.jsonl.
struct Jobs {
    dir: TempDir,
}

impl Jobs {
    fn new(lines: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        fs::create_dir(&photos).unwrap();
        write_photo(&photos.join("a.png"), 48, 40, 0);
        write_photo(&photos.join("b.png"), 40, 40, 60);
        write_photo(&photos.join("c.png"), 36, 44, 120);
        image::GrayImage::from_fn(48, 40, |x, _| image::Luma([if x < 24 { 255 } else { 0 }]))
            .save(dir.path().join("mask.png"))
            .unwrap();
        fs::write(dir.path().join("jobs.jsonl"), lines.join("\n") + "\n").unwrap();
        Self { dir }
    }

    fn jobs(&self) -> PathBuf {
        self.dir.path().join("jobs.jsonl")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The arguments of `optedit batch` into `out`, then `extra`.
    fn args(&self, out: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "batch",
            "--model",
            &fixture("tiny-sd"),
            "--controlnet",
            &fixture("tiny-controlnet"),
            "--jobs",
            &self.jobs().display().to_string(),
            "--out",
            &out.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        args.extend(FAST.iter().chain(extra).map(|s| s.to_string()));
        args
    }

    fn run(&self, out: &Path, extra: &[&str]) -> Output {
        optedit(self.args(out, extra))
    }

    fn spawn(&self, out: &Path, extra: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_optedit"))
            .args(self.args(out, extra))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run optedit")
    }
}

/// A variety of good lines: text edits under each mask, the baselines,
/// ControlNet edges, a subfolder and WebP output; a blank line.
const GOOD: &[&str] = &[
    r#"{"image": "photos/a.png", "source_prompt": "a square", "prompt": "a red square"}"#,
    r#"{"image": "photos/b.png", "prompt": "a blue square", "method": "diffedit", "mask": "none", "output": "sub/b.webp"}"#,
    "",
    r#"{"image": "photos/c.png", "prompt": "edges", "method": "sdedit", "controls": [{"net": 0, "edges": "auto", "scale": 0.5}]}"#,
    r#"{"image": "photos/a.png", "prompt": "a green square", "mask": "mask.png", "options": {"seed": 7, "lambda": 0.3}}"#,
    r#"{"image": "photos/b.png", "prompt": "a dog", "negative_prompt": "a cat", "mask": "none", "options": {"steps": 3, "t_u": 2}}"#,
];

fn records(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Records by line, without their times.
fn results(records: &[Value]) -> BTreeMap<u64, Value> {
    let mut out = BTreeMap::new();
    for r in records {
        let mut r = r.clone();
        let line = r["line"].as_u64().unwrap();
        let o = r.as_object_mut().unwrap();
        o.remove("seconds");
        o.remove("timings");
        assert!(out.insert(line, r).is_none(), "line {line} recorded twice");
    }
    out
}

/// The output files of `results`, which must all exist, byte-equal in `a`
/// and `b`.
fn assert_same_outputs(results: &BTreeMap<u64, Value>, a: &Path, b: &Path) {
    for r in results.values() {
        if let Some(out) = r["output"].as_str() {
            let (x, y) = (
                fs::read(a.join(out)).unwrap(),
                fs::read(b.join(out)).unwrap(),
            );
            assert!(
                x == y,
                "{out} differs between {} and {}",
                a.display(),
                b.display()
            );
        }
    }
}

fn job_lines(lines: &[&str]) -> Vec<u64> {
    (0..lines.len() as u64)
        .filter(|&i| !lines[i as usize].trim().is_empty())
        .collect()
}

#[test]
fn two_shards_merge_to_what_one_run_makes() {
    let jobs = Jobs::new(GOOD);
    let one = jobs.path("one");
    let run = jobs.run(&one, &[]);
    assert_success(&run);
    let all = results(&records(&one.join("records.jsonl")));
    assert_eq!(all.keys().copied().collect::<Vec<_>>(), job_lines(GOOD));
    for r in all.values() {
        assert_eq!(r["status"], "ok", "{r}");
    }
    assert!(one.join("sub/b.webp").is_file());
    assert!(
        one.join("3.png").is_file(),
        "the default output is <line>.png"
    );

    // Two processes at once, into one folder.
    let shards = jobs.path("shards");
    let children: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|s| jobs.spawn(&shards, &["--shard", s]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_success(&out);
    }
    let parts = [
        shards.join("records-0-of-2.jsonl"),
        shards.join("records-1-of-2.jsonl"),
    ];
    for (i, part) in parts.iter().enumerate() {
        for r in records(part) {
            assert_eq!(r["line"].as_u64().unwrap() % 2, i as u64, "{r}");
        }
    }
    let merged = jobs.path("merged.jsonl");
    let run = optedit([
        "batch".into(),
        "merge".into(),
        "--jobs".into(),
        jobs.jobs(),
        "--into".into(),
        merged.clone(),
        parts[0].clone(),
        parts[1].clone(),
    ]);
    assert_success(&run);
    let lines: Vec<u64> = records(&merged)
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, job_lines(GOOD), "merged in line order");
    assert_eq!(results(&records(&merged)), all);
    assert_same_outputs(&all, &one, &shards);

    // One shard alone does not cover the file; the same shard twice covers
    // its lines twice.
    let merge = |files: &[&PathBuf]| {
        let mut args = vec!["batch".into(), "merge".into(), "--jobs".into(), jobs.jobs()];
        args.extend(files.iter().map(|f| f.to_path_buf()));
        optedit(args)
    };
    assert_failure(&merge(&[&parts[0]]), 1, &["missing: 1, 3, 5"]);
    assert_failure(
        &merge(&[&parts[0], &parts[1], &parts[0]]),
        1,
        &["recorded more than once: 0", "records-0-of-2.jsonl"],
    );
}

/// Twelve good lines, each one of the good jobs.
fn many() -> Vec<&'static str> {
    GOOD.iter()
        .filter(|l| !l.is_empty())
        .cycle()
        .take(12)
        .copied()
        .collect()
}

#[test]
fn a_killed_batch_resumes_with_nothing_lost_or_duplicated() {
    // Repeated lines need their own outputs: the default <line>.png, or
    // sub/b.webp made unique.
    let lines: Vec<String> = many()
        .iter()
        .enumerate()
        .map(|(i, l)| l.replace("sub/b.webp", &format!("sub/b{i}.webp")))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let jobs = Jobs::new(&lines);
    let reference = jobs.path("reference");
    assert_success(&jobs.run(&reference, &[]));

    let out = jobs.path("out");
    // --limit stops after two lines, leaving the rest.
    assert_success(&jobs.run(&out, &["--limit", "2"]));
    let path = out.join("records.jsonl");
    assert_eq!(records(&path).len(), 2);
    // Running again without --resume is refused and changes nothing.
    assert_failure(&jobs.run(&out, &[]), 2, &["--resume"]);
    assert_eq!(records(&path).len(), 2);

    // Resumed, then killed once two more lines are recorded.
    let mut child = jobs.spawn(&out, &["--resume"]);
    let start = Instant::now();
    let count = || {
        fs::read_to_string(&path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    while count() < 4 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    let at_kill = records(&path).len();
    assert!(
        (4..lines.len()).contains(&at_kill),
        "{at_kill} of {} lines recorded when killed",
        lines.len()
    );
    // As if it had been killed while writing a record too.
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("{\"line\": 11, \"job_hash\": \"");
    fs::write(&path, text).unwrap();

    let run = jobs.run(&out, &["--resume"]);
    assert_success(&run);
    let done = results(&records(&path));
    let want = results(&records(&reference.join("records.jsonl")));
    assert_eq!(done, want, "each line once, as the uninterrupted run");
    assert_same_outputs(&want, &reference, &out);
    let merge = optedit([
        "batch".into(),
        "merge".into(),
        "--jobs".into(),
        jobs.jobs(),
        path.clone(),
    ]);
    assert_success(&merge);
    assert!(
        stderr(&merge).contains("12 ok, 0 failed"),
        "{}",
        stderr(&merge)
    );
    for e in fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file {name} left");
    }
}

#[test]
fn bad_lines_are_recorded_and_the_batch_goes_on() {
    let lines = [
        GOOD[0],
        r#"{"image": "photos/missing.png", "prompt": "x"}"#,
        r#"{"image": "photos/a.png", "prompt": "#,
        r#"{"image": "photos/a.png", "prompt": "x", "method": "paint"}"#,
        r#"{"image": "photos/a.png", "prompt": "x", "options": {"stepz": 3}}"#,
        // Another line's input.
        r#"{"image": "photos/a.png", "prompt": "x", "output": "photos/c.png"}"#,
        r#"{"image": "photos/a.png", "prompt": "x", "controls": [{"net": 0}]}"#,
        GOOD[3],
    ];
    let jobs = Jobs::new(&lines);
    let input = fs::read(jobs.path("photos/c.png")).unwrap();
    // The job folder is the output folder: line 5 would overwrite an input.
    let out = jobs.dir.path().to_path_buf();
    let run = jobs.run(&out, &[]);
    assert_failure(&run, 3, &["6 of 8 lines failed", "records.jsonl"]);
    let recs = records(&out.join("records.jsonl"));
    let by_line = results(&recs);
    assert_eq!(by_line.len(), lines.len(), "every line is recorded");
    let error = |line: u64| {
        let r = &by_line[&line];
        assert_eq!(r["status"], "error", "{r}");
        assert!(r.get("output").is_none(), "{r}");
        r["error"].as_str().unwrap().to_string()
    };
    let e = error(1);
    assert!(e.starts_with("image: ") && e.contains("missing.png"), "{e}");
    assert!(error(2).starts_with("not a job line: "), "{}", error(2));
    let e = error(3);
    assert!(e.starts_with("method: ") && e.contains("`paint`"), "{e}");
    assert!(error(4).starts_with("options.stepz: "), "{}", error(4));
    let e = error(5);
    assert!(
        e.starts_with("output: ") && e.contains("an input (of line 7)"),
        "{e}"
    );
    assert_eq!(
        fs::read(jobs.path("photos/c.png")).unwrap(),
        input,
        "input untouched"
    );
    assert!(
        error(6).starts_with("controls[0]: no condition"),
        "{}",
        error(6)
    );
    // The lines after the bad ones ran.
    for line in [0, 7] {
        let r = &by_line[&line];
        assert_eq!(r["status"], "ok", "{r}");
        assert!(out.join(r["output"].as_str().unwrap()).is_file());
    }

    // Resumed: the errors run again (and fail again), the done lines not;
    // still one record per line.
    let run = jobs.run(&out, &["--resume"]);
    assert_failure(&run, 3, &["6 of 6 lines failed"]);
    assert_eq!(
        results(&records(&out.join("records.jsonl"))).len(),
        lines.len()
    );
}
