//! Atomic file output: a temporary file in the target's folder, renamed over
//! the target once complete, so no partial file is ever left.

use std::io::Write;
use std::path::Path;

use image::{DynamicImage, ImageFormat};

use crate::error::{io, EvalError, Result};

fn temp_for(path: &Path) -> Result<tempfile::NamedTempFile> {
    optedit_cond::file::temp_beside(path).map_err(io(path))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_for(path)?;
    tmp.write_all(bytes).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| EvalError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes `image` as PNG to `path` atomically.
pub fn write_png(path: &Path, image: &DynamicImage) -> Result<()> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|source| EvalError::Image {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"first, longer").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(write_atomic(&dir.path().join("missing/a.json"), b"x").is_err());
    }
}
