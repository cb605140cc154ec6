#!/usr/bin/env bash
# File size per codec for the same 10 s of camera video, recorded through the real dataflow:
# for each CODEC it runs dataflows/record.yml under the dora CLI (the test-pattern camera sends
# 150 frames of 640x480 bgr8 at 15 fps, then exits, which ends the run), checks the file with
# ffprobe, and prints a markdown table: codec asked, encoder used, frames, duration, bytes, kB/s
# and the size against the raw frames. A codec that cannot run here (NVENC without an NVIDIA GPU)
# gets "not available" with the first error line of its run.
# Usage: scripts/codec-sizes.sh [CODEC ...]    (default: libx264 libx265 h264_nvenc hevc_nvenc auto)
#        DORA=/path/to/dora scripts/codec-sizes.sh   (else `dora` on PATH, else scripts/setup.sh installs it)
# The table goes to stdout, progress and logs to stderr; KEEP=1 keeps the files and logs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${DORA:-}" ] && ! command -v dora >/dev/null 2>&1; then
  source "$ROOT/scripts/setup.sh"
fi
DORA="${DORA:-dora}"
cd "$ROOT"

FRAMES=150
FPS=15
WIDTH=640
HEIGHT=480
RAW_BYTES=$((WIDTH * HEIGHT * 3 * FRAMES))
CODECS=("$@")
[ "${#CODECS[@]}" -gt 0 ] || CODECS=(libx264 libx265 h264_nvenc hevc_nvenc auto)

WORK="$(mktemp -d)"
if [ "${KEEP:-0}" = 1 ]; then
  echo "keeping files and logs in $WORK" >&2
else
  trap 'rm -rf "$WORK"' EXIT
fi

say() { printf '[codec-sizes] %s\n' "$*" >&2; }

# Records one run into $WORK/$codec; its whole output goes to $WORK/$codec.log.
record() {
  local codec="$1"
  say "recording ${FRAMES} frames with CODEC=$codec"
  "$DORA" run dataflows/record.yml --stop-after 20s \
    --env "CODEC=$codec" --env "STORAGE=$WORK/$codec" --env "MAX_FRAMES=$FRAMES" --env "FPS=$FPS" \
    >"$WORK/$codec.log" 2>&1 || say "CODEC=$codec: dora run exited with $? (its first error goes into the table)"
}

# The first error a run reported: the node's own `Error:` line if there is one, else any line
# that mentions an error; colour codes, clock and stream prefixes removed, cut at the first ";".
first_error() {
  local clean
  clean="$(sed -E 's/\x1b\[[0-9;]*m//g; s/^[0-9:]+ +//; s/^(stdout|stderr) +//' "$1")"
  { grep -m1 -E '^[a-z0-9_-]+: Error: ' <<<"$clean" || grep -m1 -iE 'error|failed' <<<"$clean" || true; } \
    | cut -d';' -f1 | cut -c1-240 | sed 's/|/\\|/g'
}

# One table row for one codec.
row() {
  local codec="$1" file
  file="$(find "$WORK/$codec" -maxdepth 1 -type f 2>/dev/null | sort | head -n1)"
  if [ -z "$file" ]; then
    local reason
    reason="$(first_error "$WORK/$codec.log")"
    printf '| %s | not available: %s | - | - | - | - | - |\n' "$codec" "${reason:-no file and no error in the log}"
    return
  fi
  local probe encoder frames duration bytes
  probe="$(ffprobe -v error -select_streams v:0 -count_frames \
    -show_entries stream=codec_name,nb_read_frames:format=duration -of default=noprint_wrappers=1 "$file")"
  encoder="$(sed -n 's/^codec_name=//p' <<<"$probe")"
  # The node names the FFmpeg encoder it opened in its "session started" line.
  local opened
  opened="$(sed -e 's/\x1b\[[0-9;]*m//g' "$WORK/$codec.log" | grep -m1 -oE 'encoder="[a-z0-9_]+"' | cut -d'"' -f2 || true)"
  [ -z "$opened" ] || encoder="$encoder ($opened)"
  frames="$(sed -n 's/^nb_read_frames=//p' <<<"$probe")"
  duration="$(sed -n 's/^duration=//p' <<<"$probe")"
  bytes="$(stat -c %s "$file")"
  awk -v c="$codec" -v e="$encoder" -v f="$frames" -v d="$duration" -v b="$bytes" -v raw="$RAW_BYTES" 'BEGIN {
    printf "| %s | %s | %s | %.2f s | %d | %.1f | %.4f (1/%.0f) |\n", c, e, f, d, b, b / d / 1000, b / raw, raw / b
  }'
}

for codec in "${CODECS[@]}"; do
  record "$codec"
done

echo "Same input for every codec: ${FRAMES} frames of ${WIDTH}x${HEIGHT} bgr8 at ${FPS} fps (raw $RAW_BYTES bytes); node defaults otherwise (preset veryfast, crf 23 / NVENC cq 23, GOP 2 s)."
echo
echo "| CODEC | encoder used | frames | duration | bytes | kB/s | size / raw |"
echo "|---|---|---:|---:|---:|---:|---:|"
for codec in "${CODECS[@]}"; do
  row "$codec"
done
