#!/usr/bin/env bash
# Image pull benchmark. Builds a multi-layer image (~200 MB; 5 MB with --smoke), pushes it to a
# local docker-registry on a free loopback port, then compares in one run:
#   pull      tfctl pull (download, verify, unpack)  vs  skopeo copy docker://… oci:DIR + umoci raw unpack
#   download  tfctl download-only                    vs  skopeo copy docker://… dir:DIR
#   re-pull   tfctl pull of an image already in the store (goal: under 50 ms)
# and prints the ratios (goal: at most 1.0 each). `tfctl pull` is $TFCTL_BIN (set by bench/run.sh,
# built here otherwise); the download-only figure, which the CLI has no flag for, comes from the
# same library code driven by runtime/examples/image_pull.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
[ "${1:-}" = --smoke ] && smoke=1

if [ $smoke = 1 ]; then total_mb=5; runs=2; profile=debug; cargo_flags=(); else total_mb=200; runs=5; profile=release; cargo_flags=(--release); fi
cargo build "${cargo_flags[@]}" -q -p tfctl-runtime --example image_pull
driver="$PWD/target/$profile/examples/image_pull"
if [ -z "${TFCTL_BIN:-}" ]; then
  cargo build "${cargo_flags[@]}" -q -p tfctl
  TFCTL_BIN="$PWD/target/$profile/tfctl"
fi
for t in docker-registry skopeo umoci hyperfine python3; do
  command -v $t >/dev/null || { echo "bench/pull.sh: $t is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/tfctl-bench-pull.XXXXXX)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# A registry of our own on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
mkdir -p "$work/storage"
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: $addr, secret: bench}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

# The image: 4 gzip layers, half incompressible bytes and half text, like real images.
python3 - "$work/layout" "$total_mb" <<'EOF'
import gzip, hashlib, io, json, os, random, sys, tarfile
out, total = sys.argv[1], int(sys.argv[2]) * 1024 * 1024
os.makedirs(out + "/blobs/sha256")
def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d, len(b)
rnd = random.Random(42)
words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))) for _ in range(2000)]
layers, diff_ids = [], []
for i in range(4):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        size, n = 0, 0
        while size < total // 4:
            if n % 2:
                data = os.urandom(rnd.randint(1, 256) * 1024)
            else:
                data = " ".join(rnd.choice(words) for _ in range(rnd.randint(100, 60000))).encode()
            ti = tarfile.TarInfo(f"layer{i}/dir{n % 16}/file{n}")
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
            size += len(data); n += 1
    raw = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, s = put(gzip.compress(raw, 6))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cs = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": layers}).encode()
md, ms = put(man)
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "1"}}]},
          open(out + "/index.json", "w"))
EOF
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:1" "docker://$addr/bench:1"
ref="$addr/bench:1"
echo "image: $(du -sh "$work/layout" | cut -f1) compressed in 4 layers, registry $addr"

tfctl_pull() { echo "env TFCTL_CONFIG=$work/no-config.kdl $TFCTL_BIN --root $1 pull --quiet --insecure-registry $addr $ref"; }
h() { hyperfine -N --style basic --warmup 1 --runs $runs --export-json "$work/$1.json" --prepare "$2" "${@:3}" >/dev/null; }
median() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(" ".join("%.4f" % x["median"] for x in r))' "$1"; }

h pull "rm -rf $work/t $work/s $work/rootfs" \
  "$(tfctl_pull $work/t)" \
  "bash -c 'skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/s:1 && umoci raw unpack --image $work/s:1 $work/rootfs'"
read -r t_pull s_pull < <(median "$work/pull.json")
h download "rm -rf $work/t $work/d" \
  "$driver --root $work/t --download-only --insecure-registry $addr $ref" \
  "skopeo copy -q --src-tls-verify=false docker://$ref dir:$work/d"
read -r t_dl s_dl < <(median "$work/download.json")
rm -rf "$work/t"; $(tfctl_pull "$work/t")
h repull "true" "$(tfctl_pull $work/t)"
read -r t_re < <(median "$work/repull.json")

python3 - "$t_pull" "$s_pull" "$t_dl" "$s_dl" "$t_re" <<'EOF'
import sys
tp, sp, td, sd, tr = map(float, sys.argv[1:])
print(f"pull (download+verify+unpack): tfctl {tp*1000:.0f} ms, skopeo+umoci {sp*1000:.0f} ms, ratio {tp/sp:.2f} (goal <= 1.0)")
print(f"download only:                 tfctl {td*1000:.0f} ms, skopeo dir: {sd*1000:.0f} ms, ratio {td/sd:.2f} (goal <= 1.0)")
print(f"re-pull of a present image:    tfctl {tr*1000:.1f} ms (goal < 50 ms)")
EOF
