#!/usr/bin/env bash
# Installs what the tests need (scripts/setup.sh), checks formatting and lints (a difference or a
# warning fails the run), then runs the whole suite: unit tests, the node driven through dora's
# testing mode, and end-to-end dataflows under the real dora CLI.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

cargo fmt --all --check
# Release profile, as below: clippy's check shares the dependencies' build artefacts.
cargo clippy --release --locked --workspace --all-targets -- -D warnings
# One release build serves the tests and the binaries the dataflows start.
cargo build --release --locked --workspace --bins
cargo test --release --locked --workspace "$@"
