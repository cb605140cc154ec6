#!/usr/bin/env bash
# Benchmarks our recorder against the ffmpeg CLI and the reference recorder (roomkit's PyAV
# recorder) and prints one markdown table per frame size with ratios, then two dataflow sections:
#   - rows: our encode pipeline in-process; the whole dataflow (test-pattern camera -> recorder
#     under `dora run`); the ffmpeg CLI at identical settings from bgr24 and from already-converted
#     yuv420p (the x264-only limit); roomkit (medium); ours with FSYNC=false (the fdatasync cost);
#   - how many 640x480@15 and 1280x720@30 test-pattern cameras one recorder sustains;
#   - the time from a stop (`dora run --stop-after`) to a finalized file.
# Steps:
#   - installs what the build and the dora CLI need (scripts/setup.sh);
#   - sets up the reference recorder in .bench-venv/ (PyAV, numpy, pydantic, pyyaml, and roomkit
#     without its dependencies; see scripts/roomkit_pyav.py), only when it is not there yet;
#   - builds the test-pattern camera (`cargo bench` builds the recorder binary itself);
#   - runs `cargo bench -p dora-video-recorder --bench encode` with ROOMKIT_PYTHON pointing at it.
# Usage: scripts/bench.sh                  (full: 640x480 and 1920x1080, about 15 minutes on 2 cores)
#        BENCH_QUICK=1 scripts/bench.sh    (smoke run: one small case, short sections, about a minute)
#        BENCH_RUNS=5 scripts/bench.sh     (rounds per case; each row is the median round)
# Run it on an otherwise idle machine: every figure is a wall-clock time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

log() { printf '[bench] %s\n' "$*" >&2; }

VENV="$ROOT/.bench-venv"
ROOMKIT_VERSION="0.109.0"

roomkit_ready() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$ROOMKIT_VERSION" <<'EOF' 2>/dev/null
import importlib.metadata, sys
import av, numpy, pydantic, yaml  # noqa: F401  (the recorder's imports)
sys.exit(importlib.metadata.version("roomkit") != sys.argv[1])
EOF
}

setup_roomkit() {
  if roomkit_ready; then
    log "reference recorder present in .bench-venv/"
    return
  fi
  log "installing the reference recorder (roomkit==$ROOMKIT_VERSION, PyAV) into .bench-venv/"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "av<16" numpy pydantic pyyaml
  # roomkit declares Python 3.12 for modules the runner does not load; its dependencies are not needed.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --ignore-requires-python \
    "roomkit==$ROOMKIT_VERSION"
}

setup_roomkit
log "building the test-pattern camera (target/release/dora-test-pattern)"
cargo build --locked --release --quiet -p dora-recorder-test-nodes --bin dora-test-pattern
ROOMKIT_PYTHON="$VENV/bin/python" ROOMKIT_SCRIPT="$ROOT/scripts/roomkit_pyav.py" \
  cargo bench --locked -p dora-video-recorder --bench encode
