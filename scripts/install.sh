#!/usr/bin/env bash
# Installs tfctl as a packaged tool would be: the binary (without debug info), its man pages
# (`man tfctl`, `man tfctl-up`, `man tfctl.kdl`) and shell completions.
#
#   PREFIX   where it goes (default /usr/local): PREFIX/bin, PREFIX/share/man/man{1,5},
#            PREFIX/share/bash-completion/completions, PREFIX/share/zsh/site-functions,
#            PREFIX/share/fish/vendor_completions.d
#   DESTDIR  a staging root for packagers (default: none)
#   TFCTL_BIN  install this already built binary instead of building one (cargo build
#            --release, honouring CARGO_TARGET_DIR)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PREFIX:-/usr/local}
root="${DESTDIR:-}$prefix"

bin=${TFCTL_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p tfctl
  bin="${CARGO_TARGET_DIR:-$here/target}/release/tfctl"
fi
[ -x "$bin" ] || { echo "install.sh: $bin is not an executable tfctl" >&2; exit 1; }

install -d "$root/bin" "$root/share/man/man1" "$root/share/man/man5" \
  "$root/share/bash-completion/completions" "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d"
# Debug info is for developers (a debug build is ~60 MB, the stripped one ~11 MB).
install -m 0755 -s "$bin" "$root/bin/tfctl"
install -m 0644 "$here"/man/*.1 "$root/share/man/man1/"
install -m 0644 "$here"/man/*.5 "$root/share/man/man5/"
"$root/bin/tfctl" completions bash > "$root/share/bash-completion/completions/tfctl"
"$root/bin/tfctl" completions zsh > "$root/share/zsh/site-functions/_tfctl"
"$root/bin/tfctl" completions fish > "$root/share/fish/vendor_completions.d/tfctl.fish"
echo "installed tfctl in $root/bin, its man pages in $root/share/man, completions for bash, zsh and fish"
