#!/usr/bin/env bash
# Container start: tfctl's spawner and start sequence against crun, on the same busybox rootfs.
#
# - tfctl: the runtime's `start` example, which forks the spawner once and times each start of
#   /bin/true in-process, from the launch request to the exit report (so it leaves out the CLI's
#   own exec: once `tfctl run` is wired, this script also times `$TFCTL_BIN run --rm` with
#   hyperfine, the figure the issue's goals are about).
# - crun: `crun run` of the rootfs with crun's default spec, under hyperfine (needs root, and
#   runs inside a private mount namespace with /sys/fs/cgroup/unified unmounted: Debian's crun
#   refuses this machine's hybrid cgroups otherwise).
# Both back to back and isolated (50 ms apart). Goals (issue 4): median at most 0.5x crun's
# default spec (about 8 ms here), p90 under 12 ms; stretch 5 ms. `--smoke`: a few runs, debug.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
[ "${1:-}" = --smoke ] && smoke=1
if [ $smoke = 1 ]; then
  cargo build -q -p tfctl-runtime --example start
  bin=target/debug/examples/start n=5 runs=3
else
  cargo build -q --release -p tfctl-runtime --example start
  bin=target/release/examples/start n=200 runs=100
fi
tmp=$(mktemp -d /tmp/tfctl-bench-start.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root="$tmp/bundle/rootfs"
mkdir -p "$root/bin" "$root/proc" "$root/dev" "$root/sys" "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
ln -s busybox "$root/bin/true"

echo "tfctl spawner, /bin/true, $n starts per mode:"
"$bin" --iterations "$n" --layer "$root" | tee "$tmp/tfctl.txt"
ours_b2b=$(grep 'back to back' "$tmp/tfctl.txt" | sed -E 's/.*run median ([0-9.]+) ms.*/\1/')
ours_iso=$(grep 'isolated' "$tmp/tfctl.txt" | sed -E 's/.*run median ([0-9.]+) ms.*/\1/')

if ! command -v crun >/dev/null || ! command -v hyperfine >/dev/null; then
  echo "crun or hyperfine missing: no comparison"
  exit 0
fi
(cd "$tmp/bundle" && crun spec)
python3 - "$tmp/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"] = {"path": "rootfs", "readonly": True}
json.dump(c, open(sys.argv[1], "w"))
PY
id="tfctl-bench-$$"
unshare --mount --propagation private bash -c "
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  hyperfine -N --style basic --warmup 3 --runs $runs --export-json '$tmp/crun-b2b.json' 'crun run -b $tmp/bundle $id' >/dev/null
  hyperfine -N --style basic --warmup 3 --runs $runs --prepare 'sleep 0.05' --export-json '$tmp/crun-iso.json' 'crun run -b $tmp/bundle $id' >/dev/null
"
python3 - "$tmp" "$ours_b2b" "$ours_iso" <<'PY'
import json, statistics, sys
tmp, ours = sys.argv[1], {"back to back": float(sys.argv[2]), "isolated": float(sys.argv[3])}
for mode, f in [("back to back", "crun-b2b"), ("isolated", "crun-iso")]:
    times = sorted(json.load(open(f"{tmp}/{f}.json"))["results"][0]["times"])
    med = statistics.median(times) * 1e3
    p90 = times[int(0.9 * (len(times) - 1))] * 1e3
    print(f"crun default spec, {mode:>12}: median {med:.2f} ms, p90 {p90:.2f} ms;  tfctl/crun = {ours[mode] / med:.2f} (goal <= 0.5)")
PY
