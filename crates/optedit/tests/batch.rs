//! The batch runner (`optedit::batch`): job lines parsed with the field at
//! fault, shards that split a file exactly once, merge's coverage check,
//! resume's choice of what is done, and a run on the tiny fixture model
//! that records every line, goes on after bad ones, and makes the same
//! image as one `Pipeline::edit` call.

use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use image::{Rgb, RgbImage};
use optedit::batch::{
    self, Batch, BatchError, BatchProgress, Job, JobOptions, LineError, Plan, Record, Runner,
    Shard, Status,
};
use optedit::{
    CpuBackend, EditConfig, Instruction, MaskChoice, Method, Options, Pipeline, Progress,
    ProgressEvent, Silent,
};
use optedit_fixtures::fixtures_dir;

fn field_of(line: &str) -> String {
    match Job::parse(line) {
        Err(LineError::Field { field, .. }) => field,
        other => panic!("{line}: expected a field error, got {other:?}"),
    }
}

#[test]
fn job_lines_parse_naming_the_field_at_fault() {
    let job = Job::parse(
        r#"{"image": "a.png", "prompt": "a dog", "method": "diffedit", "mask": "none",
            "controls": [{"net": 1, "edges": "auto", "scale": 0.5}],
            "options": {"steps": 7, "optimizer": "adam", "guidance_gradient": "conditional"},
            "output": "x/y.webp"}"#,
    )
    .unwrap();
    assert_eq!(job.method, Some(Method::DiffEdit));
    assert_eq!(job.controls[0].net, 1);
    assert_eq!(job.options.steps, Some(7));
    assert_eq!(
        job.options.guidance_gradient,
        Some(optedit::edit::GuidanceGradient::Conditional)
    );
    let applied = job.options.apply(&optedit::Options::default());
    assert_eq!(
        applied.config.guidance_gradient,
        optedit::edit::GuidanceGradient::Conditional
    );
    // The line a job writes reads back as the same job.
    assert_eq!(Job::parse(&job.to_line()).unwrap(), job);
    let mut plain = Job::new("b.png", "a cat");
    plain.method = Some(Method::SdEdit);
    assert_eq!(Job::parse(&plain.to_line()).unwrap(), plain);

    assert_eq!(
        field_of(r#"{"image": "a", "prompt": "p", "method": "paint"}"#),
        "method"
    );
    assert_eq!(
        field_of(r#"{"image": "a", "prompt": "p", "options": {"stepz": 3}}"#),
        "options.stepz"
    );
    assert_eq!(
        field_of(r#"{"image": "a", "prompt": "p", "options": {"steps": -3}}"#),
        "options.steps"
    );
    assert_eq!(
        field_of(r#"{"image": "a", "prompt": "p", "options": {"guidance_gradient": "half"}}"#),
        "options.guidance_gradient"
    );
    assert_eq!(
        field_of(r#"{"image": "a", "prompt": "p", "controls": [{"net": "x"}]}"#),
        "controls[0].net"
    );
    for bad in [
        r#"{"image": "a.png", "prompt": "#,
        r#"["a.png"]"#,
        r#"{"prompt": "p"}"#,
        r#"{"image": "a", "prompt": "p"} trailing"#,
    ] {
        assert!(
            matches!(Job::parse(bad), Err(LineError::Parse { .. })),
            "{bad}: {:?}",
            Job::parse(bad)
        );
    }
    // The message names the column, not "line 1" (which would read as the
    // job file's first line).
    let e = Job::parse(r#"{"image": "a", "prompt": "p", "method": "paint"}"#).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`paint`") && text.contains("sdedit"),
        "{text}"
    );
    assert!(
        text.contains("column") && !text.contains("line 1"),
        "{text}"
    );
    // Every worded option names what it is and lists its words.
    for (line, want) in [
        (
            r#"{"image": "a", "prompt": "p", "options": {"guidance_gradient": "half"}}"#,
            "unknown guidance gradient `half`: expected one of both, conditional",
        ),
        (
            r#"{"image": "a", "prompt": "p", "options": {"loss_space": "far"}}"#,
            "unknown loss space `far`: expected one of next, clean",
        ),
        (
            r#"{"image": "a", "prompt": "p", "options": {"optimizer": "lbfgs"}}"#,
            "unknown optimizer `lbfgs`: expected one of",
        ),
    ] {
        let text = Job::parse(line).unwrap_err().to_string();
        assert!(text.contains(want), "{text}");
    }
}

#[test]
fn job_options_override_only_what_they_name() {
    let base = Options {
        method: Method::DiffEdit,
        config: EditConfig {
            num_steps: 20,
            seed: 1,
            ..EditConfig::default()
        },
        max_side: None,
        ..Options::default()
    };
    assert_eq!(JobOptions::default().apply(&base), base);
    let opts: JobOptions =
        serde_json::from_str(r#"{"steps": 3, "seed": 9, "max_size": 64, "mask_blur": 2}"#).unwrap();
    let o = opts.apply(&base);
    assert_eq!(o.config.num_steps, 3);
    assert_eq!(o.config.seed, 9);
    assert_eq!(o.max_side, Some(64));
    assert_eq!(o.mask_options.blur, 2);
    assert_eq!(o.method, base.method);
    assert_eq!(o.config.lambda, base.config.lambda);
    assert_eq!(o.mask_options.dilate, base.mask_options.dilate);
}

#[test]
fn shards_take_every_line_exactly_once() {
    for n in 1..6 {
        let shards: Vec<Shard> = (0..n).map(|i| Shard::new(i, n).unwrap()).collect();
        for line in 0..40 {
            let takers: Vec<_> = shards.iter().filter(|s| s.takes(line)).collect();
            assert_eq!(takers.len(), 1, "line {line} of {n} shards");
            assert_eq!(takers[0].index(), line % n);
        }
    }
    let s: Shard = "1/3".parse().unwrap();
    assert_eq!((s.index(), s.count()), (1, 3));
    assert_eq!(s.to_string(), "1/3");
    assert_eq!(s.records_name(), "records-1-of-3.jsonl");
    assert_eq!(Shard::ALL.records_name(), "records.jsonl");
    for bad in ["3/3", "0/0", "a/2", "2", "-1/2", ""] {
        match bad.parse::<Shard>() {
            Err(BatchError::Shard { spec, .. }) => assert_eq!(spec, bad),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn job_files_skip_blank_lines_and_refuse_clashing_or_escaping_outputs() {
    let text = b"{\"image\": \"a.png\", \"prompt\": \"p\"}\n\
        \n\
        {\"image\": \"b.png\", \"prompt\": \"p\", \"output\": \"sub/0.png\"}\r\n\
        {\"image\": \"c.png\", \"prompt\": \"p\", \"output\": \"0.png\"}\n\
        {\"image\": \"c.png\", \"prompt\": \"p\", \"output\": \"../up.png\"}\n\
        {\"image\": \"c.png\", \"prompt\": \"p\", \"output\": \"x.tif\"}\n\
        \xff\xfe\n";
    let batch = Batch::parse("jobs/list.jsonl", text);
    assert_eq!(batch.base(), Path::new("jobs"));
    assert_eq!(batch.lines().collect::<Vec<_>>(), [0, 2, 3, 4, 5, 6]);
    assert!(batch.job(1).is_none(), "a blank line is no job");
    assert!(batch.job(7).is_none());
    let (job, out) = batch.job(0).unwrap().unwrap();
    assert_eq!(job.image, Path::new("a.png"));
    assert_eq!(out, Path::new("0.png"), "the default output is <line>.png");
    assert_eq!(batch.job(2).unwrap().unwrap().1, Path::new("sub/0.png"));
    let field = |line| match batch.job(line).unwrap() {
        Err(LineError::Field { field, message }) => format!("{field}: {message}"),
        other => panic!("line {line}: {other:?}"),
    };
    assert!(
        field(3).starts_with("output: 0.png is line 0's"),
        "{}",
        field(3)
    );
    assert!(field(4).contains(".."), "{}", field(4));
    assert!(field(5).contains("x.tif"), "{}", field(5));
    assert!(matches!(
        batch.job(6).unwrap(),
        Err(LineError::Parse { .. })
    ));
    // A line's hash follows its text (the CR of a CRLF file is no part of it).
    let again = Batch::parse("jobs/list.jsonl", &text.replace(b"\r\n", b"\n")[..]);
    assert_eq!(again.line_hash(2), batch.line_hash(2));
    assert_ne!(batch.line_hash(0), batch.line_hash(2));
}

trait Replace {
    fn replace(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl Replace for [u8] {
    fn replace(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.len() {
            if self[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(self[i]);
                i += 1;
            }
        }
        out
    }
}

/// A record line as the runner writes it.
fn record(batch: &Batch, line: usize, status: &str, output: Option<&str>) -> String {
    let hash = batch.line_hash(line).unwrap_or("0000000000000000");
    let mut v = serde_json::json!({
        "line": line, "job_hash": hash, "status": status, "seconds": 0.5,
        "timings": [{"stage": "read", "seconds": 0.1}],
    });
    match output {
        Some(o) => v["output"] = o.into(),
        None => v["error"] = "image: cannot read".into(),
    }
    format!("{v}\n")
}

fn four_jobs() -> Batch {
    let text: String = (0..4)
        .map(|i| format!("{{\"image\": \"{i}.png\", \"prompt\": \"p{i}\"}}\n"))
        .collect();
    Batch::parse("jobs.jsonl", text.as_bytes())
}

#[test]
fn merge_checks_the_records_cover_the_file_exactly_once() {
    let batch = four_jobs();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        fs::write(&p, lines.concat()).unwrap();
        p
    };
    let a = file(
        "a.jsonl",
        &[
            record(&batch, 2, "ok", Some("2.png")),
            record(&batch, 0, "error", None),
        ],
    );
    let b = file(
        "b.jsonl",
        &[
            record(&batch, 1, "ok", Some("1.png")),
            record(&batch, 3, "ok", Some("3.png")),
        ],
    );
    let merged = batch::merge(&batch, &[&a, &b]).unwrap();
    assert_eq!(
        merged.iter().map(|r| r.line).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(merged[0].status, Status::Error);
    // What merge returns writes and reads back unchanged.
    let all = dir.path().join("all.jsonl");
    batch::write_records(&all, &merged).unwrap();
    assert_eq!(batch::read_records(&all).unwrap(), merged);

    let coverage = |files: &[&std::path::PathBuf]| match batch::merge(&batch, files) {
        Err(BatchError::Coverage { coverage, jobs }) => {
            assert_eq!(jobs, Path::new("jobs.jsonl"));
            coverage
        }
        other => panic!("{other:?}"),
    };
    let c = coverage(&[&a]);
    assert_eq!(c.missing, [1, 3]);
    assert!(c.duplicated.is_empty() && c.unknown.is_empty() && c.changed.is_empty());
    let c = coverage(&[&a, &b, &a]);
    assert_eq!(
        c.duplicated,
        [
            (0, vec![a.clone(), a.clone()]),
            (2, vec![a.clone(), a.clone()])
        ]
    );
    assert!(c.missing.is_empty());
    let mut changed = record(&batch, 3, "ok", Some("3.png"));
    changed = changed.replace(batch.line_hash(3).unwrap(), "0123456789abcdef");
    let c2 = file(
        "c.jsonl",
        &[
            record(&batch, 1, "ok", Some("1.png")),
            changed,
            record(&batch, 9, "ok", Some("9.png")),
        ],
    );
    let c = coverage(&[&a, &c2]);
    assert_eq!(c.missing, [3]);
    assert_eq!(c.changed, [(c2.clone(), 3)]);
    assert_eq!(c.unknown, [(c2.clone(), 9)]);
    let message = batch::merge(&batch, &[&a, &c2]).unwrap_err().to_string();
    assert!(
        message.contains("missing: 3") && message.contains("c.jsonl"),
        "{message}"
    );

    // A torn line (a shard stopped while writing it) is named, not skipped.
    let torn = file(
        "torn.jsonl",
        &[
            record(&batch, 1, "ok", Some("1.png")),
            "{\"line\": 3, \"job".into(),
        ],
    );
    match batch::merge(&batch, &[&a, &torn]) {
        Err(BatchError::BadRecord { path, line, .. }) => assert_eq!((path, line), (torn, 2)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn resume_skips_done_lines_and_drops_the_rest() {
    let batch = four_jobs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // A fresh folder: everything to do, an empty records file.
    let plan = Plan::make(&batch, &out, Shard::ALL, false).unwrap();
    assert_eq!(plan.todo, [0, 1, 2, 3]);
    assert_eq!(fs::read(&plan.records).unwrap(), b"");
    // An empty records file is no earlier run.
    Plan::make(&batch, &out, Shard::ALL, false).unwrap();

    fs::write(out.join("0.png"), b"done").unwrap();
    fs::write(out.join("2.png"), b"done").unwrap();
    let mut changed = record(&batch, 2, "ok", Some("2.png"));
    changed = changed.replace(batch.line_hash(2).unwrap(), "0123456789abcdef");
    let records = [
        record(&batch, 0, "ok", Some("0.png")),  // kept
        record(&batch, 1, "ok", Some("1.png")),  // output gone
        record(&batch, 3, "error", None),        // an error runs again
        changed,                                 // the line has changed
        record(&batch, 0, "ok", Some("0.png")),  // a repeat
        "{\"line\": 2, \"job_hash\": \"".into(), // torn
    ]
    .concat();
    let path = out.join("records.jsonl");
    fs::write(&path, &records).unwrap();
    match Plan::make(&batch, &out, Shard::ALL, false) {
        Err(BatchError::RecordsExist { path: p }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        records,
        "refused, untouched"
    );

    let plan = Plan::make(&batch, &out, Shard::ALL, true).unwrap();
    assert_eq!(plan.todo, [1, 2, 3]);
    assert_eq!(plan.done.iter().map(|r| r.line).collect::<Vec<_>>(), [0]);
    assert_eq!(plan.dropped, 5);
    // The records file now holds only what was kept, whole lines.
    assert_eq!(batch::read_records(&path).unwrap(), plan.done);

    // A shard keeps only its own lines.
    fs::write(
        out.join("records-1-of-2.jsonl"),
        record(&batch, 0, "ok", Some("0.png")),
    )
    .unwrap();
    let plan = Plan::make(&batch, &out, Shard::new(1, 2).unwrap(), true).unwrap();
    assert_eq!(plan.todo, [1, 3]);
    assert!(plan.done.is_empty());
}

// ----------------------------------------------------- on the tiny model ---

fn write_photo(path: &Path, w: u32, h: u32, shift: u32) {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([((x * 5 + shift) % 256) as u8, ((y * 7) % 256) as u8, 120])
    })
    .save(path)
    .unwrap();
}

fn fast() -> Options {
    Options {
        config: EditConfig {
            num_steps: 4,
            t_u: 1,
            k: 1,
            ..EditConfig::default()
        },
        ..Options::default()
    }
}

/// Stops the run after `left` records.
struct StopAfter {
    left: usize,
    lines: Vec<usize>,
}

impl Progress for StopAfter {
    fn report(&mut self, _: &ProgressEvent) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl BatchProgress for StopAfter {
    fn line(&mut self, line: usize) {
        self.lines.push(line);
    }

    fn record(&mut self, _: &Record) -> ControlFlow<()> {
        self.left -= 1;
        if self.left == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[test]
fn runner_records_every_line_goes_on_after_bad_ones_and_resumes() {
    let pipeline =
        Pipeline::<CpuBackend>::load(fixtures_dir().join("tiny-sd"), &Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jobs_dir = dir.path().join("jobs");
    fs::create_dir(&jobs_dir).unwrap();
    write_photo(&jobs_dir.join("a.png"), 40, 36, 0);
    write_photo(&jobs_dir.join("b.png"), 32, 32, 50);
    let lines = [
        r#"{"image": "a.png", "source_prompt": "a photo", "prompt": "a red square", "mask": "none"}"#,
        r#"{"image": "missing.png", "prompt": "x"}"#,
        r#"{"image": "b.png", "prompt": "a blue square", "method": "sdedit", "output": "sub/b.webp", "options": {"seed": 5}}"#,
    ];
    let jobs = jobs_dir.join("jobs.jsonl");
    fs::write(&jobs, lines.join("\n")).unwrap();
    let batch = Batch::read(&jobs).unwrap();
    let out = dir.path().join("out");

    // Stopped after the first record: one line done, the rest left.
    let runner = Runner::new(&pipeline, &out).with_options(fast());
    let mut stop = StopAfter {
        left: 1,
        lines: Vec::new(),
    };
    let summary = runner.run(&batch, &mut stop).unwrap();
    assert_eq!((summary.ok, summary.failed, summary.left), (1, 0, 2));
    assert_eq!(stop.lines, [0]);

    // Resumed: line 0 is skipped, the bad line is recorded and the run goes
    // on to line 2.
    let runner = runner.with_resume(true);
    let summary = runner.run(&batch, &mut Silent).unwrap();
    assert_eq!(
        (summary.skipped, summary.ok, summary.failed, summary.left),
        (1, 1, 1, 0)
    );
    let records = batch::read_records(runner.records_path()).unwrap();
    assert_eq!(
        records.iter().map(|r| r.line).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(records[1].status, Status::Error);
    let error = records[1].error.as_deref().unwrap();
    assert!(
        error.starts_with("image: ") && error.contains("missing.png"),
        "{error}"
    );
    assert!(records[1].output.is_none());
    assert_eq!(records[2].output.as_deref(), Some(Path::new("sub/b.webp")));
    for r in [&records[0], &records[2]] {
        assert_eq!(r.status, Status::Ok);
        let stages: Vec<&str> = r.timings.iter().map(|t| t.stage.as_str()).collect();
        assert_eq!(stages.first(), Some(&"read"));
        assert_eq!(stages.last(), Some(&"write"));
        assert!(stages.contains(&"decode"), "{stages:?}");
    }
    assert_eq!(
        batch::merge(&batch, &[runner.records_path()]).unwrap(),
        records
    );

    // The batch's result is what one `Pipeline::edit` call makes, and keeps
    // the input's size and format by extension.
    let made = optedit::images::read(out.join("0.png")).unwrap().to_rgb8();
    let input = optedit::images::read(jobs_dir.join("a.png")).unwrap();
    let mut instruction = Instruction::new("a photo", "a red square");
    instruction.mask = MaskChoice::Full;
    let direct = pipeline
        .edit(&input, &instruction, &fast(), &mut Silent)
        .unwrap();
    assert_eq!(made, direct.image);
    let webp = image::ImageReader::open(out.join("sub/b.webp"))
        .unwrap()
        .with_guessed_format()
        .unwrap();
    assert_eq!(webp.format(), Some(image::ImageFormat::WebP));
    assert_eq!(webp.decode().unwrap().to_rgb8().dimensions(), (32, 32));

    // Resumed again: only the error runs (and fails) again; each line is
    // still recorded once.
    let summary = runner.run(&batch, &mut Silent).unwrap();
    assert_eq!((summary.skipped, summary.ok, summary.failed), (2, 0, 1));
    let again = batch::read_records(runner.records_path()).unwrap();
    assert_eq!(again.iter().map(|r| r.line).collect::<Vec<_>>(), [0, 2, 1]);
    assert!(again[..2]
        .iter()
        .zip([&records[0], &records[2]])
        .all(|(a, b)| a == b));

    // No temporary file is left anywhere in the output folder.
    for entry in walk(&out) {
        assert!(!entry.ends_with(".tmp"), "{entry}");
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
