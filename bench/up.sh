#!/usr/bin/env bash
# Whole apps (issue 6): `tfctl up --wait` then `tfctl down` of an app of N busybox httpd
# containers, in a throwaway network namespace with a throwaway state root.
# Prints seconds per container for up and for down at each size (goal: flat as the app grows)
# and the supervisor's RSS with 200 containers running (goal: under 30 MB), read from
# /proc/PID/status of the supervisor pid that `tfctl ps --format json` reports.
#
#   bench/up.sh            # 20 and 200 containers
#   bench/up.sh --smoke    # 3 containers: keeps the script working in CI
#
# Uses $TFCTL_BIN (bench/run.sh sets it; default target/debug/tfctl). Needs root. Whatever
# happens, every app is taken down and the namespace and state root are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=(20 200)
[ "${1:-}" = --smoke ] && sizes=(3)
source bench/app-env.bash up

now() { date +%s.%N; }
for n in "${sizes[@]}"; do
  file="$tmp/bench$n.kdl"
  {
    echo "app \"bench$n\""
    for i in $(seq 1 "$n"); do
      printf 'container "w%d" {\n image "oci:%s"\n command "httpd" "-f" "-p" "80" "-h" "/var/www"\n init\n stop-timeout "1s"\n}\n' "$i" "$image"
    done
  } >"$file"
  t0=$(now)
  in_ns "$bin" up --trust-file --wait=10m "$file" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  t1=$(now)
  json=$(in_ns "$bin" ps "bench$n" --format json)
  running=$(jq '[.apps[0].containers[] | select(.state == "running")] | length' <<<"$json")
  [ "$running" = "$n" ] || { echo "only $running of $n containers running after up --wait" >&2; exit 1; }
  pid=$(jq '.apps[0].supervisor.pid' <<<"$json")
  rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  t2=$(now)
  in_ns "$bin" down "$file" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  t3=$(now)
  rm -f "$file"
  awk -v n="$n" -v up="$(echo "$t1 - $t0" | bc)" -v down="$(echo "$t3 - $t2" | bc)" -v rss="$rss_kb" 'BEGIN {
    printf "%4d containers: up --wait %.2f s (%.3f s/container), down %.2f s (%.3f s/container), supervisor RSS %.1f MB\n",
      n, up, up / n, down, down / n, rss / 1024 }'
  if [ "$n" = 200 ]; then
    awk -v rss="$rss_kb" 'BEGIN { printf "supervisor RSS at 200 containers: %.1f MB (goal < 30 MB)\n", rss / 1024 }'
  fi
done
echo "goal: s/container flat as the app grows"
