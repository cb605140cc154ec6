//! Getting written video onto the disk: a background thread that `fdatasync`s a file after each
//! completed fragment, so a power cut loses at most about one fragment, without ever blocking the
//! encoder on the disk.
//!
//! The writer only signals ([`FragmentSyncer::fragment_written`]); signals that arrive while a
//! sync runs coalesce into one more sync, and syncs are at least [`MIN_SYNC_INTERVAL`] apart, so a
//! container that grows with every packet (MKV) costs no more than one sync per interval.
//!
//! The video's side files (its frame index, its detections log: [`SideFiles`]) are synced by the
//! same thread in the same rounds, each round side files first, then the video. A frame's index
//! row is handed to the OS before its packet enters the muxer, so every byte of video written
//! before a round started has its rows durable before the video's own sync makes it durable:
//! after a power cut the index has a row for every frame the video still holds. A fragment
//! appended while the side files sync could become durable with the video before its last rows
//! do, so the side files are synced again until the video stopped growing during their sync (at
//! most [`MAX_SIDE_PASSES`] times); what is left is the instant between that check and the
//! video's sync, and the rows of a fragment landing there follow one round later.

use std::{
    fs::File,
    io,
    path::Path,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// Work done on the sync thread after each successful sync, given the file length the sync
/// covered: every byte before it is on disk (the MP4 header's durations, see
/// [`crate::fmp4::LiveDurations`]).
pub type AfterSync = Box<dyn FnMut(u64) + Send>;

/// Shortest time between two syncs of one file.
pub const MIN_SYNC_INTERVAL: Duration = Duration::from_millis(200);
/// Most syncs of the side files in one round (see the module doc).
pub const MAX_SIDE_PASSES: u32 = 3;

/// What the syncer did, for stats and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Completed `fdatasync` calls of the video.
    pub syncs: u64,
    /// Total time spent in them.
    pub busy: Duration,
    /// Longest single sync of the video.
    pub longest: Duration,
    /// Failed syncs (the disk went away, or an I/O error), of the video or a side file.
    pub failures: u64,
    /// Completed `fdatasync` calls of side files (one per side file that grew, per pass).
    pub side_syncs: u64,
    /// Total time spent in them.
    pub side_busy: Duration,
}

/// The side files synced with a video, before it, in every round of its [`FragmentSyncer`]. A
/// cheap handle: clones share the list.
#[derive(Debug, Clone, Default)]
pub struct SideFiles {
    files: Arc<Mutex<Vec<Arc<SideFile>>>>,
}

#[derive(Debug)]
struct SideFile {
    file: File,
    /// Length at its last sync: a side file only grows, so an unchanged length needs no sync.
    synced_len: Mutex<u64>,
}

impl SideFiles {
    /// Makes `file` (at `path`) durable now, its folder entry included, and syncs it with the
    /// video from now on. Call it when the file is created: its first bytes (a header) then
    /// survive a power cut whatever happens next. Blocks on two syncs, once per side file.
    pub fn add(&self, file: &File, path: &Path) -> io::Result<()> {
        file.sync_data()?;
        sync_folder_of(path)?;
        let synced_len = file.metadata()?.len();
        let side = SideFile { file: file.try_clone()?, synced_len: Mutex::new(synced_len) };
        lock(&self.files).push(Arc::new(side));
        Ok(())
    }

    /// Syncs every side file that grew since its last sync; returns (syncs, time, failures).
    fn sync_grown(&self) -> (u64, Duration, u64) {
        let files: Vec<Arc<SideFile>> = lock(&self.files).clone();
        let (mut syncs, mut busy, mut failures) = (0, Duration::ZERO, 0);
        for side in files {
            let Ok(len) = side.file.metadata().map(|m| m.len()) else {
                failures += 1;
                continue;
            };
            if len == *lock(&side.synced_len) {
                continue;
            }
            let started = Instant::now();
            match side.file.sync_data() {
                Ok(()) => {
                    (syncs, busy) = (syncs + 1, busy + started.elapsed());
                    *lock(&side.synced_len) = len;
                }
                Err(_) => failures += 1,
            }
        }
        (syncs, busy, failures)
    }
}

/// Makes the folder entry of `path` durable: syncs the folder that holds it (Unix; elsewhere a
/// no-op). A new or renamed file survives a power cut only once this ran after it.
pub fn sync_folder_of(path: &Path) -> io::Result<()> {
    if cfg!(unix) {
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// The state is plain counters, flags and lengths: still meaningful after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct State {
    pending: bool,
    closing: bool,
    stats: SyncStats,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// Syncs one file, and its side files, in the background; dropped or
/// [`finish`](Self::finish)ed with the file.
#[derive(Debug)]
pub struct FragmentSyncer {
    shared: Arc<Shared>,
    side_files: SideFiles,
    thread: Option<JoinHandle<()>>,
}

impl FragmentSyncer {
    /// Starts a syncer for the file at `path` (opened once more, read-only: `fdatasync` acts on
    /// the file, whichever descriptor asks), running `after_sync` on the sync thread after each
    /// sync.
    pub fn start(path: &Path, after_sync: Option<AfterSync>) -> io::Result<Self> {
        let file = File::open(path)?;
        let shared = Arc::new(Shared::default());
        let side_files = SideFiles::default();
        let (worker, side) = (Arc::clone(&shared), side_files.clone());
        let thread = std::thread::Builder::new()
            .name("fsync".into())
            .spawn(move || sync_loop(&file, &side, &worker, after_sync))?;
        Ok(Self { shared, side_files, thread: Some(thread) })
    }

    /// The list of side files synced with this file: add the index and detections log to it.
    pub fn side_files(&self) -> SideFiles {
        self.side_files.clone()
    }

    /// A fragment is complete in the file: sync it soon.
    pub fn fragment_written(&self) {
        self.shared.lock().pending = true;
        self.shared.wake.notify_one();
    }

    /// Syncs what is still pending, stops the thread and returns what it did.
    pub fn finish(mut self) -> SyncStats {
        self.stop()
    }

    fn stop(&mut self) -> SyncStats {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.lock().stats
    }
}

impl Drop for FragmentSyncer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sync_loop(file: &File, side_files: &SideFiles, shared: &Shared, mut after_sync: Option<AfterSync>) {
    let mut last_sync: Option<Instant> = None;
    loop {
        let mut state = shared.lock();
        while !state.pending && !state.closing {
            state = shared.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        let (pending, closing) = (std::mem::take(&mut state.pending), state.closing);
        drop(state);
        if pending {
            if let Some(wait) = last_sync.and_then(|at| MIN_SYNC_INTERVAL.checked_sub(at.elapsed()))
                && !closing
            {
                std::thread::sleep(wait);
            }
            let side = sync_side_files(file, side_files);
            // Whatever was written before the sync starts is on disk once it returns.
            let covered = file.metadata().map(|m| m.len());
            let started = Instant::now();
            let result = file.sync_data();
            let took = started.elapsed();
            last_sync = Some(Instant::now());
            if let (Ok(()), Ok(covered), Some(after_sync)) = (&result, covered, after_sync.as_mut()) {
                after_sync(covered);
            }
            let mut state = shared.lock();
            side.add_to(&mut state.stats);
            match result {
                Ok(()) => {
                    state.stats.syncs += 1;
                    state.stats.busy += took;
                    state.stats.longest = state.stats.longest.max(took);
                }
                Err(_) => state.stats.failures += 1,
            }
        }
        if closing && !shared.lock().pending {
            return;
        }
    }
}

/// What syncing the side files in one round did.
#[derive(Debug, Default)]
struct SideRound {
    syncs: u64,
    busy: Duration,
    failures: u64,
}

impl SideRound {
    fn add_to(&self, stats: &mut SyncStats) {
        stats.side_syncs += self.syncs;
        stats.side_busy += self.busy;
        stats.failures += self.failures;
    }
}

/// Syncs the side files before `video`, again while the video grew during their sync (see the
/// module doc).
fn sync_side_files(video: &File, side_files: &SideFiles) -> SideRound {
    let video_len = || video.metadata().map(|m| m.len()).ok();
    let mut round = SideRound::default();
    for _ in 0..MAX_SIDE_PASSES {
        let before = video_len();
        let (syncs, busy, failures) = side_files.sync_grown();
        (round.syncs, round.busy, round.failures) = (round.syncs + syncs, round.busy + busy, round.failures + failures);
        if video_len() == before {
            break;
        }
    }
    round
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn temp_file(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("durability-{name}-{}", std::process::id()));
        std::fs::write(&path, b"fragment").unwrap();
        path
    }

    #[test]
    fn each_signal_leads_to_a_sync_and_bursts_coalesce() {
        let path = temp_file("burst");
        let syncer = FragmentSyncer::start(&path, None).unwrap();
        for _ in 0..50 {
            syncer.fragment_written();
        }
        let stats = syncer.finish();
        assert!(stats.syncs >= 1, "{stats:?}");
        assert!(stats.syncs <= 3, "50 signals at once coalesce: {stats:?}");
        assert_eq!(stats.failures, 0);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn signals_spaced_out_each_get_their_sync() {
        let path = temp_file("spaced");
        let syncer = FragmentSyncer::start(&path, None).unwrap();
        for _ in 0..3 {
            syncer.fragment_written();
            std::thread::sleep(MIN_SYNC_INTERVAL + Duration::from_millis(50));
        }
        assert_eq!(syncer.finish().syncs, 3);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn after_sync_learns_what_each_sync_covered() {
        let path = temp_file("covered");
        let (sender, covered) = std::sync::mpsc::channel();
        let syncer = FragmentSyncer::start(&path, Some(Box::new(move |len| sender.send(len).unwrap()))).unwrap();
        syncer.fragment_written();
        std::thread::sleep(MIN_SYNC_INTERVAL + Duration::from_millis(50));
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b" and more").unwrap();
        syncer.fragment_written();
        syncer.finish();
        assert_eq!(covered.try_iter().collect::<Vec<_>>(), [8, 17]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn finishing_without_signals_syncs_nothing() {
        let path = temp_file("idle");
        assert_eq!(FragmentSyncer::start(&path, None).unwrap().finish(), SyncStats::default());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn side_files_are_synced_in_the_rounds_where_they_grew() {
        let path = temp_file("video");
        let side_path = temp_file("index");
        let syncer = FragmentSyncer::start(&path, None).unwrap();
        let mut index = std::fs::OpenOptions::new().append(true).open(&side_path).unwrap();
        syncer.side_files().add(&index, &side_path).unwrap();
        // A round with a new row, then one without.
        index.write_all(b"row\n").unwrap();
        syncer.fragment_written();
        std::thread::sleep(MIN_SYNC_INTERVAL + Duration::from_millis(50));
        syncer.fragment_written();
        let stats = syncer.finish();
        assert_eq!((stats.syncs, stats.side_syncs, stats.failures), (2, 1, 0), "{stats:?}");
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&side_path).unwrap();
    }

    #[test]
    fn adding_a_side_file_in_a_missing_folder_fails() {
        let path = temp_file("orphan");
        let file = File::open(&path).unwrap();
        let error = SideFiles::default().add(&file, Path::new("/nonexistent-folder/x.frames.csv")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        std::fs::remove_file(&path).unwrap();
    }
}
