//! The one way a video's side files are written: each line handed to the OS as one `write` when
//! it is complete (so a kill never leaves half a line behind a buffer), synced with the video by
//! its syncer (see [`crate::storage::durability`]), and synced once more when the file finishes.

use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
};

use super::with_path;

/// A side file being written line by line. Its errors name the file and what it is.
#[derive(Debug)]
pub struct LineFile {
    file: File,
    path: PathBuf,
    /// What the file is, for error messages: "frame index", "detections log".
    what: &'static str,
}

impl LineFile {
    /// Creates (or truncates) the file at `path`; `what` names it in errors.
    pub fn create(path: &Path, what: &'static str) -> io::Result<Self> {
        let file = File::create(path).map_err(|e| with_path(e, &format!("cannot create the {what}"), path))?;
        Ok(Self { file, path: path.to_owned(), what })
    }

    /// Hands one complete `line` (with its line ending) to the OS.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.file.write_all(line).map_err(|e| self.error(e, "write"))
    }

    /// Syncs the file to disk.
    pub fn finish(self) -> io::Result<()> {
        self.file.sync_all().map_err(|e| self.error(e, "sync"))
    }

    /// The open file, to sync it with the video.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, error: io::Error, verb: &str) -> io::Error {
        with_path(error, &format!("cannot {verb} the {}", self.what), &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_reaches_the_file_at_once_and_errors_name_the_file() {
        let path = std::env::temp_dir().join(format!("line-file-{}.txt", std::process::id()));
        let mut file = LineFile::create(&path, "test log").unwrap();
        file.write_line(b"one\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        file.write_line(b"two\n").unwrap();
        file.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
        std::fs::remove_file(&path).unwrap();
        let error = LineFile::create(Path::new("/nonexistent-folder/x.csv"), "frame index").unwrap_err().to_string();
        assert!(error.starts_with("cannot create the frame index /nonexistent-folder/x.csv: "), "{error}");
    }
}
