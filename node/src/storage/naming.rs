//! File names: `{session}_{YYYYMMDDTHHMMSS}.{ext}` (UTC), `{session}_{camera}_{...}` with several
//! cameras (claimed without overwriting anything by [`super::claim`]), and the metadata every
//! video carries.
//!
//! Session ids and camera names come from other nodes and may hold anything: NUL bytes, `/`,
//! `..`, 100 kB of text. A name part keeps only `[A-Za-z0-9_-]` and at most
//! [`MAX_NAME_PART_BYTES`]; a part that had to be cut ends in a hash of the full text, so two long
//! ids that share a prefix never share a file name. The full id lives in the `recording` event and
//! the file's metadata.

use super::ownership::{OWNER_COMMENT_TAG, OWNER_MARK, OWNER_TAG};

/// Longest name part (session id or camera) kept in a file name, hash suffix included. Two parts,
/// the timestamp, a collision suffix and the extension stay well inside the usual 255-byte limit.
pub const MAX_NAME_PART_BYTES: usize = 100;
/// Hex digits of the hash that ends a shortened name part.
const HASH_HEX_DIGITS: usize = 12;
/// Longest thread name Linux shows (15 bytes); longer names are cut by the OS anyway.
const MAX_THREAD_NAME_BYTES: usize = 15;

/// Replaces every character outside `[A-Za-z0-9_-]` with `_` (empty becomes `_`), and shortens
/// the result to [`MAX_NAME_PART_BYTES`] with a hash of the original text.
pub fn sanitize(name: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if clean.is_empty() {
        return "_".to_owned();
    }
    if clean.len() <= MAX_NAME_PART_BYTES {
        return clean;
    }
    // `clean` is ASCII, so any byte index is a character boundary.
    let keep = MAX_NAME_PART_BYTES - HASH_HEX_DIGITS - 1;
    format!("{}-{:0width$x}", &clean[..keep], fnv1a64(name.as_bytes()) >> 16, width = HASH_HEX_DIGITS)
}

/// FNV-1a: a stable hash (unlike `DefaultHasher`, the same in every Rust release), so a session
/// id maps to the same file name in every run.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A thread name for a camera worker: printable ASCII only (the OS refuses NUL bytes) and short.
pub fn thread_name(camera: &str) -> String {
    let clean = sanitize(camera);
    let name = format!("enc-{clean}");
    name.chars().take(MAX_THREAD_NAME_BYTES).collect()
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

/// Metadata written into each file's header, before its first frame: when its first frame was
/// sent, the full session id and camera (file names only carry a shortened, sanitized form), and
/// the mark that shows the file is the recorder's own (`recorder`, and `comment` for AVI, whose
/// header keeps only standard fields; see [`super::ownership`]).
/// `session_offset` is where the file's time 0 lies on the session's timeline, in seconds: the
/// rule that lines up the cameras of a session (see the README).
pub fn file_tags(
    session_id: &str,
    camera: &str,
    first_frame_unix_nanos: u64,
    session_start_unix_nanos: u64,
) -> Vec<(&'static str, String)> {
    let offset_nanos = i128::from(first_frame_unix_nanos) - i128::from(session_start_unix_nanos);
    vec![
        ("creation_time", utc(first_frame_unix_nanos)),
        ("session_id", session_id.to_owned()),
        ("camera", camera.to_owned()),
        ("session_start", utc(session_start_unix_nanos)),
        ("session_offset", format!("{:.9}", offset_nanos as f64 / 1e9)),
        (OWNER_TAG, OWNER_MARK.to_owned()),
        (OWNER_COMMENT_TAG, OWNER_MARK.to_owned()),
    ]
}

/// Unix nanoseconds as ISO 8601 UTC with microseconds.
fn utc(unix_nanos: u64) -> String {
    let seconds = (unix_nanos / 1_000_000_000) as i64;
    let nanos = (unix_nanos % 1_000_000_000) as u32;
    let at = chrono::DateTime::from_timestamp(seconds, nanos).unwrap_or_default();
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_become_underscores() {
        assert_eq!(sanitize("run 42/ä.b"), "run_42___b");
        assert_eq!(sanitize("ok_name-1"), "ok_name-1");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("x\0y"), "x_y");
        assert_eq!(sanitize("../../etc/passwd"), "______etc_passwd");
    }

    #[test]
    fn long_ids_are_cut_with_a_hash_that_tells_them_apart() {
        let a = format!("{}a", "x".repeat(5000));
        let b = format!("{}b", "x".repeat(5000));
        let (short_a, short_b) = (sanitize(&a), sanitize(&b));
        assert_eq!(short_a.len(), MAX_NAME_PART_BYTES);
        assert_ne!(short_a, short_b, "ids that differ only at the end get different names");
        assert_eq!(short_a, sanitize(&a), "the same id always gets the same name");
        assert_eq!(sanitize(&"x".repeat(MAX_NAME_PART_BYTES)), "x".repeat(MAX_NAME_PART_BYTES), "100 bytes fit");
        let unicode = "é".repeat(3000);
        assert!(sanitize(&unicode).len() <= MAX_NAME_PART_BYTES);
    }

    #[test]
    fn thread_names_are_short_and_free_of_nul() {
        let name = thread_name("cam\0era/with a very long name");
        assert!(name.len() <= MAX_THREAD_NAME_BYTES && !name.contains('\0'), "{name}");
        assert!(std::ffi::CString::new(name).is_ok());
    }

    #[test]
    fn file_tags_carry_utc_creation_time_the_full_ids_and_the_owner_mark() {
        let tags = file_tags("run\0/ä", "front", 1_704_164_645_123_456_789, 1_704_164_644_000_000_000);
        assert_eq!(tags[0], ("creation_time", "2024-01-02T03:04:05.123456Z".to_owned()));
        assert_eq!(tags[1], ("session_id", "run\0/ä".to_owned()));
        assert_eq!(tags[2], ("camera", "front".to_owned()));
        assert_eq!(tags[3], ("session_start", "2024-01-02T03:04:04.000000Z".to_owned()));
        assert_eq!(tags[4], ("session_offset", "1.123456789".to_owned()));
        assert_eq!(tags[5], ("recorder", "dora-video-recorder".to_owned()));
        assert_eq!(tags[6], ("comment", "dora-video-recorder".to_owned()));
    }

    #[test]
    fn stems_are_utc_and_name_the_camera_only_when_asked() {
        // 2024-01-02T03:04:05Z
        let nanos = 1_704_164_645_000_000_000 + 999_999_999;
        assert_eq!(file_stem("run:1", None, nanos), "run_1_20240102T030405");
        assert_eq!(file_stem("s", Some("cam/left"), nanos), "s_cam_left_20240102T030405");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Ids as hostile senders write them: any Unicode, NUL, separators, dot-dot, absolute paths.
    fn hostile_id() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            prop::collection::vec(prop::sample::select(vec!["/", "..", "\0", ".", "~", "\\", "é", "a", " "]), 0..400)
                .prop_map(|parts| parts.concat()),
            Just("/etc/passwd".to_owned()),
            Just("x".repeat(100_000)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_name_lies_inside_storage_and_the_filesystem_accepts_it(
            session in hostile_id(),
            camera in prop::option::of(hostile_id()),
            started in any::<u64>(),
        ) {
            let stem = file_stem(&session, camera.as_deref(), started);
            prop_assert!(stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{}", stem);
            prop_assert!(stem.len() <= 2 * MAX_NAME_PART_BYTES + 20);
            let dir = std::env::temp_dir().join(format!("naming-props-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = crate::storage::claim::claim_path(&dir, &stem, "mp4").unwrap();
            prop_assert_eq!(path.parent(), Some(dir.as_path()));
            std::fs::remove_file(&path).unwrap();
            prop_assert!(std::ffi::CString::new(thread_name(&session)).is_ok());
        }
    }
}
