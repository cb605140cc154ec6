//! File names: `{session}_{YYYYMMDDTHHMMSS}.{ext}` (UTC), `{session}_{camera}_{...}` with several
//! cameras, never overwriting an existing file.

use std::{
    fs::OpenOptions,
    io,
    path::{Path, PathBuf},
};

/// How many `-N` suffixes to try before giving up on a name.
const MAX_COLLISION_SUFFIX: u32 = 10_000;

/// Replaces every character outside `[A-Za-z0-9_-]` with `_` (empty becomes `_`).
pub fn sanitize(name: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if clean.is_empty() { "_".to_owned() } else { clean }
}

/// The file stem for a recording that started at `started_unix_nanos`.
/// `camera` is `Some` only when the node records more than one camera.
pub fn file_stem(session_id: &str, camera: Option<&str>, started_unix_nanos: u64) -> String {
    let secs = (started_unix_nanos / 1_000_000_000) as i64;
    let stamp = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().format("%Y%m%dT%H%M%S");
    match camera {
        Some(camera) => format!("{}_{}_{stamp}", sanitize(session_id), sanitize(camera)),
        None => format!("{}_{stamp}", sanitize(session_id)),
    }
}

/// Creates `dir/stem.ext`, or `dir/stem-1.ext`, `-2`, ... if taken, and returns the path.
/// Creating the file claims the name atomically, so two recorders never share one.
pub fn claim_path(dir: &Path, stem: &str, extension: &str) -> io::Result<PathBuf> {
    for suffix in 0..=MAX_COLLISION_SUFFIX {
        let name = match suffix {
            0 => format!("{stem}.{extension}"),
            n => format!("{stem}-{n}.{extension}"),
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{MAX_COLLISION_SUFFIX} files named {stem}-N exist")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_become_underscores() {
        assert_eq!(sanitize("run 42/ä.b"), "run_42___b");
        assert_eq!(sanitize("ok_name-1"), "ok_name-1");
        assert_eq!(sanitize(""), "_");
    }

    #[test]
    fn stems_are_utc_and_name_the_camera_only_when_asked() {
        // 2024-01-02T03:04:05Z
        let nanos = 1_704_164_645_000_000_000 + 999_999_999;
        assert_eq!(file_stem("run:1", None, nanos), "run_1_20240102T030405");
        assert_eq!(file_stem("s", Some("cam/left"), nanos), "s_cam_left_20240102T030405");
    }

    #[test]
    fn collisions_get_numbered_suffixes() {
        let dir = std::env::temp_dir().join(format!("naming-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = claim_path(&dir, "s_20240102T030405", "mp4").unwrap();
        let second = claim_path(&dir, "s_20240102T030405", "mp4").unwrap();
        let third = claim_path(&dir, "s_20240102T030405", "mp4").unwrap();
        assert_eq!(first.file_name().unwrap(), "s_20240102T030405.mp4");
        assert_eq!(second.file_name().unwrap(), "s_20240102T030405-1.mp4");
        assert_eq!(third.file_name().unwrap(), "s_20240102T030405-2.mp4");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
