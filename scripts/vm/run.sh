#!/usr/bin/env bash
# Boots Debian's stock kernels under qemu (software emulation: no KVM here) on the Debian 12 root
# filesystem scripts/vm/prepare.sh builds, runs scripts/vm/guest-checks.sh inside with this
# tree's tfctl, and prints a PASS/FAIL table per kernel and init. Exits non-zero if a check
# failed or a guest did not report.
#
#   scripts/vm/run.sh                                   # every kernel, with and without systemd
#   KERNELS="bookworm" MODES="systemd" scripts/vm/run.sh
#   TFCTL_BIN=target/release/tfctl scripts/vm/run.sh
#
# kernels: bookworm (Debian 12, 6.1), bullseye (Debian 11, 5.10), backports (6.12);
# modes: systemd (systemd as PID 1, D-Bus, cgroup v2 only), init (a shell script as PID 1, no
# systemd, cgroup2 mounted by hand). The guest has no network device: nothing leaves it.
# A guest boot and run takes 1.5 to 4 minutes under TCG. Logs: $TFCTL_VM_CACHE/logs/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${TFCTL_VM_CACHE:-/var/tmp/tfctl-vm}
kernels=${KERNELS:-bookworm bullseye backports}
modes=${MODES:-systemd init}
bin=${TFCTL_BIN:-$repo/target/debug/tfctl}
guest_timeout=${TFCTL_VM_TIMEOUT:-600}
log() { printf '[vm %s] %s\n' "$(date +%T)" "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (it builds disk images and runs qemu)" >&2; exit 1; }
"$here/prepare.sh"
[ -x "$bin" ] || { echo "run.sh: no tfctl at $bin: cargo build -p tfctl first (or set TFCTL_BIN)" >&2; exit 1; }
[ -d "$repo/samples/images/busybox" ] || { echo "run.sh: samples/images/busybox missing: run scripts/setup.sh" >&2; exit 1; }

# What goes into every guest at /opt/tfctl: tfctl (debug info stripped: the image is smaller and
# builds faster), the busybox image, the samples, the checks and the cgroup_real test binary.
payload="$cache/payload"
rm -rf "$payload" && mkdir -p "$payload/images" "$payload/samples"
objcopy --strip-debug "$bin" "$payload/tfctl"
cp -a "$repo/samples/images/busybox" "$payload/images/busybox"
cp "$repo"/samples/*.kdl "$payload/samples/"
ln -s ../images "$payload/samples/images"
cp "$here"/guest-checks.sh "$here"/guest-init.sh "$payload/"
cp -r "$here/apps" "$payload/apps"
real_test=$(ls -t "${CARGO_TARGET_DIR:-$repo/target}"/debug/deps/cgroup_real-* 2>/dev/null | grep -v '\.d$' | head -1 || true)
if [ -n "$real_test" ]; then
  objcopy --strip-debug "$real_test" "$payload/cgroup_real"
  # The test makes device nodes under the CARGO_TARGET_TMPDIR it was built with.
  echo "${CARGO_TARGET_DIR:-$repo/target}/tmp" > "$payload/cgroup_real.tmpdir"
fi

mkdir -p "$cache/logs"
results="$cache/logs/results.txt"
: > "$results"
status=0
for k in $kernels; do
  kdir="$cache/kernels/$k"
  if [ ! -s "$kdir/vmlinuz" ]; then
    printf '%-10s %-8s %-34s %s\n' "$k" "-" "kernel" "FAIL (not fetched: see prepare.sh output)" >> "$results"
    status=1
    continue
  fi
  v=$(cat "$kdir/version")
  for m in $modes; do
    log "$k ($v), $m: building the disk"
    stage="$cache/stage"
    rm -rf "$stage"
    cp -al "$cache/rootfs" "$stage"
    mkdir -p "$stage/lib/modules"
    cp -al "$kdir/modules" "$stage/lib/modules/$v"
    cp -a "$payload" "$stage/opt/tfctl"
    cat > "$stage/etc/systemd/system/tfctl-guest-checks.service" <<EOF
[Unit]
Description=tfctl guest checks
# Not After=multi-user.target: that target is ordered after what it wants (a cycle).
After=basic.target dbus.service
[Service]
Type=oneshot
ExecStart=/opt/tfctl/guest-checks.sh systemd
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=0
[Install]
WantedBy=multi-user.target
EOF
    # Powers off once the checks are over, however they ended (a unit of its own: a command of
    # the checks' unit could not start if its cgroup were left unusable).
    cat > "$stage/etc/systemd/system/tfctl-guest-poweroff.service" <<EOF
[Unit]
Description=power off after the tfctl guest checks
After=tfctl-guest-checks.service
[Service]
Type=oneshot
ExecStart=/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
EOF
    for u in tfctl-guest-checks tfctl-guest-poweroff; do
      ln -sf ../$u.service "$stage/etc/systemd/system/multi-user.target.wants/$u.service"
    done
    img="$cache/disk.img"
    rm -f "$img"
    mke2fs -q -t ext4 -d "$stage" -L root "$img" 3G
    rm -rf "$stage"
    case $m in
      systemd) init="init=/lib/systemd/systemd systemd.unified_cgroup_hierarchy=1" ;;
      init) init="init=/opt/tfctl/guest-init.sh" ;;
    esac
    console="$cache/logs/$k-$m.log"
    # One host thread for both vCPUs: with multi-threaded TCG (qemu 7.2) a 6.12 guest took an
    # int3 oops in the page allocator, a race with the kernel patching its own code.
    log "$k ($v), $m: booting (tcg)"
    start=$(date +%s)
    timeout "$guest_timeout" qemu-system-x86_64 -accel tcg,thread=single -cpu max -smp 2 -m 2048 \
      -nographic -no-reboot -nic none \
      -kernel "$kdir/vmlinuz" -initrd "$kdir/initrd.img" \
      -drive "file=$img,format=raw,if=virtio" \
      -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet loglevel=3 $init" \
      > "$console" 2>&1 < /dev/null || true
    took=$(( $(date +%s) - start ))
    log "$k ($v), $m: guest ran ${took}s"
    tr -d '\r' < "$console" | awk -v k="$k" -v m="$m" '/^CHECK / {d=""; for(i=4;i<=NF;i++) d=d" "$i; printf "%-10s %-8s %-34s %s%s\n", k, m, $2, $3, (d=="" ? "" : " ("substr(d,2)")")}' >> "$results"
    if ! grep -q '^TFCTL-CHECKS-DONE' "$console"; then
      printf '%-10s %-8s %-34s %s\n' "$k" "$m" "guest-finished" "FAIL (no end marker after ${took}s: see $console)" >> "$results"
    fi
    printf '%-10s %-8s %-34s %s\n' "$k" "$m" "boot+checks-seconds" "$took" >> "$results"
    rm -f "$img"
  done
done

printf '%-10s %-8s %-34s %s\n' KERNEL INIT CHECK RESULT
cat "$results"
grep -qE ' FAIL( |$)' "$results" && status=1
# The closing count, as test runners print it.
echo "vm: $(grep -cE ' PASS( |$)' "$results") passed, $(grep -cE ' FAIL( |$)' "$results") failed"
exit $status
