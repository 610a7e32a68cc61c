#!/usr/bin/env bash
# Times `check` of a generated 1,000-container app file. Goal: under 100 ms.
#
#   bench/check.sh            # 1,000 containers, hyperfine (or a timed loop without it)
#   bench/check.sh --smoke    # 50 containers, one run: keeps the script working in CI
#
# CHECK_CMD overrides the command timed, e.g. CHECK_CMD="target/release/tfctl check".
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
n=1000
smoke=0
if [[ ${1:-} == --smoke ]]; then
    n=50
    smoke=1
fi

out="$here/bench/out"
mkdir -p "$out"
app="$out/check-$n.kdl"

python3 - "$n" >"$app" <<'PY'
import sys
n = int(sys.argv[1])
print('app "bench"')
print('secret "db-password" generate=32')
print('volume "data"')
print('on "up" { run "sh" "-c" "echo up"; }')
for i in range(n):
    prev = f"c{i - 1}" if i else None
    print(f'container "c{i}" {{')
    print(f'    image "registry.example.com:5000/shop/svc-{i % 50}:1.{i % 10}"')
    print('    command "httpd" "-f" "-p" "8080" "-h" "/var/www"')
    print(f'    env INDEX="{i}" HOME_DIR="${{HOME:-/root}}" LITERAL="$$TFCTL_IP"')
    print(f'    publish {10000 + i} to=8080 host-ip="127.0.0.1"')
    print('    mount "data" at="/data" read-only=#true')
    print('    secret "db-password"')
    if prev:
        print(f'    allow from="{prev}" port=8080 proto="tcp"')
        print(f'    after "{prev}" until="healthy"')
        print(f'    file "/etc/peer.conf" "peer={{{{ ip.{prev} }}}} pw={{{{ secret.db-password }}}}\\n" template=#true mode=0o400')
    print('    health {')
    print('        http "http://127.0.0.1:8080/"')
    print('        interval "5s"')
    print('        retries 3')
    print('    }')
    print('    on "started" on-fail="fail" { exec "test" "-d" "/var/www"; }')
    print('    limits memory="64M" cpus=0.25 pids=64')
    print('    restart "on-failure" max=3')
    print('    init')
    print('    stop-timeout "1s"')
    print('}')
PY

# The command timed: CHECK_CMD, else `$TFCTL_BIN check` (bench/run.sh sets TFCTL_BIN), else the
# schema crate's `check` example.
example="$here/target/release/examples/check"
build_example() { (cd "$here" && cargo build --release -q -p tfctl-schema --example check); }
if [[ -n ${CHECK_CMD:-} ]]; then
    read -r -a cmd <<<"$CHECK_CMD"
elif [[ -n ${TFCTL_BIN:-} ]]; then
    cmd=("$TFCTL_BIN" check)
else
    build_example
    cmd=("$example")
fi

echo "app: $app ($n containers, $(wc -c <"$app") bytes)"
# The generated file must be valid: a benchmark of error reporting would measure something else.
"${cmd[@]}" "$app"

if ((!smoke)); then
    # Where the time goes: the KDL parser (the kdl crate) against tfctl's own validation.
    [[ -x $example ]] || build_example
    for _ in 1 2 3; do "$example" --timings "$app" 2>&1 | grep ' ms'; done
fi

if ((smoke)); then
    start=$(date +%s%N)
    "${cmd[@]}" "$app" 2>/dev/null
    end=$(date +%s%N)
    echo "check ($n containers): $(((end - start) / 1000000)) ms (smoke run)"
    exit 0
fi

if command -v hyperfine >/dev/null; then
    hyperfine --warmup 3 --runs 30 --export-json "$out/check.json" "${cmd[*]} $app 2>/dev/null"
    python3 - "$out/check.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
median_ms = r["median"] * 1000
print(f"check of 1,000 containers: median {median_ms:.1f} ms (goal < 100 ms): {'OK' if median_ms < 100 else 'OVER GOAL'}")
PY
else
    times=()
    for _ in $(seq 20); do
        start=$(date +%s%N)
        "${cmd[@]}" "$app" 2>/dev/null
        end=$(date +%s%N)
        times+=($(((end - start) / 1000)))
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n '10p')
    echo "check of $n containers: median $((median / 1000)) ms over 20 runs (goal < 100 ms)"
fi
