#!/usr/bin/env bash
# Power-cut benchmark: the suite's power-cut test (tests/powercut.rs) with more trials, printing
# the figures the README quotes.
#
# Each trial mounts an in-memory FUSE file system that keeps only what an fsync/fdatasync covered
# (tests/common/crashfs.rs), records the test-pattern camera at 15 fps 320x240 into it through the
# real `dora run` (every other trial with a detector, its trigger off, so a detections log is
# written too), kills the recorder with SIGKILL 2-5 s after its file appeared, rebuilds the disk
# as the power cut leaves it, and checks it: the video decodes without an error, the index has
# its header and a row for every frame the video holds (with the same camera frame numbers), and
# every frame sent more than 1 s before the cut is kept. Any failed check fails the run.
#
# Printed per trial and in a summary: frames sent / kept, index rows, detection lines, seconds
# lost (min / median / max), index rows beyond the video's frames, syncs per second of recording
# per kind of file (video, index, detections log, manifest, folder).
#
# Needs root (it mounts a file system) and /dev/fuse. About 20 s per trial.
# Usage: scripts/powercut.sh            (30 trials)
#        TRIALS=10 scripts/powercut.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

cargo build --release --locked --quiet --workspace --bins
LOG="$ROOT/target/powercut.log"
if POWERCUT_TRIALS="${TRIALS:-30}" cargo test --release --locked -p e2e --test powercut -- --nocapture \
  a_power_cut_at_a_random_instant >"$LOG" 2>&1; then
  grep -E '^(power cut|[0-9]+ power cuts)' "$LOG"
else
  tail -n 40 "$LOG"
  echo "power-cut trials failed (whole output: $LOG)" >&2
  exit 1
fi
