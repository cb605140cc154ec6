//! Per-camera counters and the periodic stats they make: frames in, encoded, dropped, encode
//! rate, bitrate, queue depth. The event loop and the camera workers share one
//! [`CameraCounters`] per camera (atomics, no locks on the frame path); every `STATS_INTERVAL`
//! the [`StatsBook`] turns them into one [`CameraStats`] row per camera, for a log line and the
//! optional `stats` output.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Default `STATS_INTERVAL`, seconds.
pub const DEFAULT_STATS_INTERVAL_SECS: u64 = 10;

/// Counters of one camera, shared by the event loop (in, dropped) and its worker (encoded,
/// bytes).
#[derive(Debug, Default)]
pub struct CameraCounters {
    frames_in: AtomicU64,
    encoded: AtomicU64,
    dropped: AtomicU64,
    bytes: AtomicU64,
}

impl CameraCounters {
    /// A valid frame arrived.
    pub fn frame_in(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames were dropped (queue full, dora's queue, no file).
    pub fn dropped(&self, frames: u64) {
        self.dropped.fetch_add(frames, Ordering::Relaxed);
    }

    /// A frame was encoded into `bytes` of packets.
    pub fn encoded(&self, bytes: u64) {
        self.encoded.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Totals {
        Totals {
            frames_in: self.frames_in.load(Ordering::Relaxed),
            encoded: self.encoded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    frames_in: u64,
    encoded: u64,
    dropped: u64,
    bytes: u64,
}

/// One camera's stats over the last interval (counts are totals since the start of the run).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraStats {
    /// The camera input.
    pub camera: String,
    /// Valid frames received.
    pub frames_in: u64,
    /// Frames encoded.
    pub encoded: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames encoded per second over the interval.
    pub encode_fps: f64,
    /// Encoded bits per second over the interval.
    pub bitrate_bps: f64,
    /// Frames waiting in the worker's queue now.
    pub queue_frames: u64,
    /// Bytes of frames waiting in the worker's queue now.
    pub queue_bytes: u64,
}

/// All cameras' counters and when stats are next due.
#[derive(Debug)]
pub struct StatsBook {
    interval: Duration,
    cameras: BTreeMap<String, Arc<CameraCounters>>,
    last: BTreeMap<String, Totals>,
    last_at: Option<Instant>,
}

impl StatsBook {
    /// Stats every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, cameras: BTreeMap::new(), last: BTreeMap::new(), last_at: None }
    }

    /// The counters of `camera`, created on first use.
    pub fn counters(&mut self, camera: &str) -> Arc<CameraCounters> {
        Arc::clone(self.cameras.entry(camera.to_owned()).or_default())
    }

    /// A row per camera when an interval has passed since the last one (the first call only
    /// starts the clock). `queue_depth` tells a camera's queued frames and bytes now.
    pub fn due(&mut self, now: Instant, queue_depth: impl Fn(&str) -> (u64, u64)) -> Option<Vec<CameraStats>> {
        let Some(last_at) = self.last_at else {
            self.last_at = Some(now);
            return None;
        };
        let elapsed = now.duration_since(last_at);
        if elapsed < self.interval {
            return None;
        }
        self.last_at = Some(now);
        let secs = elapsed.as_secs_f64();
        let rows = self
            .cameras
            .iter()
            .map(|(camera, counters)| {
                let now_totals = counters.snapshot();
                let before = self.last.insert(camera.clone(), now_totals).unwrap_or_default();
                let (queue_frames, queue_bytes) = queue_depth(camera);
                CameraStats {
                    camera: camera.clone(),
                    frames_in: now_totals.frames_in,
                    encoded: now_totals.encoded,
                    dropped: now_totals.dropped,
                    encode_fps: (now_totals.encoded - before.encoded) as f64 / secs,
                    bitrate_bps: (now_totals.bytes - before.bytes) as f64 * 8.0 / secs,
                    queue_frames,
                    queue_bytes,
                }
            })
            .collect();
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_cover_the_interval_and_counts_the_whole_run() {
        let t0 = Instant::now();
        let mut book = StatsBook::new(Duration::from_secs(10));
        let front = book.counters("front");
        assert_eq!(book.due(t0, |_| (0, 0)), None, "the first call starts the clock");
        for _ in 0..150 {
            front.frame_in();
            front.encoded(1_000);
        }
        front.dropped(3);
        assert_eq!(book.due(t0 + Duration::from_secs(5), |_| (0, 0)), None, "not due yet");
        let rows = book.due(t0 + Duration::from_secs(10), |_| (2, 20)).unwrap();
        assert_eq!(rows[0].camera, "front");
        assert_eq!((rows[0].frames_in, rows[0].encoded, rows[0].dropped), (150, 150, 3));
        assert!((rows[0].encode_fps - 15.0).abs() < 1e-9);
        assert!((rows[0].bitrate_bps - 120_000.0).abs() < 1e-6);
        assert_eq!((rows[0].queue_frames, rows[0].queue_bytes), (2, 20), "the queue depth now");
        let rows = book.due(t0 + Duration::from_secs(20), |_| (0, 0)).unwrap();
        assert_eq!((rows[0].encoded, rows[0].encode_fps), (150, 0.0), "nothing encoded in the second interval");
    }
}
