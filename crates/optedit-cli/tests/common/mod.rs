//! Helpers shared by the binary's end-to-end tests: running `optedit` and
//! checking its exit status and error line.

#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs the `optedit` binary built for these tests with `args`.
pub fn optedit<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_optedit"))
        .args(args)
        .output()
        .expect("run optedit")
}

/// The process's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that the process succeeded, showing its stderr otherwise.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "optedit failed ({:?}): {}",
        out.status.code(),
        stderr(out)
    );
}

/// Asserts a failure with `code` whose message is one `error:` line
/// containing each of `needles`.
pub fn assert_failure(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit status; stderr: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no `error:` line in {err:?}"));
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in {line:?}");
    }
}
