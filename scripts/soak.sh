#!/usr/bin/env bash
# Soak benchmark: records 1920x1080 bgr8 at 30 fps through the real `dora run` for 10 minutes at the
# recorder's default settings, and prints whether it kept every frame and how its memory behaved.
#
# The camera is `dora-test-pattern` with LOOP_FRAMES=60: it draws 2 s of frames at startup and sends
# them over and over (drawing each 1080p frame live costs about 32 ms of CPU, too much beside an
# encoder on 2 cores). Every frame sent is logged (SEND_LOG); the camera exits after
# MINUTES x 60 x FPS frames, the recorder finalizes its file and the dataflow ends.
#
# While it runs, the recorder's memory is read from /proc/PID/status every SAMPLE_SECS seconds:
# VmRSS (what the goal counts) and its parts, RssAnon (the recorder's own heap: queue, encoder,
# muxer) and RssShmem (dora's shared-memory frames mapped into the recorder). Printed at the end:
#   - frames sent, frames in the frame index, packets in the video, and the recorder's `dropped=`;
#   - RSS per minute, its peak, and its slope after the first minute (MB per minute: flat is ~0);
#   - the recorder's last stats line (encode fps, queue depth).
# It asserts nothing; it is a measurement. Run it on an otherwise idle machine.
#
# Usage: scripts/soak.sh                 (10 minutes of 1080p30)
#        MINUTES=1 scripts/soak.sh       (a shorter run)
#        WIDTH=1280 HEIGHT=720 FPS=30 scripts/soak.sh
#        SOAK_ENV="QUEUE_BYTES=32MiB PRESET=medium" scripts/soak.sh   (recorder settings to try)
#        CAMERA_ENV="ENCODING=jpeg" scripts/soak.sh   (a 1080p30 MJPEG camera: the recorder decodes each JPEG)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

MINUTES="${MINUTES:-10}"
WIDTH="${WIDTH:-1920}"
HEIGHT="${HEIGHT:-1080}"
FPS="${FPS:-30}"
SAMPLE_SECS="${SAMPLE_SECS:-2}"
FRAMES="${FRAMES:-$((MINUTES * 60 * FPS))}"

log() { printf '[soak] %s\n' "$*" >&2; }

# The same build as the tests (`--workspace`): a `-p` selection unifies features differently and
# would rebuild dora in a variant of its own.
cargo build --release --locked --quiet --workspace --bins

WORK="$ROOT/target/soak/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$WORK/videos"
recorder_env=""
for setting in ${SOAK_ENV:-}; do
  recorder_env+="      ${setting%%=*}: \"${setting#*=}\""$'\n'
done
camera_env=""
for setting in ${CAMERA_ENV:-}; do
  camera_env+="      ${setting%%=*}: \"${setting#*=}\""$'\n'
done
encoding="$(sed -n 's/.*ENCODING=\([^ ]*\).*/\1/p' <<< "${CAMERA_ENV:-}")"
cat > "$WORK/soak.yml" <<EOF
nodes:
  - id: camera
    path: $ROOT/target/release/dora-test-pattern
    inputs:
      tick: dora/timer/hz/$FPS
    outputs:
      - image
    env:
      WIDTH: $WIDTH
      HEIGHT: $HEIGHT
      LOOP_FRAMES: 60
      MAX_FRAMES: $FRAMES
      SEND_LOG: $WORK/sent.log
$camera_env  - id: recorder
    path: $ROOT/target/release/dora-video-recorder
    inputs:
      image: camera/image
    env:
      STORAGE: $WORK/videos
      FPS: $FPS
$recorder_env
EOF

log "recording ${WIDTH}x${HEIGHT}@${FPS} for $MINUTES min ($FRAMES frames) into $WORK"
(cd "$WORK" && exec dora run soak.yml > "$WORK/dora.log" 2>&1) &
dora_pid=$!

recorder_pid=""
for _ in $(seq 1 300); do
  recorder_pid="$(pgrep -f "^$ROOT/target/release/dora-video-recorder" | head -n1 || true)"
  [ -n "$recorder_pid" ] && break
  kill -0 "$dora_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$recorder_pid" ]; then
  log "the recorder never started; dora's log:"
  tail -n 30 "$WORK/dora.log" >&2
  exit 1
fi

# One line per sample: seconds since start, VmRSS, RssAnon, RssFile, RssShmem in kB, then the
# recorder's CPU time so far (user, system, in clock ticks).
start_ns=$(date +%s%N)
while [ -r "/proc/$recorder_pid/status" ]; do
  sample="$(awk '/^(VmRSS|RssAnon|RssFile|RssShmem):/ { printf "%s ", $2 }' "/proc/$recorder_pid/status" 2>/dev/null || true)"
  cpu="$(awk '{ print $14, $15 }' "/proc/$recorder_pid/stat" 2>/dev/null || true)"
  [ -n "$sample" ] && [ -n "$cpu" ] && echo "$((($(date +%s%N) - start_ns) / 1000000000)) $sample$cpu" >> "$WORK/rss.log"
  sleep "$SAMPLE_SECS"
done
wait "$dora_pid" || log "dora run exited with $?"

video="$(find "$WORK/videos" -maxdepth 1 -name '*.mp4' | head -n1)"
sent=$(wc -l < "$WORK/sent.log")
indexed=$(($(wc -l < "${video%.mp4}.frames.csv") - 1))
packets=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$video")
finished="$(grep -a 'recording finished' "$WORK/dora.log" | tail -n1 || true)"
dropped="$(sed -n 's/.*dropped=\([0-9]*\).*/\1/p' <<< "$finished")"
stats="$(grep -a 'encode_fps' "$WORK/dora.log" | tail -n1 || true)"

echo
echo "## Soak: ${WIDTH}x${HEIGHT} ${encoding:-bgr8} @ $FPS fps through dora run, $MINUTES min, recorder defaults ${SOAK_ENV:-}"
echo
echo "| frames sent | in the frame index | packets in the video | recorder dropped | missing |"
echo "|---|---|---|---|---|"
echo "| $sent | $indexed | $packets | ${dropped:-?} | $((sent - packets)) |"
echo
awk -v minutes="$MINUTES" -v frames="$packets" -v hz="$(getconf CLK_TCK)" '
  { t = $1; rss = $2 / 1024; anon = $3 / 1024; shmem = $5 / 1024
    if (rss > peak) { peak = rss; peak_t = t }
    minute = int(t / 60)
    if (rss > top_rss[minute]) { top_rss[minute] = rss; top_anon[minute] = anon; top_shmem[minute] = shmem }
    user = $6 / hz; sys = $7 / hz
    if (t >= 60) { n++; sx += t; sy += rss; sxx += t * t; sxy += t * rss }
  }
  END {
    print "| minute | peak VmRSS MB | its RssAnon MB | its RssShmem MB |"; print "|---|---|---|---|"
    for (m = 0; m <= minutes; m++) if (m in top_rss) printf "| %d | %.0f | %.0f | %.0f |\n", m + 1, top_rss[m], top_anon[m], top_shmem[m]
    printf "\npeak VmRSS %.0f MB at %.0f s", peak, peak_t
    if (n > 2) printf "; slope after the first minute %+.2f MB/min", (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60
    printf " (%d samples)\n", NR
    if (frames > 0) printf "recorder CPU %.1f s user + %.1f s system: %.2f ms per frame recorded (until the last sample)\n", user, sys, (user + sys) * 1000 / frames
  }' "$WORK/rss.log"
echo
echo "last stats line: ${stats:-none}"
echo "recording finished line: ${finished:-none}"
echo "files: $WORK"
