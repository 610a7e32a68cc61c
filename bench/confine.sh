#!/usr/bin/env bash
# Confinement costs per start: seccomp compile (cold, cached) and install (tree vs seccompiler's
# linear filter), cgroup create/attach/remove (child self-attach vs parent attach), secrets
# tmpfs. Needs root for the cgroup and secrets figures. Usage: bench/confine.sh [--smoke]
# (BENCH_PROFILE=release for a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${BENCH_PROFILE:-dev}"
cargo build -q --profile "$profile" -p tfctl-runtime --example confine_bench
dir=target/$([ "$profile" = dev ] && echo debug || echo "$profile")/examples
"$dir/confine_bench" "$@"
