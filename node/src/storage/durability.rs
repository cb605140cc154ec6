//! Getting written video onto the disk: a background thread that `fdatasync`s a file after each
//! completed fragment, so a power cut loses at most about one fragment, without ever blocking the
//! encoder on the disk.
//!
//! The writer only signals ([`FragmentSyncer::fragment_written`]); signals that arrive while a
//! sync runs coalesce into one more sync, and syncs are at least [`MIN_SYNC_INTERVAL`] apart, so a
//! container that grows with every packet (MKV) costs no more than one sync per interval.

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

/// What the syncer did, for stats and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Completed `fdatasync` calls.
    pub syncs: u64,
    /// Total time spent in them.
    pub busy: Duration,
    /// Longest single sync.
    pub longest: Duration,
    /// Failed syncs (the disk went away, or an I/O error).
    pub failures: u64,
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
        // The state is plain counters and flags: still meaningful after a panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Syncs one file in the background; dropped or [`finish`](Self::finish)ed with the file.
#[derive(Debug)]
pub struct FragmentSyncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FragmentSyncer {
    /// Starts a syncer for the file at `path` (opened once more, read-only: `fdatasync` acts on
    /// the file, whichever descriptor asks).
    pub fn start(path: &Path) -> io::Result<Self> {
        Self::start_with(path, None)
    }

    /// [`start`](Self::start), running `after_sync` on the sync thread after each sync.
    pub fn start_with(path: &Path, after_sync: Option<AfterSync>) -> io::Result<Self> {
        let file = File::open(path)?;
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let thread =
            std::thread::Builder::new().name("fsync".into()).spawn(move || sync_loop(&file, &worker, after_sync))?;
        Ok(Self { shared, thread: Some(thread) })
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

fn sync_loop(file: &File, shared: &Shared, mut after_sync: Option<AfterSync>) {
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
        let syncer = FragmentSyncer::start(&path).unwrap();
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
        let syncer = FragmentSyncer::start(&path).unwrap();
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
        let syncer = FragmentSyncer::start_with(&path, Some(Box::new(move |len| sender.send(len).unwrap()))).unwrap();
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
        assert_eq!(FragmentSyncer::start(&path).unwrap().finish(), SyncStats::default());
        std::fs::remove_file(&path).unwrap();
    }
}
