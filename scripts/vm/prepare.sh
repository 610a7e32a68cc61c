#!/usr/bin/env bash
# Builds what scripts/vm/run.sh boots: Debian's stock kernels, fetched with `apt-get download`
# and unpacked with `dpkg -x` (nothing is installed on this machine), and one Debian 12 root
# filesystem made by mmdebstrap, with systemd, D-Bus and an initramfs per kernel.
#
#   scripts/vm/prepare.sh            # kernels: bookworm (6.1), bullseye (5.10), backports (6.12)
#
# Everything goes to $TFCTL_VM_CACHE (default /var/tmp/tfctl-vm); a second run reuses it.
# The mirror is the one this machine's apt already uses (or $TFCTL_VM_MIRROR). Run as root.
set -euo pipefail

cache=${TFCTL_VM_CACHE:-/var/tmp/tfctl-vm}
mkdir -p "$cache"
log() { printf '[prepare %s] %s\n' "$(date +%T)" "$*" >&2; }

need=()
for p in qemu-system-x86 mmdebstrap e2fsprogs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The Debian mirror this host's apt is set up with: the first deb822 or one-line source whose
# suite is a release (not -security, not -updates).
mirror=${TFCTL_VM_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
    | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit} /^deb / && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' || true)
fi
[ -n "$mirror" ] || { echo "prepare.sh: no Debian mirror found in /etc/apt; set TFCTL_VM_MIRROR" >&2; exit 1; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# A private apt for one suite: its own sources, lists and cache, so this machine's apt is
# untouched.
apt_for() {
  local suite=$1 dir="$cache/apt/$1"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  echo "deb [signed-by=$keyring] $mirror $suite main" > "$dir/sources.list"
  echo "-o Dir::Etc::SourceList=$dir/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$dir/lists -o Dir::Cache=$dir/cache -o Dir::State::status=/dev/null -o APT::Architecture=amd64 -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root"
}

# kernel NAME SUITE: the newest linux-image-*-amd64 that SUITE's linux-image-amd64 points at
# (the backports suite has no metapackage of that name in main without a pin: ask for it
# directly), unpacked into $cache/kernels/NAME.
kernel() {
  local name=$1 suite=$2 opts dest="$cache/kernels/$1"
  if [ -s "$dest/version" ]; then log "kernel $name: $(cat "$dest/version") (cached)"; return 0; fi
  opts=$(apt_for "$suite")
  # shellcheck disable=SC2086
  if ! apt-get $opts -qq update 2>"$cache/apt/$suite.err"; then
    log "kernel $name: suite $suite cannot be reached: $(tr '\n' ' ' < "$cache/apt/$suite.err")"
    return 1
  fi
  local pkg
  # shellcheck disable=SC2086
  pkg=$(apt-cache $opts depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    # shellcheck disable=SC2086
    pkg=$(apt-cache $opts pkgnames linux-image- 2>/dev/null | grep -E '^linux-image-[0-9.]+-[0-9]+(\+bpo)?-amd64$' | sort -V | tail -1)
  fi
  [ -n "$pkg" ] || { log "kernel $name: no linux-image package in $suite"; return 1; }
  rm -rf "$dest" && mkdir -p "$dest/deb"
  log "kernel $name: $pkg from $suite"
  # shellcheck disable=SC2086
  (cd "$dest/deb" && apt-get $opts -qq download "$pkg")
  dpkg -x "$dest"/deb/*.deb "$dest/tree"
  basename "$(ls -d "$dest"/tree/lib/modules/* 2>/dev/null || ls -d "$dest"/tree/usr/lib/modules/*)" > "$dest/version"
  log "kernel $name: $(cat "$dest/version")"
}

failed_kernels=()
kernel bookworm bookworm || failed_kernels+=(bookworm)
kernel bullseye bullseye || failed_kernels+=(bullseye)
kernel backports bookworm-backports || kernel backports trixie || failed_kernels+=(backports)

# The root filesystem: Debian 12 with systemd as init, D-Bus, the tools the checks use.
rootfs="$cache/rootfs"
if [ ! -e "$rootfs/.done" ]; then
  log "rootfs: mmdebstrap bookworm (a few minutes)"
  rm -rf "$rootfs"
  mmdebstrap --quiet --variant=minbase \
    --include=systemd,systemd-sysv,dbus,kmod,initramfs-tools,procps,iproute2,nftables,util-linux,mount,busybox-static,zstd \
    --customize-hook='echo tfctl-vm > "$1/etc/hostname"' \
    --customize-hook='chroot "$1" passwd -d root >/dev/null' \
    --customize-hook='ln -sf /dev/null "$1/etc/systemd/system/serial-getty@ttyS0.service"' \
    --customize-hook='ln -sf /dev/null "$1/etc/systemd/system/getty@tty1.service"' \
    --customize-hook='printf "/dev/vda / ext4 rw 0 1\n" > "$1/etc/fstab"' \
    bookworm "$rootfs" "$mirror" >&2
  touch "$rootfs/.done"
fi

# Each kernel's modules go into the shared rootfs for a moment, and an initramfs (virtio_blk and ext4 are
# modules in Debian's kernels) is made for it there.
for k in "$cache"/kernels/*/; do
  k=${k%/}; v=$(cat "$k/version")
  [ -s "$k/initrd.img" ] && continue
  log "initramfs for $v"
  mkdir -p "$rootfs/lib/modules"
  rm -rf "${rootfs:?}/lib/modules/$v"
  cp -a "$(ls -d "$k"/tree/lib/modules/"$v" 2>/dev/null || ls -d "$k"/tree/usr/lib/modules/"$v")" "$rootfs/lib/modules/$v"
  cp "$k"/tree/boot/config-"$v" "$rootfs/boot/" 2>/dev/null || true
  chroot "$rootfs" depmod -a "$v"
  chroot "$rootfs" mkinitramfs -o "/boot/initrd.img-$v" "$v" 2>/dev/null
  mv "$rootfs/boot/initrd.img-$v" "$k/initrd.img"
  cp "$k/tree/boot/vmlinuz-$v" "$k/vmlinuz"
  # Out of the shared rootfs again: run.sh puts only the booted kernel's modules in the image.
  rm -rf "$k/modules" && mv "$rootfs/lib/modules/$v" "$k/modules"
  # The package and its unpacked tree are not needed any more (about 500 MB a kernel).
  rm -rf "$k/tree" "$k/deb"
done

log "ready in $cache"
if [ ${#failed_kernels[@]} -gt 0 ]; then
  log "kernels not available: ${failed_kernels[*]}"
fi
