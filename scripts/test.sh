#!/usr/bin/env bash
# Runs tfctl's whole test suite, as root: installs what the tests need (scripts/setup.sh), keeps
# the benchmark scripts working (`bench/run.sh --smoke`), then builds and runs every test,
# including the replay of the committed fuzz corpora.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the tests create namespaces, mounts, cgroups and nftables rules: run it as root" >&2
  exit 2
fi
# A test that cannot run here (not root, no cgroup2 controllers...) fails under CI instead of
# printing SKIP and passing (runtime/tests/common/skip.rs).
export CI=true
# Except the cgroup v2 controller checks on a host that has none (cgroup v1 or hybrid): the
# virtual machine step at the end runs the same test binary on cgroup v2 and fails the run if it
# fails there.
if ! grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  export TFCTL_CHECKED_ELSEWHERE="v2 backend limits"
fi
scripts/setup.sh
cargo build --workspace --locked
bench/run.sh --smoke
cargo test --workspace --locked --no-fail-fast 2>&1
# Again with the mount routes tfctl keeps for older kernels (overlay by mount(2) before Linux
# 6.8, secrets cloned from a private mount namespace before 6.15, tmpfs without noswap before
# 6.4), forced on this one: both routes are proven on every run.
TFCTL_FORCE_LEGACY_MOUNT=1 cargo test --locked --no-fail-fast -p tfctl --test image_overlay --test secrets --test run 2>&1
TFCTL_FORCE_LEGACY_MOUNT=1 cargo test --locked --no-fail-fast -p tfctl-runtime --test secrets_mount --test start_container 2>&1
# A real distribution kernel with cgroup v2 only: Debian 12's stock 6.1, booted under qemu
# (software emulation) with tfctl's checks inside (run, limits enforced, OOM, fork loop, devices,
# up/exec/down, a killed supervisor, nothing left behind). The other kernels and systemd as PID 1:
# scripts/vm/run.sh with KERNELS and MODES.
cargo build --locked -p tfctl-runtime --test cgroup_real 2>&1
KERNELS=bookworm MODES=init scripts/vm/run.sh
