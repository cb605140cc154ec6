//! The frame index beside each video: `NAME.frames.csv` next to `NAME.mp4`, one row per frame in
//! the video, in order.
//!
//! Columns: `frame` (0-based position in the video), `pts` (seconds in the file, as `ffprobe`
//! shows it, 6 decimals), `time_ns` (the frame's dora timestamp: UTC nanoseconds since the Unix
//! epoch), then one column per identifying metadata key of the frame (see [`identifying_keys`]).
//! Fields are quoted RFC 4180 style, so any metadata value reads back unchanged with
//! `pandas.read_csv` or any CSV reader; lines end in `\n`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    io,
    path::{Path, PathBuf},
};

use super::line_file::LineFile;

/// What replaces the video's extension: `a.mp4` -> `a.frames.csv`.
pub const INDEX_EXTENSION: &str = "frames.csv";
/// The columns every index starts with, in order.
pub const FIXED_COLUMNS: [&str; 3] = ["frame", "pts", "time_ns"];
/// Metadata keys that describe the pixels, not which frame it is: never index columns.
pub const FORMAT_KEYS: [&str; 4] = ["encoding", "width", "height", "primitive"];
/// dora's own keys that travel with every message (tracing context, queue directive): never
/// index columns.
pub const DORA_KEYS: [&str; 2] = ["open_telemetry_context", "flush"];
/// Prefix of dora's reserved and transport keys (`__dora_*`, `_framing`, `_schema_hash`,
/// `_wire_size`): keys starting with it are never index columns.
pub const DORA_KEY_PREFIX: &str = "_";
/// Put before a metadata key whose name is already taken in the header (`frame` becomes
/// `metadata.frame`), so every column name is unique.
pub const CLASH_PREFIX: &str = "metadata.";
/// Decimals of the `pts` column.
const PTS_DECIMALS: usize = 6;

/// The index of `video`: the same folder and stem, extension `frames.csv`.
pub fn index_path(video: &Path) -> PathBuf {
    video.with_extension(INDEX_EXTENSION)
}

/// Which metadata keys become index columns, sorted and without duplicates.
///
/// Every key is kept except: the frame format keys ([`FORMAT_KEYS`]: `encoding`, `width`,
/// `height`, `primitive`), dora's keys ([`DORA_KEYS`]: `open_telemetry_context`, `flush`, and
/// every key starting with `_`, such as `__dora_startup_marker` or `_framing`), and empty or
/// all-whitespace keys. So `frame_id`, `episode_index`, `frame_index`, `seq` or `session_id`
/// become columns.
pub fn identifying_keys<'a>(metadata_keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let kept: BTreeSet<&str> = metadata_keys.filter(|key| is_identifying(key)).collect();
    kept.into_iter().map(str::to_owned).collect()
}

/// Whether a metadata key says which frame this is (see [`identifying_keys`]).
fn is_identifying(key: &str) -> bool {
    !key.trim().is_empty()
        && !key.starts_with(DORA_KEY_PREFIX)
        && !FORMAT_KEYS.contains(&key)
        && !DORA_KEYS.contains(&key)
}

/// A frame index being written: each row handed to the OS as it is pushed, synced on [`finish`](Self::finish)
/// (and with the video's fragments once added to its [`SideFiles`](crate::storage::durability::SideFiles)).
#[derive(Debug)]
pub struct FrameIndex {
    out: LineFile,
    /// Metadata keys of the extra columns, in header order.
    keys: Vec<String>,
    rows: u64,
    /// The row being built, reused between rows.
    line: String,
}

impl FrameIndex {
    /// Creates (or truncates) the index at `path` and writes its header, so the file is readable
    /// at once.
    ///
    /// `extra_columns`: metadata keys taken from the first frame, in a stable order (such as
    /// [`identifying_keys`]'s). Later frames fill what they have (an empty cell when a key is
    /// missing); keys not in the header are ignored. A repeated key is kept once; a key whose
    /// name is taken (`frame`, `pts`, `time_ns`) is headed `metadata.KEY`.
    pub fn create(path: &Path, extra_columns: Vec<String>) -> io::Result<Self> {
        let out = LineFile::create(path, "frame index")?;
        let mut index = Self { out, keys: unique_keys(extra_columns), rows: 0, line: String::new() };
        index.write_header()?;
        Ok(index)
    }

    /// Writes the row of the next frame: its `pts_secs` in the file (a non-finite value leaves
    /// the cell empty), its dora timestamp `time_ns`, and its metadata values `extra`.
    pub fn push(&mut self, pts_secs: f64, time_ns: u64, extra: &BTreeMap<String, String>) -> io::Result<()> {
        self.line.clear();
        let _ = write!(self.line, "{},", self.rows);
        if pts_secs.is_finite() {
            let _ = write!(self.line, "{pts_secs:.PTS_DECIMALS$}");
        }
        let _ = write!(self.line, ",{time_ns}");
        for key in &self.keys {
            self.line.push(',');
            push_field(&mut self.line, extra.get(key).map_or("", String::as_str));
        }
        self.line.push('\n');
        self.write_line()?;
        self.rows += 1;
        Ok(())
    }

    /// Syncs the index to disk and returns how many frame rows it holds.
    pub fn finish(self) -> io::Result<u64> {
        self.out.finish()?;
        Ok(self.rows)
    }

    /// Frame rows pushed so far.
    #[cfg(test)]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The file, to sync it with the video.
    pub fn side_file(&self) -> &LineFile {
        &self.out
    }

    fn write_header(&mut self) -> io::Result<()> {
        self.line.clear();
        self.line.push_str(&FIXED_COLUMNS.join(","));
        let mut taken: BTreeSet<String> = FIXED_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        for key in &self.keys {
            let name = header_name(key, &taken);
            self.line.push(',');
            push_field(&mut self.line, &name);
            taken.insert(name);
        }
        self.line.push('\n');
        self.write_line()
    }

    fn write_line(&mut self) -> io::Result<()> {
        self.out.write_line(self.line.as_bytes())
    }
}

/// `keys` without repeats, first occurrence kept.
fn unique_keys(keys: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    keys.into_iter().filter(|key| seen.insert(key.clone())).collect()
}

/// The header cell of metadata `key`: the key itself, prefixed until no other column has it.
fn header_name(key: &str, taken: &BTreeSet<String>) -> String {
    let mut name = key.to_owned();
    while taken.contains(&name) {
        name.insert_str(0, CLASH_PREFIX);
    }
    name
}

/// Appends `value` as one CSV field, quoted when it holds a separator, quote, line break, NUL or
/// edge whitespace (quotes inside doubled), as RFC 4180 says.
fn push_field(line: &mut String, value: &str) {
    if !needs_quotes(value) {
        line.push_str(value);
        return;
    }
    line.push('"');
    for c in value.chars() {
        if c == '"' {
            line.push('"');
        }
        line.push(c);
    }
    line.push('"');
}

fn needs_quotes(value: &str) -> bool {
    let edge_space = value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace);
    edge_space || value.contains([',', '"', '\n', '\r', '\0'])
}

/// One row of a frame index, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    /// 0-based position of the frame in the video.
    pub frame: u64,
    /// Seconds in the file; `None` when the cell is empty.
    pub pts: Option<f64>,
    /// The frame's dora timestamp (UTC ns).
    pub time_ns: u64,
    /// Identifying metadata, by key (header names with their [`CLASH_PREFIX`] removed); empty
    /// cells are left out.
    pub ids: BTreeMap<String, String>,
}

/// A frame index read back: its rows in file order, and how many lines could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexRows {
    /// Metadata keys of the extra columns, in header order.
    pub keys: Vec<String>,
    /// The rows that parsed.
    pub rows: Vec<IndexRow>,
    /// Records skipped: wrong field count or numbers that do not parse (the last one cut short
    /// by a crash, typically).
    pub skipped: u64,
}

/// Reads the index at `path`. A record without its line end (a write cut short) is skipped and
/// counted; so is a record whose `frame` or `time_ns` does not parse. A header that does not
/// start with [`FIXED_COLUMNS`] is an error.
pub fn read_index(path: &Path) -> io::Result<IndexRows> {
    let text = std::fs::read_to_string(path).map_err(|e| super::with_path(e, "cannot read the frame index", path))?;
    parse_index(&text).map_err(|message| {
        io::Error::new(io::ErrorKind::InvalidData, format!("frame index {}: {message}", path.display()))
    })
}

/// Parses the text of a frame index (see [`read_index`]).
pub fn parse_index(text: &str) -> Result<IndexRows, String> {
    let (records, cut_short) = parse_records(text);
    let mut records = records.into_iter();
    let header = records.next().ok_or("no header line")?;
    if header.len() < FIXED_COLUMNS.len() || header[..FIXED_COLUMNS.len()] != FIXED_COLUMNS {
        return Err(format!("the header {header:?} does not start with {}", FIXED_COLUMNS.join(",")));
    }
    let keys = column_keys(&header[FIXED_COLUMNS.len()..]);
    let mut rows = IndexRows { keys, rows: Vec::new(), skipped: u64::from(cut_short) };
    for record in records {
        match parse_row(&record, &rows.keys) {
            Some(row) => rows.rows.push(row),
            None => rows.skipped += 1,
        }
    }
    Ok(rows)
}

/// The metadata keys of the extra header cells: each cell with its clash prefixes removed down
/// to the key the writer was given (the writer prefixes a key while its name is taken).
fn column_keys(cells: &[String]) -> Vec<String> {
    let mut taken: BTreeSet<String> = FIXED_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    let mut keys = Vec::new();
    for cell in cells {
        let mut key = cell.as_str();
        while let Some(shorter) = key.strip_prefix(CLASH_PREFIX) {
            if !taken.contains(shorter) {
                break;
            }
            key = shorter;
        }
        taken.insert(cell.clone());
        keys.push(key.to_owned());
    }
    keys
}

fn parse_row(record: &[String], keys: &[String]) -> Option<IndexRow> {
    if record.len() != FIXED_COLUMNS.len() + keys.len() {
        return None;
    }
    let pts = match record[1].as_str() {
        "" => None,
        cell => Some(cell.parse().ok()?),
    };
    let ids = keys
        .iter()
        .zip(&record[FIXED_COLUMNS.len()..])
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Some(IndexRow { frame: record[0].parse().ok()?, pts, time_ns: record[2].parse().ok()?, ids })
}

/// RFC 4180 records of `text` (quotes doubled inside quoted fields, `\n` or `\r\n` ending a
/// record outside quotes), and whether a last record without its line end was dropped.
fn parse_records(text: &str) -> (Vec<Vec<String>>, bool) {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    let cut_short = !record.is_empty() || !field.is_empty() || quoted;
    (records, cut_short)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("index-{name}-{}.frames.csv", std::process::id()))
    }

    fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// A strict RFC 4180 reader: records of fields, quotes doubled inside quoted fields, `\n` or
    /// `\r\n` ending a record outside quotes. Panics on malformed input (a test failure).
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => {
                    quoted = false;
                    assert!(matches!(chars.peek(), None | Some(',' | '\n' | '\r')), "text after a closing quote");
                }
                (true, c) => field.push(c),
                (false, '"') => {
                    assert!(field.is_empty(), "quote inside an unquoted field");
                    quoted = true;
                }
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\r') => assert_eq!(chars.next(), Some('\n'), "bare CR outside quotes"),
                (false, '\n') => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, c) => field.push(c),
            }
        }
        assert!(!quoted, "unterminated quote");
        assert!(record.is_empty() && field.is_empty(), "last record without a line end");
        records
    }

    fn read_back(path: &Path) -> Vec<Vec<String>> {
        parse_csv(&std::fs::read_to_string(path).unwrap())
    }

    #[test]
    fn index_sits_beside_the_video_with_the_same_stem() {
        assert_eq!(
            index_path(Path::new("/data/run_20240102T030405.mp4")),
            Path::new("/data/run_20240102T030405.frames.csv")
        );
        assert_eq!(index_path(Path::new("a.b.mkv")), Path::new("a.b.frames.csv"));
        assert_eq!(index_path(Path::new("noext")), Path::new("noext.frames.csv"));
    }

    #[test]
    fn index_path_of_an_empty_path_does_not_panic() {
        let _ = index_path(Path::new(""));
        let _ = index_path(Path::new("/"));
        let _ = index_path(Path::new(".."));
    }

    #[test]
    fn identifying_keys_drop_format_and_dora_keys_and_sort_the_rest() {
        let keys = [
            "width",
            "frame_index",
            "encoding",
            "height",
            "primitive",
            "open_telemetry_context",
            "__dora_startup_marker",
            "_framing",
            "flush",
            "episode_index",
            "frame_id",
            "",
            "  ",
            "frame_id",
        ];
        assert_eq!(identifying_keys(keys.into_iter()), ["episode_index", "frame_id", "frame_index"]);
    }

    #[test]
    fn identifying_keys_keep_ids_that_dora_streams_also_use() {
        assert_eq!(identifying_keys(["seq", "session_id"].into_iter()), ["seq", "session_id"]);
    }

    #[test]
    fn rows_hold_frame_number_pts_with_six_decimals_time_and_metadata() {
        let path = temp_path("rows");
        let mut index = FrameIndex::create(&path, vec!["episode_index".into(), "frame_id".into()]).unwrap();
        index.push(0.0, 1_704_164_645_000_000_000, &metadata(&[("episode_index", "3"), ("frame_id", "a")])).unwrap();
        index.push(1.0 / 30.0, 1_704_164_645_033_333_333, &metadata(&[("episode_index", "3")])).unwrap();
        assert_eq!(index.rows(), 2);
        assert_eq!(index.finish().unwrap(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "frame,pts,time_ns,episode_index,frame_id\n\
             0,0.000000,1704164645000000000,3,a\n\
             1,0.033333,1704164645033333333,3,\n"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn keys_outside_the_header_are_ignored() {
        let path = temp_path("ignored");
        let mut index = FrameIndex::create(&path, vec!["frame_id".into()]).unwrap();
        index.push(0.0, 1, &metadata(&[("frame_id", "7"), ("late_key", "x")])).unwrap();
        index.finish().unwrap();
        assert_eq!(read_back(&path), [vec!["frame", "pts", "time_ns", "frame_id"], vec!["0", "0.000000", "1", "7"]]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn header_is_on_disk_as_soon_as_the_index_is_created() {
        let path = temp_path("header");
        let index = FrameIndex::create(&path, Vec::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "frame,pts,time_ns\n");
        assert_eq!(index.finish().unwrap(), 0);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn each_row_reaches_the_file_when_pushed() {
        let path = temp_path("pushed");
        let mut index = FrameIndex::create(&path, Vec::new()).unwrap();
        index.push(0.5, 9, &BTreeMap::new()).unwrap();
        assert_eq!(read_back(&path).len(), 2);
        drop(index);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn any_metadata_value_reads_back_unchanged_in_a_rectangular_table() {
        let path = temp_path("quoting");
        let values = ["a,b", "say \"hi\"", "two\nlines", "cr\r\nlf", "nul\0byte", " padded ", "\"", "", "ä→🎥", "x"];
        let keys: Vec<String> = (0..values.len()).map(|i| format!("k{i}")).collect();
        let mut index = FrameIndex::create(&path, keys.clone()).unwrap();
        let row: BTreeMap<String, String> = keys.iter().cloned().zip(values.iter().map(|v| (*v).to_owned())).collect();
        index.push(2.0, 5, &row).unwrap();
        index.push(f64::NAN, 6, &row).unwrap();
        index.finish().unwrap();
        let records = read_back(&path);
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r.len() == 3 + values.len()), "every record has every column");
        assert_eq!(records[0][3..], keys[..]);
        assert_eq!(records[1][3..], values.map(str::to_owned)[..]);
        assert_eq!(records[2][1], "", "a non-finite pts is an empty cell");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn header_names_are_unique_even_when_keys_clash_with_fixed_columns() {
        let path = temp_path("clash");
        let keys = vec!["frame".into(), "metadata.frame".into(), "pts".into(), "pts".into(), "a,b".into()];
        let mut index = FrameIndex::create(&path, keys).unwrap();
        index.push(0.0, 1, &metadata(&[("frame", "f"), ("metadata.frame", "m"), ("pts", "p"), ("a,b", "c")])).unwrap();
        index.finish().unwrap();
        let records = read_back(&path);
        let header = &records[0];
        assert_eq!(
            header,
            &["frame", "pts", "time_ns", "metadata.frame", "metadata.metadata.frame", "metadata.pts", "a,b"]
        );
        let unique: BTreeSet<&String> = header.iter().collect();
        assert_eq!(unique.len(), header.len());
        assert_eq!(records[1][3..], ["f", "m", "p", "c"]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn creating_an_index_in_a_missing_folder_is_an_error_naming_the_path() {
        let path = std::env::temp_dir().join("index-no-such-folder").join("a.frames.csv");
        let error = FrameIndex::create(&path, Vec::new()).unwrap_err();
        assert!(error.to_string().contains("index-no-such-folder"), "{error}");
    }

    #[test]
    fn quoting_leaves_plain_values_bare() {
        let mut line = String::new();
        push_field(&mut line, "episode_000042");
        assert_eq!(line, "episode_000042");
    }
    #[test]
    fn rows_read_back_as_written_with_their_metadata_and_clashing_names() {
        let path = temp_path("read-back");
        let keys = vec!["frame".into(), "episode_index".into(), "note".into()];
        let mut index = FrameIndex::create(&path, keys).unwrap();
        index.push(0.0, 10, &metadata(&[("frame", "f0"), ("episode_index", "3"), ("note", "a,\"b\"\nc")])).unwrap();
        index.push(f64::NAN, 20, &metadata(&[("episode_index", "3")])).unwrap();
        index.finish().unwrap();
        let read = read_index(&path).unwrap();
        assert_eq!(read.keys, ["frame", "episode_index", "note"]);
        assert_eq!(read.skipped, 0);
        assert_eq!(read.rows.len(), 2);
        assert_eq!((read.rows[0].frame, read.rows[0].pts, read.rows[0].time_ns), (0, Some(0.0), 10));
        assert_eq!(read.rows[0].ids, metadata(&[("frame", "f0"), ("episode_index", "3"), ("note", "a,\"b\"\nc")]));
        assert_eq!((read.rows[1].frame, read.rows[1].pts, read.rows[1].time_ns), (1, None, 20));
        assert_eq!(read.rows[1].ids, metadata(&[("episode_index", "3")]), "empty cells are left out");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_row_cut_short_by_a_crash_is_skipped_and_counted() {
        let read = parse_index("frame,pts,time_ns,frame_index\n0,0.000000,5,0\n1,0.0333").unwrap();
        assert_eq!((read.rows.len(), read.skipped), (1, 1));
        let read = parse_index("frame,pts,time_ns\n0,0.0,x\n1,0.1,7\n").unwrap();
        assert_eq!((read.rows.len(), read.rows[0].time_ns, read.skipped), (1, 7, 1), "a bad number");
    }

    #[test]
    fn an_index_without_the_fixed_columns_is_an_error() {
        assert!(parse_index("").is_err());
        assert!(parse_index("a,b,c\n1,2,3\n").unwrap_err().contains("does not start with"));
        let error = read_index(Path::new("/nonexistent/x.frames.csv")).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/x.frames.csv"), "{error}");
    }
}
