#!/usr/bin/env bash
# The benchmarks' one entry point. `bench/run.sh` runs every benchmark in full (release build);
# `bench/run.sh --smoke` runs each in a tiny configuration with the debug build, so CI keeps the
# scripts working without spending time on measurements. `bench/run.sh NAME...` runs some.
# Each benchmark prints its figures beside its goal, and a ratio where a peer does the same work.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=()
names=()
for a in "$@"; do
  case "$a" in
    --smoke) smoke=(--smoke) ;;
    *) names+=("$a") ;;
  esac
done
if [ ${#names[@]} -eq 0 ]; then
  for f in bench/*.sh; do
    n=$(basename "$f" .sh)
    [ "$n" = run ] || names+=("$n")
  done
fi
if [ ${#smoke[@]} -eq 0 ]; then
  cargo build --release --locked -q
  export TFCTL_BIN="$PWD/target/release/tfctl"
else
  cargo build --locked -q
  export TFCTL_BIN="$PWD/target/debug/tfctl"
fi
status=0
for n in "${names[@]}"; do
  echo "== bench/$n.sh ${smoke[*]:-}"
  if ! bash "bench/$n.sh" "${smoke[@]}"; then
    echo "bench/$n.sh failed" >&2
    status=1
  fi
done
exit $status
