//! The bounded queue between the event loop and a camera worker, bounded in frames **and in
//! bytes** (a 1080p bgr8 frame is 6 MB: a frame count alone does not bound memory).
//!
//! When a frame does not fit, `OVERFLOW` decides: `drop` (the default) evicts the oldest queued
//! frames, counted, so the event loop never waits and the newest frames are kept; `block` makes
//! the event loop wait for room, which pushes back into dora's input queue (sized by the
//! dataflow's `queue_size`, where dora drops or backpressures per its `queue_policy`). Commands
//! that are not frames (finish, detections, session ends) always get in.

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

/// What happens when a frame does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Evict the oldest queued frames (counted): the recorder never stalls the dataflow.
    DropOldest,
    /// Wait for room: backpressure into dora's input queue.
    Block,
}

impl Overflow {
    /// Parses `OVERFLOW`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "drop" | "drop_oldest" => Some(Self::DropOldest),
            "block" | "backpressure" => Some(Self::Block),
            _ => None,
        }
    }
}

/// How much a queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most frames.
    pub frames: usize,
    /// Most bytes of frames (one frame larger than this still gets in, alone).
    pub bytes: u64,
    /// What happens when a frame does not fit.
    pub overflow: Overflow,
}

/// Something a queue carries: frames count against the limits, other commands do not.
pub trait Queued {
    /// The frame's payload size, or `None` for a command that is not a frame.
    fn frame_bytes(&self) -> Option<u64>;
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    frames: usize,
    bytes: u64,
    closed: bool,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The event loop's end.
#[derive(Debug)]
pub struct QueueSender<T> {
    shared: Arc<Shared<T>>,
    limits: QueueLimits,
}

/// The worker's end.
#[derive(Debug)]
pub struct QueueReceiver<T> {
    shared: Arc<Shared<T>>,
}

/// Why nothing was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived in time.
    Timeout,
    /// The sender is gone and the queue is empty.
    Closed,
}

/// A queue with these limits.
pub fn queue<T: Queued>(limits: QueueLimits) -> (QueueSender<T>, QueueReceiver<T>) {
    let state = State { items: VecDeque::new(), frames: 0, bytes: 0, closed: false };
    let shared = Arc::new(Shared { state: Mutex::new(state), changed: Condvar::new() });
    (QueueSender { shared: Arc::clone(&shared), limits }, QueueReceiver { shared })
}

impl<T: Queued> QueueSender<T> {
    /// Queues `item`; returns the frames evicted to make room (`DropOldest`), which the caller
    /// counts as dropped. With `Block`, waits until it fits.
    pub fn push(&self, item: T) -> Vec<T> {
        let mut evicted = Vec::new();
        let mut state = self.shared.lock();
        if let Some(bytes) = item.frame_bytes() {
            while state.frames > 0 && !self.fits(&state, bytes) {
                match self.limits.overflow {
                    Overflow::Block => {
                        state = self.shared.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
                    }
                    Overflow::DropOldest => match evict_oldest_frame(&mut state) {
                        Some(old) => evicted.push(old),
                        None => break,
                    },
                }
            }
            state.frames += 1;
            state.bytes += bytes;
        }
        state.items.push_back(item);
        drop(state);
        self.shared.changed.notify_all();
        evicted
    }

    /// Frames and bytes waiting now.
    pub fn depth(&self) -> (usize, u64) {
        let state = self.shared.lock();
        (state.frames, state.bytes)
    }

    fn fits(&self, state: &State<T>, bytes: u64) -> bool {
        state.frames < self.limits.frames && state.bytes + bytes <= self.limits.bytes
    }
}

impl<T> Drop for QueueSender<T> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

fn evict_oldest_frame<T: Queued>(state: &mut State<T>) -> Option<T> {
    let at = state.items.iter().position(|item| item.frame_bytes().is_some())?;
    let old = state.items.remove(at)?;
    state.frames -= 1;
    state.bytes -= old.frame_bytes().unwrap_or(0);
    Some(old)
}

impl<T: Queued> QueueReceiver<T> {
    /// The oldest item, waiting up to `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        let mut state = self.shared.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                if let Some(bytes) = item.frame_bytes() {
                    state.frames -= 1;
                    state.bytes -= bytes;
                }
                drop(state);
                // A blocked sender may fit now.
                self.shared.changed.notify_all();
                return Ok(item);
            }
            if state.closed {
                return Err(RecvError::Closed);
            }
            let (next, waited) =
                self.shared.changed.wait_timeout(state, timeout).unwrap_or_else(PoisonError::into_inner);
            state = next;
            if waited.timed_out() && state.items.is_empty() {
                return Err(if state.closed { RecvError::Closed } else { RecvError::Timeout });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Item {
        Frame(u32, u64),
        Finish,
    }

    impl Queued for Item {
        fn frame_bytes(&self) -> Option<u64> {
            match self {
                Item::Frame(_, bytes) => Some(*bytes),
                Item::Finish => None,
            }
        }
    }

    fn limits(frames: usize, bytes: u64, overflow: Overflow) -> QueueLimits {
        QueueLimits { frames, bytes, overflow }
    }

    const NOW: Duration = Duration::from_millis(1);

    #[test]
    fn a_full_queue_drops_its_oldest_frames_never_commands() {
        let (tx, rx) = queue(limits(2, 1_000, Overflow::DropOldest));
        tx.push(Item::Frame(1, 10));
        tx.push(Item::Finish);
        tx.push(Item::Frame(2, 10));
        assert_eq!(tx.push(Item::Frame(3, 10)), vec![Item::Frame(1, 10)]);
        assert_eq!(rx.recv_timeout(NOW), Ok(Item::Finish), "commands stay");
        assert_eq!(rx.recv_timeout(NOW), Ok(Item::Frame(2, 10)));
        assert_eq!(rx.recv_timeout(NOW), Ok(Item::Frame(3, 10)));
        assert_eq!(rx.recv_timeout(NOW), Err(RecvError::Timeout));
    }

    #[test]
    fn bytes_bound_the_queue_as_well_as_frames() {
        let (tx, rx) = queue(limits(100, 20, Overflow::DropOldest));
        tx.push(Item::Frame(1, 8));
        tx.push(Item::Frame(2, 8));
        assert_eq!(tx.push(Item::Frame(3, 8)), vec![Item::Frame(1, 8)], "24 bytes do not fit in 20");
        assert_eq!(tx.depth(), (2, 16));
        assert!(tx.push(Item::Frame(4, 50)).len() == 2, "a huge frame evicts everything, then gets in alone");
        assert_eq!(rx.recv_timeout(NOW), Ok(Item::Frame(4, 50)));
    }

    #[test]
    fn block_waits_for_the_worker_to_make_room() {
        let (tx, rx) = queue(limits(1, 1_000, Overflow::Block));
        tx.push(Item::Frame(1, 1));
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let first = rx.recv_timeout(Duration::from_secs(1));
            let second = rx.recv_timeout(Duration::from_secs(1));
            (first, second)
        });
        let started = std::time::Instant::now();
        assert!(tx.push(Item::Frame(2, 1)).is_empty(), "nothing dropped");
        assert!(started.elapsed() >= Duration::from_millis(40), "the sender waited");
        let (first, second) = worker.join().unwrap();
        assert_eq!((first, second), (Ok(Item::Frame(1, 1)), Ok(Item::Frame(2, 1))));
    }

    #[test]
    fn a_closed_queue_is_drained_before_it_reports_closed() {
        let (tx, rx) = queue(limits(4, 100, Overflow::DropOldest));
        tx.push(Item::Frame(1, 1));
        drop(tx);
        assert_eq!(rx.recv_timeout(NOW), Ok(Item::Frame(1, 1)));
        assert_eq!(rx.recv_timeout(NOW), Err(RecvError::Closed));
    }

    #[test]
    fn overflow_names_parse() {
        assert_eq!(Overflow::parse("DROP"), Some(Overflow::DropOldest));
        assert_eq!(Overflow::parse("block"), Some(Overflow::Block));
        assert_eq!(Overflow::parse("wait"), None);
    }
}
