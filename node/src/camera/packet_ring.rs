//! The recent past of a camera as encoded packets, for pre-roll: a clip can begin before the
//! moment that started it. The ring always starts at a keyframe (a file must), keeps at least
//! `keep` of video before its newest packet (back to the keyframe at or before that point),
//! and never holds more than `max_bytes` (whole GOPs are dropped from the front, never the last).
//! Encoded video is about 1/100 of raw: 10 s of 1080p costs megabytes, not gigabytes.

use std::collections::VecDeque;

/// One packet in the ring with what a file needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct RingEntry<T> {
    /// When its frame was sent (Unix nanoseconds).
    pub time_ns: u64,
    /// Whether a decoder can start here.
    pub key: bool,
    /// Its size in bytes (what the ring's byte bound counts).
    pub bytes: usize,
    /// The packet itself and whatever else the caller keeps with it.
    pub item: T,
}

/// Encoded packets of the recent past, starting at a keyframe.
#[derive(Debug, Clone)]
pub struct PacketRing<T> {
    entries: VecDeque<RingEntry<T>>,
    keep_nanos: u64,
    max_bytes: usize,
    bytes: usize,
}

impl<T> PacketRing<T> {
    /// A ring keeping `keep_nanos` of video (plus the rest of a GOP) within `max_bytes`.
    pub fn new(keep_nanos: u64, max_bytes: usize) -> Self {
        Self { entries: VecDeque::new(), keep_nanos, max_bytes, bytes: 0 }
    }

    /// Adds the newest packet. A ring never starts with a packet a decoder cannot start at, so a
    /// non-key packet into an empty ring is dropped.
    pub fn push(&mut self, entry: RingEntry<T>) {
        if self.entries.is_empty() && !entry.key {
            return;
        }
        self.bytes += entry.bytes;
        self.entries.push_back(entry);
        self.trim();
    }

    /// The packets from the latest keyframe at or before `start_ns` (or from the oldest one, if
    /// every keyframe is later) to the newest.
    pub fn since(&self, start_ns: u64) -> impl Iterator<Item = &RingEntry<T>> {
        let from = self.entries.iter().rposition(|e| e.key && e.time_ns <= start_ns).unwrap_or(0);
        self.entries.iter().skip(from)
    }

    /// Keeps `keep_nanos` of video from now on (the next push trims to it).
    pub fn set_keep_nanos(&mut self, keep_nanos: u64) {
        self.keep_nanos = keep_nanos;
    }

    /// Bytes of encoded video held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Packets held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the ring holds nothing.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything (the encoder that made these packets is gone).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn trim(&mut self) {
        let Some(newest) = self.entries.back().map(|e| e.time_ns) else { return };
        let horizon = newest.saturating_sub(self.keep_nanos);
        // Keep the latest keyframe at or before the horizon: drop whole GOPs before it.
        while let Some(second_key) = self.second_keyframe() {
            let too_old = self.entries[second_key].time_ns <= horizon;
            if !(too_old || self.bytes > self.max_bytes) {
                break;
            }
            for entry in self.entries.drain(..second_key) {
                self.bytes -= entry.bytes;
            }
        }
    }

    /// Index of the keyframe after the one the ring starts with.
    fn second_keyframe(&self) -> Option<usize> {
        self.entries.iter().skip(1).position(|e| e.key).map(|i| i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Packets every 0.1 s with a keyframe every `gop` packets, `bytes` each.
    fn fill(ring: &mut PacketRing<u32>, count: u32, gop: u32, bytes: usize) {
        for n in 0..count {
            ring.push(RingEntry { time_ns: u64::from(n) * S / 10, key: n % gop == 0, bytes, item: n });
        }
    }

    fn items<'a>(entries: impl Iterator<Item = &'a RingEntry<u32>>) -> Vec<u32> {
        entries.map(|e| e.item).collect()
    }

    #[test]
    fn the_ring_keeps_its_horizon_back_to_a_keyframe() {
        let mut ring = PacketRing::new(2 * S, usize::MAX);
        fill(&mut ring, 100, 10, 1);
        // Newest at 9.9 s; horizon 7.9 s; the keyframe at or before it is packet 70 (7.0 s).
        assert_eq!(items(ring.since(0)).first(), Some(&70));
        assert_eq!(ring.len(), 30);
        assert_eq!(ring.bytes(), 30);
    }

    #[test]
    fn a_clip_starts_at_the_keyframe_at_or_before_its_pre_roll() {
        let mut ring = PacketRing::new(5 * S, usize::MAX);
        fill(&mut ring, 100, 10, 1);
        assert_eq!(items(ring.since(8 * S + S / 2)).first(), Some(&80));
        assert_eq!(items(ring.since(9 * S)).first(), Some(&90), "a keyframe exactly at the start");
        assert_eq!(items(ring.since(0)).first(), Some(&40), "before the ring: from its oldest keyframe (4.0 s)");
        assert_eq!(items(ring.since(8 * S)).last(), Some(&99), "up to the newest");
    }

    #[test]
    fn the_byte_bound_drops_whole_gops_but_never_the_last() {
        let mut ring = PacketRing::new(60 * S, 25);
        fill(&mut ring, 100, 10, 1);
        assert!(ring.bytes() <= 25 && ring.bytes() >= 10, "{}", ring.bytes());
        assert!(ring.since(0).next().unwrap().key);
        let mut tiny = PacketRing::new(60 * S, 1);
        fill(&mut tiny, 35, 10, 1);
        assert_eq!(items(tiny.since(0)), (30..35).collect::<Vec<u32>>(), "the current GOP stays");
    }

    #[test]
    fn a_ring_never_starts_without_a_keyframe() {
        let mut ring = PacketRing::new(S, usize::MAX);
        ring.push(RingEntry { time_ns: 0, key: false, bytes: 5, item: 1 });
        assert!(ring.is_empty());
        ring.push(RingEntry { time_ns: 1, key: true, bytes: 5, item: 2 });
        ring.clear();
        assert_eq!((ring.len(), ring.bytes()), (0, 0));
    }
}
