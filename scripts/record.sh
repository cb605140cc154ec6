#!/usr/bin/env bash
# The main job: records 10 s from the built-in test-pattern camera through dataflows/record.yml
# with the real dora CLI, then prints where the file is and what is in it.
# Usage: scripts/record.sh [extra `dora run` arguments, e.g. --env CODEC=libx265 --env FPS=30]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

STORAGE="${STORAGE:-$ROOT/recordings}"
mkdir -p "$STORAGE"
marker="$(mktemp)"
trap 'rm -f "$marker"' EXIT

cargo build --release --locked -p dora-video-recorder -p dora-recorder-test-nodes
dora run dataflows/record.yml --stop-after 10s --env "STORAGE=$STORAGE" "$@"

mapfile -t files < <(find "$STORAGE" -maxdepth 1 -type f \( -name '*.mp4' -o -name '*.mkv' -o -name '*.avi' \) \
  -newer "$marker" | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no recording was written to $STORAGE: see the log above" >&2
  exit 1
fi
for file in "${files[@]}"; do
  echo "recorded: $file"
  ffprobe -v error -select_streams v:0 -count_frames \
    -show_entries stream=codec_name,width,height,nb_read_frames:format=duration,size \
    -of default=noprint_wrappers=1 "$file" | sed 's/^/  /'
  stem="${file%.*}"
  if [ -f "$stem.frames.csv" ]; then
    echo "  frame index: $stem.frames.csv ($(($(wc -l < "$stem.frames.csv") - 1)) rows)"
  fi
done
find "$STORAGE" -maxdepth 1 -name '*.session.json' -newer "$marker" | sort | sed 's/^/session manifest: /'
