#!/usr/bin/env bash
# What the recorder's crash-loss settings cost in bytes: the same 30 s of 640x480@15 content
# encoded by the ffmpeg CLI with libx264 veryfast, CRF 23, GOP 2 s, no B-frames, fragmented MP4,
#   before:      x264's own look-ahead (10 frames at veryfast), 1 s fragments (the old default)
#   default:     rc-lookahead=3 (0.2 s), sync-lookahead=0, 0.3 s fragments (the recorder's default)
#   zerolatency: tune=zerolatency, 0.3 s fragments (LOW_LATENCY=true)
# for clean synthetic content and for the same content with camera-like temporal noise.
# Usage: scripts/latency-sizes.sh   (needs ffmpeg: scripts/setup.sh installs it)
set -euo pipefail

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
frag="-movflags +frag_keyframe+empty_moov+default_base_moof"
declare -A settings=(
  [before]="-x264-params rc-lookahead=10 $frag -frag_duration 1000000"
  [default]="-x264-params rc-lookahead=3:sync-lookahead=0 $frag -frag_duration 300000"
  [zerolatency]="-tune zerolatency $frag -frag_duration 300000"
)
printf '%-12s %14s %14s\n' settings "clean bytes" "noisy bytes"
for name in before default zerolatency; do
  sizes=()
  for source in "testsrc2=size=640x480:rate=15" "testsrc2=size=640x480:rate=15,noise=alls=6:allf=t"; do
    out="$work/$name.mp4"
    # shellcheck disable=SC2086 # settings are word lists on purpose
    ffmpeg -v error -y -f lavfi -i "$source" -frames:v 450 -c:v libx264 -preset veryfast -crf 23 -g 30 -bf 0 \
      ${settings[$name]} "$out"
    sizes+=("$(stat -c %s "$out")")
  done
  printf '%-12s %14s %14s\n' "$name" "${sizes[0]}" "${sizes[1]}"
done
