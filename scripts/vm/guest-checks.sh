#!/bin/bash
# Runs inside a scripts/vm guest as root: tfctl's cgroup v2 behaviour on a real distribution
# kernel, one line per check: `CHECK <name> PASS|FAIL [detail]`, then `TFCTL-CHECKS-DONE`.
# $1: systemd (systemd is PID 1) or init (no systemd).
set -u
mode=${1:-init}
T=/opt/tfctl
export PATH=$T:/usr/sbin:/usr/bin:/sbin:/bin
R=/var/lib/tfctl-check
tf() { tfctl --root "$R" "$@"; }
img=oci:$T/images/busybox
cd "$T" || exit 1

check() { # name PASS|FAIL detail...
  local name=$1 res=$2; shift 2
  echo "CHECK $name $res $*" | tr '\n' ' '; echo
}
# expect NAME WANT GOT: PASS when equal.
expect() {
  if [ "$2" = "$3" ]; then check "$1" PASS "$3"; else check "$1" FAIL "want [$2] got [$3]"; fi
}
t0=$(date +%s)
echo "guest: kernel $(uname -r), PID 1 $(cat /proc/1/comm), /sys/fs/cgroup $(stat -fc %T /sys/fs/cgroup), mode $mode"
expect cgroup2-only cgroup2fs "$(stat -fc %T /sys/fs/cgroup)"
echo "guest: root controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# What tfctl may leave behind, to compare before and after.
snapshot() {
  echo "## mounts"; awk '{print $5}' /proc/self/mountinfo | grep -E 'tfctl|/var/lib/tfctl' | sort
  # tfctl.slice and /tfctl, the parents every app shares, may stay (as user.slice does).
  echo "## cgroups"; find /sys/fs/cgroup -mindepth 1 -type d \( -name 'tfctl*' -o -name supervisor -o -path '*tfctl*' \) 2>/dev/null \
    | grep -v -x -e /sys/fs/cgroup/tfctl.slice -e /sys/fs/cgroup/tfctl | sort
  echo "## links"; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "## nft"; nft list tables 2>/dev/null | sort
  echo "## processes"; ps -eo pid=,args= | grep -E 'tfctl|sleep 1000000|httpd -f|nc -ll' | grep -v -E 'grep|guest-checks' | awk '{$1=""; print}' | sort
}
# leftovers NAME: PASS when nothing differs from the snapshot in $base.
leftovers() {
  local now
  sleep 1
  now=$(snapshot)
  if [ "$now" = "$base" ]; then check "$1" PASS; else
    check "$1" FAIL "$(diff <(echo "$base") <(echo "$now") | grep '^[<>]' | tr '\n' ';')"
  fi
}
base=$(snapshot)
# why APP: the end of the app's supervisor log, when `up` failed.
why() { tail -n 5 "$R/apps/$1/supervisor.log" 2>/dev/null | sed "s/^/guest: $1 supervisor.log: /"; }
own0=$(cat /proc/$$/cgroup)

# 1. One-off containers with limits: memory.max and the cgroup namespace seen inside, an OOM.
out=$(tf run --rm -m 32M "$img" sh -c 'cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max 2>&1' 2>&1)
expect run-cgroup-namespace "0::/" "$(echo "$out" | head -1)"
expect run-memory.max-visible-inside 33554432 "$(echo "$out" | tail -n +2 | tr '\n' ' ' | sed 's/ $//')"
out=$(tf run --rm -m 32M "$img" sh -c 'dd if=/dev/zero of=/dev/null bs=100M count=1' 2>&1); rc=$?
expect run-oom-killed 137 "$rc"
if echo "$out" | grep -qiE 'out of memory|oom|memory limit'; then check run-oom-reported PASS "$(echo "$out" | tail -1)"; else check run-oom-reported FAIL "output: $(echo "$out" | tail -2 | tr '\n' ' ')"; fi
leftovers run-rm-leaves-nothing

# 2. An app with every limit: read back inside, then pushed against.
out=$(tf up --quiet --wait=60s apps/limits.kdl 2>&1); rc=$?
expect up-limits 0 "$rc"; [ "$rc" = 0 ] || { echo "$out"; why limits; }
# The container's own view: its cgroup namespace, and its limits where it can read them (a
# cgroup2 mount at /sys/fs/cgroup inside).
got=$(tf exec limits/box -- sh -c 'echo $(cat /sys/fs/cgroup/memory.max) $(cat /sys/fs/cgroup/pids.max) $(cat /sys/fs/cgroup/cpu.max) $(cat /proc/self/cgroup)' 2>&1)
expect limits-inside "50331648 20 50000 100000 0::/" "$got"
expect cgroup-namespace-inside "0::/" "$(tf exec limits/box -- cat /proc/self/cgroup 2>&1)"
cg=$(find /sys/fs/cgroup -type d -name '*-box' | head -1)
echo "guest: limits/box cgroup at $cg"
got="$(cat "$cg/memory.max" 2>&1) $(cat "$cg/pids.max" 2>&1) $(cat "$cg/cpu.max" 2>&1)"
expect limits-in-host-cgroup "50331648 20 50000 100000" "$got"
got=$(tf exec limits/box -- sh -c 'dd if=/dev/zero of=/dev/null bs=80M count=1; echo rc=$?' 2>&1 | tr '\n' ' ')
got="$got $(grep oom_kill "$cg/memory.events" | tr '\n' ' ')"
case $got in *"oom_kill "[1-9]*) check exec-memory-hog-oom PASS "$got" ;; *) check exec-memory-hog-oom FAIL "$got" ;; esac
# The device program: /dev/null works, a block node made inside does not open.
got=$(tf exec limits/box -- sh -c 'echo x > /dev/null && echo null-ok; mknod /tmp/sda b 8 0 2>&1; head -c1 /tmp/sda >/dev/null 2>&1 && echo disk-opened || echo disk-refused' 2>&1 | tr '\n' ' ')
case $got in *null-ok*disk-refused*) check devices-filtered PASS "$got" ;; *) check devices-filtered FAIL "$got" ;; esac
# Last, as it leaves the container at its pids.max: a fork loop of 40 (the container's init,
# its command and this shell are 3 more) stops at 20, the kernel counts the refusals.
got=$(tf exec limits/box -- sh -c 'for i in $(seq 40); do sleep 999999 </dev/null >/dev/null 2>&1 & done 2>/dev/null; echo started' 2>&1 | tr '\n' ' ')
got="$got pids.current=$(cat "$cg/pids.current") $(tr '\n' ' ' < "$cg/pids.events")"
case $got in *"pids.current="1[89]" max "[1-9]*|*"pids.current=20 max "[1-9]*) check pids-fork-loop-stops PASS "$got" ;; *) check pids-fork-loop-stops FAIL "$got" ;; esac
tf exec limits/box -- pkill -f "sleep 999999" >/dev/null 2>&1
check cgroup-place-limits "$( [ -n "$cg" ] && echo PASS || echo FAIL)" "$cg"
# No process of the caller was moved: this shell is still where it started.
expect caller-not-moved "$own0" "$(cat /proc/$$/cgroup)"
out=$(tf down --quiet limits 2>&1); expect down-limits 0 "$?"
leftovers limits-down-leaves-nothing

# 3. The three-tier sample (it has a secret), then the same without it.
out=$(tf up --quiet --wait=120s "$T/samples/three-tier.kdl" 2>&1); rc=$?
if [ $rc = 0 ]; then
  got=$(wget -qO- http://127.0.0.1:8080/cgi-bin/status 2>&1 || busybox wget -qO- http://127.0.0.1:8080/cgi-bin/status 2>&1)
  check three-tier-up PASS "$got"
else
  check three-tier-up FAIL "rc $rc: $(echo "$out" | tail -3 | tr '\n' ' ')"; why three-tier
fi
tf down --quiet three-tier >/dev/null 2>&1
leftovers three-tier-down-leaves-nothing
out=$(tf up --quiet --wait=120s apps/two-tier.kdl 2>&1); rc=$?
if [ $rc = 0 ]; then
  got=$(busybox wget -qO- http://127.0.0.1:8080/cgi-bin/status 2>&1)
  case $got in *"db ready"*) check two-tier-up PASS "$got" ;; *) check two-tier-up FAIL "$got" ;; esac
  got=$(tf exec two-tier/db -- cat /proc/self/cgroup 2>&1); expect two-tier-exec "0::/" "$got"
else
  check two-tier-up FAIL "rc $rc: $(echo "$out" | tail -3 | tr '\n' ' ')"; why two-tier
fi
# A killed supervisor, then down: nothing left.
sup=$(pgrep -f "tfctl --root $R up" | head -1)
[ -n "$sup" ] && kill -9 "$sup"
sleep 1
out=$(tf down --quiet two-tier 2>&1); expect down-after-killed-supervisor 0 "$?${out:+ $out}"
leftovers two-tier-down-leaves-nothing

# 4. `exec` into a foreground `run`, and every command finding the same cgroup: from this
# shell and, under systemd, from a login-like session scope with only memory and pids.
tf run --name fg "$img" sleep 1000000 > /tmp/fg.out 2>&1 &
fg=$!
for i in $(seq 100); do tf exec fg -- true 2>/dev/null && break; kill -0 $fg 2>/dev/null || break; sleep 0.3; done
got=$(tf exec fg -- cat /proc/self/cgroup 2>&1); expect exec-into-foreground-run "0::/" "$got"
tf down --quiet fg >/dev/null 2>&1; wait $fg
leftovers foreground-run-leaves-nothing
if [ "$mode" = systemd ]; then
  # A transient scope in user.slice stands for an SSH login session.
  systemd-run --quiet --scope --unit=fake-session --slice=user-1000.slice -- bash -c "
    tfctl --root $R run --name sess $img sleep 1000000 > /tmp/sess.out 2>&1 &
    for i in \$(seq 100); do tfctl --root $R exec sess -- true 2>/dev/null && break; kill -0 \$! 2>/dev/null || break; sleep 0.3; done
    echo exec=\$(tfctl --root $R exec sess -- cat /proc/self/cgroup 2>&1)
    echo shell=\$(cat /proc/\$\$/cgroup)
    echo nested=\$(find /sys/fs/cgroup -type d -name supervisor | wc -l)
    echo place=\$(find /sys/fs/cgroup -type d -name '*-sess')
    echo sessout=\$(tail -n 2 /tmp/sess.out)
    tfctl --root $R down --quiet sess
    wait
  " > /tmp/session.txt 2>&1
  cat /tmp/session.txt
  expect session-exec "0::/" "$(sed -n 's/^exec=//p' /tmp/session.txt)"
  expect session-shell-not-moved "0::/user.slice/user-1000.slice/fake-session.scope" "$(sed -n 's/^shell=//p' /tmp/session.txt)"
  check session-place "$( [ -n "$(sed -n 's/^place=//p' /tmp/session.txt)" ] && echo PASS || echo FAIL)" "$(sed -n 's/^place=//p' /tmp/session.txt) supervisors=$(sed -n 's/^nested=//p' /tmp/session.txt)"
  leftovers session-leaves-nothing

  # 5. The unit `tfctl systemd` writes, installed as an admin would: `--install --now` returns once
  # the unit is active, which a Type=notify unit is only after the supervisor's READY=1.
  unit=tfctl-limits.service
  out=$(timeout 300 tfctl --root "$R" systemd --install --now apps/limits.kdl 2>&1); rc=$?
  # rc alone decides; what --now said goes into the detail.
  check unit-install-now "$( [ "$rc" = 0 ] && echo PASS || echo FAIL)" "rc $rc: $(echo "$out" | tail -2 | tr '\n' ' ')"
  if [ "$rc" != 0 ]; then
    systemctl status $unit --no-pager -n 0 2>&1 | sed 's/^/guest: status: /'
    # The supervisor is the unit's main process: its output is the unit's journal.
    journalctl -u $unit --no-pager -o cat -n 60 2>&1 | sed 's/^/guest: journal: /'
    why limits
    # Why a container failed, as the supervisor says it, and what the container wrote.
    tf --format json ps limits 2>&1 | tr -d '\n' | sed 's/^/guest: ps: /'; echo
    tail -n 20 "$R"/apps/limits/logs/*.log 2>/dev/null | sed 's/^/guest: container log: /'
    systemctl show -p ExecMainStatus -p StatusText -p Result $unit 2>&1 | sed 's/^/guest: show: /'
  fi
  expect unit-active-after-ready active "$(systemctl is-active $unit)"
  expect unit-type-notify "notify main" "$(systemctl show -P Type $unit) $(systemctl show -P NotifyAccess $unit)"
  expect unit-enabled enabled "$(systemctl is-enabled $unit 2>&1)"
  # READY=1 came with the status line; STATUS= lines follow the containers.
  got=$(systemctl show -P StatusText $unit)
  case $got in "app limits is ready"*|"box: "*|"app: "*) check unit-status-text PASS "$got" ;; *) check unit-status-text FAIL "[$got]" ;; esac
  # The watchdog is on, and the supervisor's pings keep it quiet (WatchdogSec=1min).
  expect unit-watchdog 1min "$(systemctl show -P WatchdogUSec $unit)"
  exposure=$(systemd-analyze security $unit 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  case $exposure in [0-4].*) check unit-security-below-5 PASS "$exposure" ;; *) check unit-security-below-5 FAIL "[$exposure]" ;; esac
  unitcg=/sys/fs/cgroup/system.slice/$unit
  where=$(find /sys/fs/cgroup -type d -name '*-box' | head -1)
  case $where in "$unitcg"/*) check unit-containers-in-its-cgroup PASS "$where" ;; *) check unit-containers-in-its-cgroup FAIL "box at [$where], unit: $(systemctl is-active $unit) $(journalctl -u $unit -n 5 --no-pager 2>&1 | tr '\n' ' ')" ;; esac
  got="$(cat "$where/memory.max" 2>&1) $(cat "$where/pids.max" 2>&1) $(cat "$where/cpu.max" 2>&1)"
  expect unit-limits "50331648 20 50000 100000" "$got"
  expect unit-supervisor-in-leaf "0::/system.slice/$unit/supervisor" "$(cat /proc/$(systemctl show -P MainPID $unit)/cgroup)"
  expect unit-exec "0::/" "$(tf exec limits/box -- cat /proc/self/cgroup 2>&1)"
  systemctl stop $unit
  expect unit-stopped inactive "$(systemctl is-active $unit)"
  # Stopped, not failed: the supervisor said STOPPING=1 and exited 0 on SIGTERM.
  expect unit-stop-result success "$(systemctl show -P Result $unit)"
  leftovers unit-stop-leaves-nothing
  systemctl disable --quiet $unit; rm -f /etc/systemd/system/$unit; systemctl daemon-reload
fi

# 6. The cgroup driver's own tests, on this kernel.
if [ -x "$T/cgroup_real" ]; then
  [ -s "$T/cgroup_real.tmpdir" ] && mkdir -p "$(cat "$T/cgroup_real.tmpdir")"
  out=$("$T/cgroup_real" 2>&1); rc=$?
  echo "$out" | sed 's/^/guest: cgroup_real: /'
  if [ $rc = 0 ]; then check cgroup_real-test PASS "$(echo "$out" | grep -c '^ok:') ok"; else check cgroup_real-test FAIL "$(echo "$out" | tail -2 | tr '\n' ' ')"; fi
fi

echo "guest: cgroups named tfctl at the end: $(find /sys/fs/cgroup -type d -name 'tfctl*' | tr '\n' ' ')"
echo "guest: checks took $(( $(date +%s) - t0 ))s"
echo TFCTL-CHECKS-DONE
