#!/usr/bin/env bash
# Operating a running app (issue 7): `restart --reset` of one container (20ft's reset between
# tests: its filesystem changes discarded, pre-boot files written again, address kept), and a
# reconciling `up` of an app of N containers: with nothing changed, with one container's
# `allow` changed (in place), and with one container's environment changed (recreated).
# No peer does the same work: the figures are absolute, beside their goals.
#
#   bench/ops.sh            # 20 containers, 20 resets
#   bench/ops.sh --smoke    # 2 containers, 2 resets: keeps the script working in CI
#
# Uses $TFCTL_BIN (bench/run.sh sets it; default target/debug/tfctl). Needs root. The app is
# taken down and the namespace and state root removed whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
n=20 resets=20
[ "${1:-}" = --smoke ] && n=2 resets=2
source bench/app-env.bash ops
file="$tmp/ops.kdl"

# The app: N httpd containers; the first has a pre-boot file. $1: w1's allow, $2: w2's MODE.
write_app() {
  {
    echo 'app "ops"'
    for i in $(seq 1 "$n"); do
      printf 'container "w%d" {\n image "oci:%s"\n command "httpd" "-f" "-p" "80" "-h" "/var/www"\n init\n stop-timeout "1s"\n' "$i" "$image"
      [ "$i" = 1 ] && printf ' file "/etc/motd" "hello\\n"\n %s\n' "$1"
      [ "$i" = 2 ] && printf ' env MODE="%s"\n' "$2"
      echo '}'
    done
  } >"$file"
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
run() { in_ns "$bin" "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }; }

write_app "" a
run up --trust-file --wait=5m "$file"

times=()
for _ in $(seq 1 "$resets"); do
  run exec ops/w1 -- sh -c 'echo scratch > /tmp/scratch && rm /etc/motd'
  t=$(date +%s%N)
  run restart --reset ops/w1
  times+=("$(ms "$t")")
  # The reset really happened: the pre-boot file is back and the scratch file gone.
  in_ns "$bin" exec ops/w1 -- sh -c 'test -f /etc/motd && ! test -e /tmp/scratch' || { echo "reset did not reset" >&2; exit 1; }
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "restart --reset of one container: median ${median} ms over $resets (goal < 100 ms; stop-timeout 1s, httpd stops at once)"

t=$(date +%s%N); run up --trust-file -d "$file"; same=$(ms "$t")
write_app 'allow from="w2" port=80' a
t=$(date +%s%N); run up --trust-file -d "$file"; allow=$(ms "$t")
write_app 'allow from="w2" port=80' b
t=$(date +%s%N); run up --trust-file -d "$file"; recreate=$(ms "$t")
echo "reconciling up of $n containers: nothing changed ${same} ms, an allow changed in place ${allow} ms, one container recreated ${recreate} ms (goal < 500 ms each)"
