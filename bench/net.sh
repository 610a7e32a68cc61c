#!/usr/bin/env bash
# Network benchmark: time to wire one container (goal < 5 ms) and firewall apply time and batch
# size for apps of growing size (should grow linearly). Runs inside a throwaway network
# namespace; needs root. Usage: bench/net.sh [--smoke]
# Built in release (the numbers that count) unless --smoke, which uses the test build so CI stays
# quick; BENCH_PROFILE=dev|release overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
default=release
for a in "$@"; do [ "$a" = --smoke ] && default=dev; done
profile="${BENCH_PROFILE:-$default}"
cargo build -q --profile "$profile" -p tfctl-runtime --example net_bench
dir=target/$([ "$profile" = dev ] && echo debug || echo "$profile")/examples
ns="tfnet-bench-$$"
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" "$dir/net_bench" "$@"
