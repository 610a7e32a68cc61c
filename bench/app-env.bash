# Sourced by the benchmarks that run whole apps (up.sh, ops.sh), with the benchmark's name as
# $1: the tfctl binary ($TFCTL_BIN, else the debug build), the busybox image, a throwaway state
# root and network namespace. On exit every app file left in $tmp is taken down, then the
# namespace and the state root are removed.
bin=${TFCTL_BIN:-$PWD/target/debug/tfctl}
[ -x "$bin" ] || { echo "no tfctl binary at $bin (set TFCTL_BIN or build it)" >&2; exit 1; }
image="$PWD/samples/images/busybox"
[ -f "$image/index.json" ] || python3 scripts/busybox-image.py "$image" >/dev/null

tmp=$(mktemp -d "/tmp/tfctl-bench-$1.XXXXXX")
ns="tfbench-$1-$$"
export TFCTL_ROOT="$tmp/state" TFCTL_CONFIG="$tmp/no-config.kdl" NO_COLOR=1
in_ns() { nsenter --net="/run/netns/$ns" "$@"; }
cleanup() {
  for f in "$tmp"/*.kdl; do
    [ -e "$f" ] && in_ns "$bin" down "$f" >/dev/null 2>&1 || true
  done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
in_ns ip link set lo up
