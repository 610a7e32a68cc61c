#!/usr/bin/env bash
# Installs everything tfctl's build, tests and benchmarks need on a fresh Debian 12 machine.
# Idempotent: packages already present are left alone. Run as root.
set -euo pipefail
command -v cargo >/dev/null || { echo "setup.sh: a Rust toolchain (cargo, from rustup) is needed first" >&2; exit 1; }

packages=(
  # build: nftnl-sys and mnl-sys link against these
  pkg-config libnftnl-dev libmnl-dev
  # tests: runtime/tests/seccomp_differential.rs compares the seccomp compiler with libseccomp
  libseccomp-dev
  # the busybox image the samples and tests are made of
  busybox-static
  # tests: a real OCI registry, tools that check what tfctl did, htpasswd for Basic auth
  docker-registry nftables iproute2 strace openssl apache2-utils python3 python3-pip curl wget procps util-linux zstd
  # tests: Docker Engine beside tfctl (tests/common/docker.rs starts its own dockerd per test;
  # docker.io brings containerd, runc and iptables-nft) and skopeo to load images into it
  docker.io
  # benchmark scripts: JSON and arithmetic
  jq bc
  # benchmarks: the peers tfctl is compared with
  skopeo umoci crun hyperfine docker-compose
  # scripts/real-images.sh (tests/real_stack.rs, samples/real-stack.kdl): Debian-built images of
  # real services; mmdebstrap's root mode needs only apt, and the archive's keyring to check it
  mmdebstrap debian-archive-keyring
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the registry as a service on :5000, and Docker (its socket-activated daemon,
  # with its own containerd) on the host's network; tests run their own, in their own namespaces.
  if command -v systemctl >/dev/null 2>&1; then
    for unit in docker-registry docker.socket docker.service containerd.service; do
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
  # Without systemd, the sysvinit scripts (policy-rc.d may have kept them from starting).
  for service in docker containerd; do
    if [ -x "/etc/init.d/$service" ]; then
      "/etc/init.d/$service" stop >/dev/null 2>&1 || true
      update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
  done
  pkill -x docker-registry 2>/dev/null || true
fi

# tests/export_k8s.rs validates `tfctl export kubernetes` output offline against the Kubernetes
# OpenAPI schemas. Debian's python is externally managed: the package goes beside it.
command -v kubernetes-validate >/dev/null || python3 -m pip install -q --break-system-packages kubernetes-validate

# The image every sample uses (`image "oci:images/busybox"`), built from busybox-static so the
# samples run offline. Reproducible: rebuilding gives the same digests.
here=$(cd "$(dirname "$0")/.." && pwd)
python3 "$here/scripts/busybox-image.py" "$here/samples/images/busybox" >/dev/null
