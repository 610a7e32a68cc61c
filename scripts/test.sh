#!/usr/bin/env bash
# Runs tfctl's whole test suite, as root: installs what the tests need (scripts/setup.sh), keeps
# the benchmark scripts working (`bench/run.sh --smoke`), then builds and runs every test,
# including the replay of the committed fuzz corpora.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the tests create namespaces, mounts, cgroups and nftables rules: run it as root" >&2
  exit 2
fi
scripts/setup.sh
cargo build --workspace --locked
bench/run.sh --smoke
cargo test --workspace --locked --no-fail-fast 2>&1
