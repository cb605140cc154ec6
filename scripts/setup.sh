#!/usr/bin/env bash
# Installs everything the recorder needs on Debian 12, and nothing twice:
#   - Debian packages: FFmpeg's development headers (ffmpeg-next links against them), ffprobe/ffmpeg
#     (tests check files with them), clang (bindgen), pkg-config, Python's venv, Chromium and
#     GStreamer (playback tests), procps and util-linux (tests signal processes and mount a tmpfs);
#   - the Rust toolchain through rustup, if cargo is missing;
#   - the dora CLI (dora-rs-cli 1.1.0 from PyPI) into the project's .venv/;
#   - node-hub's camera node opencv-video-capture (PyPI, pinned, with OpenCV and dora's Python API
#     of the CLI's version) into the same .venv/, for the tests that record it.
# Safe to run again. Usage: scripts/setup.sh   (other scripts source it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DORA_VERSION="1.1.0"
OPENCV_VIDEO_CAPTURE_VERSION="0.5.0"
OPENCV_PYTHON_VERSION="5.1.0.95"
APT_PACKAGES=(
  pkg-config clang gcc libc6-dev git curl ca-certificates ffmpeg chromium procps util-linux
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev
  libturbojpeg0-dev
  python3 python3-venv python3-pip
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-base-apps gstreamer1.0-plugins-good
  gstreamer1.0-libav
)

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  # A python3 from elsewhere (pyenv) with a working venv module is as good as Debian's.
  if python3 -m venv --help >/dev/null 2>&1; then
    local kept=()
    for package in "${missing[@]}"; do
      case "$package" in python3|python3-venv|python3-pip) ;; *) kept+=("$package") ;; esac
    done
    missing=("${kept[@]}")
  fi
  if [ "${#missing[@]}" -eq 0 ]; then
    log "Debian packages present"
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_rust() {
  if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
  if command -v cargo >/dev/null 2>&1; then
    log "Rust present: $(cargo --version)"
    return
  fi
  log "installing Rust (rustup, stable)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
}

install_dora_cli() {
  local venv="$ROOT/.venv"
  if [ -x "$venv/bin/dora" ] && "$venv/bin/dora" --version 2>/dev/null | grep -q "$DORA_VERSION"; then
    log "dora CLI present: $("$venv/bin/dora" --version)"
  else
    log "installing dora-rs-cli==$DORA_VERSION into .venv/"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "dora-rs-cli==$DORA_VERSION"
  fi
  export PATH="$venv/bin:$PATH"
}

install_python_nodes() {
  local venv="$ROOT/.venv"
  if "$venv/bin/pip" show opencv-video-capture 2>/dev/null | grep -q "^Version: $OPENCV_VIDEO_CAPTURE_VERSION$"; then
    log "opencv-video-capture present"
    return
  fi
  log "installing opencv-video-capture==$OPENCV_VIDEO_CAPTURE_VERSION into .venv/"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "opencv-video-capture==$OPENCV_VIDEO_CAPTURE_VERSION" \
    "opencv-python==$OPENCV_PYTHON_VERSION" "dora-rs==$DORA_VERSION"
}

install_debian_packages
install_rust
command -v rustup >/dev/null 2>&1 && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1 && { log "adding rustfmt and clippy"; rustup component add rustfmt clippy; }
install_dora_cli
install_python_nodes
