#!/usr/bin/env bash
# OCI runtime conformance, side by side: builds the opencontainers/runtime-tools validation suite
# from Debian's source package (with Debian's Go and Go library packages, offline, as Debian builds
# it) and runs every validation test under runc and under the runtime being measured (by default
# `tfctl oci`), then prints one table of both results. Upstream's repository is not reachable from
# CI; Debian's archive is, which is why the suite comes from there.
#
#   scripts/oci-conformance.sh [-o FILE.md] [--runtime PATH] [--name LABEL] [--timeout SECONDS]
#                              [--only REGEX] [--source DIR|TARBALL] [--build-only]
#
# Exit status: 0 when the runtime passes every test runc passes plus the hooks and seccomp tests,
# 1 when it does not, 2 when the suite could not be set up. Runs as root (apt, containers).
set -euo pipefail

PKG=golang-github-opencontainers-runtime-tools
CACHE=${TFCTL_OCI_CONFORMANCE_CACHE:-/var/cache/tfctl-oci-conformance}
SRC_LIST=/etc/apt/sources.list.d/tfctl-oci-conformance-src.sources
REPO=$(cd "$(dirname "$0")/.." && pwd)
# The tests the goal names beyond "what runc passes": every hook test and the seccomp test.
GOAL_EXTRA='^(hooks|hooks_stdin|prestart|prestart_fail|poststart|poststart_fail|poststop|poststop_fail|linux_seccomp)$'

OUT=
RUNTIME=
NAME=tfctl
TIMEOUT=120
ONLY=
SOURCE=
BUILD_ONLY=

die() { echo "oci-conformance: $*" >&2; exit 2; }
log() { echo "oci-conformance: $*" >&2; }

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF

  -o FILE          also write the result table as markdown to FILE
  --runtime PATH   runtime under test, called like runc (default: a wrapper running
                   \`tfctl oci --root DIR "\$@"\`, tfctl from TFCTL_BIN or target/{release,debug})
  --name LABEL     column title for that runtime (default: tfctl)
  --timeout S      seconds each validation test may run, per runtime (default: $TIMEOUT)
  --only REGEX     run only the tests whose name matches REGEX (grep -E)
  --source PATH    runtime-tools source tree or tarball of the packaged upstream commit, for an
                   archive that serves the .dsc but not the tarballs (apt-get source fails)
  --build-only     set up and build the suite, run nothing
Cache: $CACHE (TFCTL_OCI_CONFORMANCE_CACHE)
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
    -o) OUT=${2:?-o needs a file}; shift 2 ;;
    --runtime) RUNTIME=${2:?--runtime needs a path}; shift 2 ;;
    --name) NAME=${2:?--name needs a label}; shift 2 ;;
    --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
    --only) ONLY=${2:?--only needs a regex}; shift 2 ;;
    --source) SOURCE=${2:?--source needs a path}; shift 2 ;;
    --build-only) BUILD_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || die "installs packages and runs containers: run it as root"
case $TIMEOUT in ''|*[!0-9]*) die "--timeout takes whole seconds, not '$TIMEOUT'" ;; esac
if [ -n "$OUT" ]; then OUT=$(realpath -m "$OUT"); fi
if [ -n "$SOURCE" ]; then SOURCE=$(realpath -e "$SOURCE") || die "--source: no such file or folder"; fi

mkdir -p "$CACHE"
# Two runs at once would share the cache and the runtimes' state folders.
exec 9>"$CACHE/.lock"
flock -n 9 || die "another run holds $CACHE/.lock"

# --- 1. The suite from Debian's source package ---------------------------------------------------

# A deb-src entry for the archive the machine already uses (the first stanza of debian.sources:
# same mirror, suites, components and key), in a file of its own so it is added once and
# removed cleanly.
ensure_deb_src() {
  local want
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    want=$(awk 'BEGIN { RS = ""; FS = "\n" }
      NR == 1 { for (i = 1; i <= NF; i++) {
        if ($i ~ /^#/) continue
        if ($i ~ /^Types:/) print "Types: deb-src"; else print $i } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "${want:-}" ] || ! grep -q '^URIs:' <<<"$want"; then
    want=$(printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg')
  fi
  want="# Added by tfctl scripts/oci-conformance.sh: Debian sources for the OCI validation suite.
$want"
  if [ "$(cat "$SRC_LIST" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" >"$SRC_LIST"
    log "wrote $SRC_LIST"
    apt-get update -qq
  elif [ -z "$(apt-cache showsrc "$PKG" 2>/dev/null)" ]; then
    apt-get update -qq
  fi
  [ -n "$(apt-cache showsrc "$PKG" 2>/dev/null)" ] || die "apt knows no source package $PKG after apt-get update: check $SRC_LIST"
}

# Installs only what is missing, so a cached run does not touch apt.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_deb_src
VERSION=$(apt-cache showsrc "$PKG" | awk '/^Version:/ { print $2 }' | sort -V | tail -n 1)
BIN=$CACHE/bin/$VERSION
ORIGIN=${SOURCE:-debian $PKG $VERSION}
apt_install runc ca-certificates

# A build is reused whatever it was built from, unless --source names another tree.
BUILT_FROM=$(cat "$BIN/.built" 2>/dev/null || true)
if [ -z "$BUILT_FROM" ] || { [ -n "$SOURCE" ] && [ "$BUILT_FROM" != "$ORIGIN" ]; }; then
  start=$(date +%s)
  apt_install golang-go dpkg-dev
  # Debian's build dependencies: its Go library packages in /usr/share/gocode.
  DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$PKG" >&2
  # The validation tests import google/uuid, which Debian's build (library only) does not need.
  apt_install golang-github-google-uuid-dev

  SRCROOT=$CACHE/src/$VERSION
  if [ -n "$SOURCE" ]; then
    log "using $SOURCE instead of apt-get source"
    rm -rf "$SRCROOT" && mkdir -p "$SRCROOT"
    if [ -d "$SOURCE" ]; then cp -a "$SOURCE" "$SRCROOT/tree"
    else mkdir "$SRCROOT/tree" && tar -xf "$SOURCE" -C "$SRCROOT/tree" --strip-components=1; fi
    TREE=$SRCROOT/tree
  else
    TREE=$(find "$SRCROOT" -mindepth 1 -maxdepth 1 -type d -name "$PKG-*" 2>/dev/null | head -n 1 || true)
    if [ -z "$TREE" ]; then
      rm -rf "$SRCROOT" && mkdir -p "$SRCROOT"
      # apt downloads as _apt where that user can write.
      chown _apt "$SRCROOT" 2>/dev/null || true
      (cd "$SRCROOT" && apt-get source -qq "$PKG=$VERSION" >&2) || die "apt-get source $PKG=$VERSION failed (apt's errors above; a 404 means
  this archive does not serve the package's source tarballs). Pass --source with a runtime-tools tree or tarball of the upstream commit in the version
  ($VERSION), or point $SRC_LIST at a mirror that has the tarballs."
      TREE=$(find "$SRCROOT" -mindepth 1 -maxdepth 1 -type d -name "$PKG-*" | head -n 1 || true)
    fi
  fi
  [ -d "$TREE/validation" ] && [ -d "$TREE/cmd/runtimetest" ] || die "$TREE has no validation/ and cmd/runtimetest: not a runtime-tools source tree"

  # Built the way dh-golang builds Debian's Go packages: GOPATH mode, offline, the package's tree
  # under its import path and Debian's library packages for its imports. A vendored module stays
  # only where Debian packages none (the TAP writer, mndrix/tap-go).
  GOPATH_DIR=$CACHE/gopath/$VERSION
  IMPORT=github.com/opencontainers/runtime-tools
  rm -rf "$GOPATH_DIR" && mkdir -p "$GOPATH_DIR/src/${IMPORT%/*}"
  cp -a "$TREE" "$GOPATH_DIR/src/$IMPORT"
  W=$GOPATH_DIR/src/$IMPORT
  if [ -f "$W/vendor/modules.txt" ]; then
    for mod in $(awk '/^# / { print $2 }' "$W/vendor/modules.txt"); do
      if [ -d "/usr/share/gocode/src/$mod" ]; then rm -rf "${W:?}/vendor/$mod"
      else log "no Debian package has Go module $mod: using the source package's vendored copy"; fi
    done
  fi
  export GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH=$GOPATH_DIR:/usr/share/gocode GOCACHE=$CACHE/gocache
  rm -rf "$BIN" && mkdir -p "$BIN/out"
  (cd "$W" && go build -o "$BIN/out/" ./validation/...) >&2 || die "building the validation tests failed (above)"
  # runtimetest runs inside each container's busybox rootfs: static.
  (cd "$W" && CGO_ENABLED=0 go build -o "$BIN/runtimetest" ./cmd/runtimetest) >&2 || die "building runtimetest failed (above)"
  for t in "$BIN"/out/*; do mv "$t" "$BIN/$(basename "$t").t"; done
  rmdir "$BIN/out"
  ARCH=$(go env GOARCH)
  cp "$W/rootfs-$ARCH.tar.gz" "$BIN/" || die "the source has no rootfs-$ARCH.tar.gz, which every test unpacks"
  printf '%s\n' "$ORIGIN" >"$BIN/.built"
  BUILT_FROM=$ORIGIN
  log "built $(ls "$BIN"/*.t | wc -l) validation tests in $(( $(date +%s) - start )) s (apt, source, go build) into $BIN"
else
  log "using the validation tests built in $BIN"
fi
[ -z "$BUILD_ONLY" ] || exit 0

# --- 2. Run every test under each runtime --------------------------------------------------------

# The runtime under test by default: tfctl's runc-compatible command line.
if [ -z "$RUNTIME" ]; then
  TFCTL=${TFCTL_BIN:-}
  if [ -z "$TFCTL" ]; then
    for c in "${CARGO_TARGET_DIR:-$REPO/target}"/{release,debug}/tfctl; do
      if [ -x "$c" ]; then TFCTL=$c; break; fi
    done
  fi
  [ -n "$TFCTL" ] && [ -x "$TFCTL" ] || die "no tfctl binary: build it (cargo build --release) or set TFCTL_BIN"
  TFCTL=$(realpath "$TFCTL")
fi

RUNDIR=$CACHE/run

# Removes what a test left: its containers (through the runtime itself), then any mount still
# under its temporary folder, then the folder.
clean_after() { # label, wrapper, tmpdir
  local label=$1 w=$2 tmp=$3 id m
  if [ -f "$RUNDIR/$label/ids" ]; then
    sort -u "$RUNDIR/$label/ids" | while read -r id; do
      "$w" delete --force "$id" >/dev/null 2>&1 || true
    done
    rm -f "$RUNDIR/$label/ids"
  fi
  findmnt -rn -o TARGET | awk -v p="$tmp" '$0 == p || index($0, p "/") == 1' | sort -r | while read -r m; do
    log "unmounting leftover $m"; umount -l "$m" || true
  done
  rm -rf "$tmp"
  # The cgroup tests use fixed paths (runtime-tools' cgroups.AbsCgroupPath "/cgrouptest" and
  # RelCgroupPath "testdir/cgrouptest/container"), and delete_only_create_resources makes
  # pids/cgrouptest itself; a failed test leaves them, and the next test would find them.
  find /sys/fs/cgroup -depth -type d -name cgrouptest 2>/dev/null | while read -r m; do
    [ ! -d "$m/container" ] || rmdir "$m/container" 2>/dev/null || true
    if rmdir "$m" 2>/dev/null; then
      log "removed leftover cgroup $m"
      case $m in */testdir/cgrouptest) rmdir "${m%/cgrouptest}" 2>/dev/null || true ;; esac
    fi
  done || true
}

# A run that was interrupted may have left containers in its state roots: delete them (its
# wrappers recorded their IDs) before its folder goes.
for w in "$RUNDIR"/*/runtime; do
  [ -x "$w" ] || continue
  label=${w%/runtime}; label=${label##*/}
  clean_after "$label" "$w" "$RUNDIR/$label/tmp"
done
rm -rf "$RUNDIR" && mkdir -p "$RUNDIR"
# The test running when the harness is stopped is cleaned up the same way.
CURRENT=() TEST_PID=
stop_current() {
  if [ -n "$TEST_PID" ]; then kill -TERM "$TEST_PID" 2>/dev/null || true; wait "$TEST_PID" 2>/dev/null || true; fi
  if [ ${#CURRENT[@]} -gt 0 ]; then clean_after "${CURRENT[@]}"; fi
}
trap stop_current EXIT
trap 'exit 130' INT TERM

# A wrapper per runtime: each keeps its state in a root of this run, and records the ID of every
# container the tests create so that leftovers (a failed or timed-out test) are deleted after it.
make_wrapper() { # label, command words...
  local label=$1; shift
  local w=$RUNDIR/$label/runtime
  mkdir -p "$RUNDIR/$label"
  {
    echo '#!/bin/sh'
    echo "# $label for the OCI validation suite (scripts/oci-conformance.sh)"
    echo 'for a in "$@"; do case $a in create|run) creating=1 ;; esac; last=$a; done'
    echo "[ -z \"\${creating:-}\" ] || echo \"\$last\" >>'$RUNDIR/$label/ids'"
    printf 'exec'; printf ' %q' "$@"; echo ' "$@"'
  } >"$w"
  chmod +x "$w"
  echo "$w"
}

RUNC_W=$(make_wrapper runc "$(command -v runc)" --root "$RUNDIR/runc/state")
if [ -n "$RUNTIME" ]; then
  TEST_W=$(make_wrapper "$NAME" "$(realpath "$RUNTIME")")
else
  TEST_W=$(make_wrapper "$NAME" "$TFCTL" oci --root "$RUNDIR/$NAME/state")
fi

TESTS=$(cd "$BIN" && ls *.t | sed 's/\.t$//' | { if [ -n "$ONLY" ]; then grep -E "$ONLY" || true; else cat; fi })
[ -n "$TESTS" ] || die "no validation test matches --only '$ONLY'"

# One word per result, for the summary: pass, skip (every assertion skipped), fail, timeout; and
# the text for the table.
classify() { # tap file, exit status -> "kind|text"
  local f=$1 rc=$2 total notok skipped plan err
  total=$(grep -cE '^(not )?ok( |$)' "$f" || true)
  notok=$(grep -E '^not ok( |$)' "$f" | grep -vc '# TODO' || true)
  skipped=$(grep -E '^ok( |$)' "$f" | grep -c '# SKIP' || true)
  plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$f" | head -n 1 || true)
  # Some tests report their one finding as a YAML diagnostic ("error": "...") with no assertion.
  err=$(sed -n 's/^ *"error": "\(.*\)$/\1/p' "$f" | head -n 1 | sed 's/\\n.*//; s/",\{0,1\}$//; s/|/\\|/g' | cut -c1-90 || true)
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "timeout|timeout (${TIMEOUT} s)"
  elif [ "$total" = 0 ] && [ -n "$err" ]; then echo "fail|fail: $err"
  # The lifecycle and *_fail tests print only what went wrong (util.Fatal exits 1): a clean exit
  # with no assertion and no error is their pass.
  elif [ "$total" = 0 ] && [ "$rc" = 0 ]; then echo "pass|pass (0 assertions, no error)"
  elif [ "$total" = 0 ]; then echo "fail|fail (exit $rc, no assertion)"
  elif [ "$notok" != 0 ]; then echo "fail|fail $notok of $total"
  elif [ "$rc" != 0 ]; then echo "fail|fail (exit $rc after $total ok)"
  elif [ -n "$plan" ] && [ "$plan" != "$total" ]; then echo "fail|fail ($total of $plan planned)"
  elif [ "$skipped" = "$total" ]; then echo "skip|skip (all $total)"
  else echo "pass|pass"; fi
}

declare -A KIND TEXT
run_one() { # label, wrapper, test
  local label=$1 w=$2 t=$3 tmp out rc
  tmp=$RUNDIR/$label/tmp/$t
  out=$RUNDIR/$label/$t.tap
  mkdir -p "$tmp"
  CURRENT=("$label" "$w" "$tmp")
  set +e
  # The tests look for runtimetest and the rootfs tarball in the working folder, and make their
  # bundles under TMPDIR.
  (cd "$BIN" && RUNTIME=$w TMPDIR=$tmp exec timeout -k 10 "$TIMEOUT" "./$t.t") >"$out" 2>&1 </dev/null &
  TEST_PID=$!
  wait "$TEST_PID"
  rc=$?
  TEST_PID=
  set -e
  clean_after "$label" "$w" "$tmp"
  CURRENT=()
  local r; r=$(classify "$out" "$rc")
  KIND[$label/$t]=${r%%|*}
  TEXT[$label/$t]=${r#*|}
}

for label in runc "$NAME"; do
  if [ "$label" = runc ]; then w=$RUNC_W; else w=$TEST_W; fi
  start=$(date +%s)
  for t in $TESTS; do
    run_one "$label" "$w" "$t"
    log "$label $t: ${TEXT[$label/$t]}"
  done
  log "$label: all tests in $(( $(date +%s) - start )) s; TAP output in $RUNDIR/$label/"
done
left=$(runc --root "$RUNDIR/runc/state" list -q 2>/dev/null || true)
[ -z "$left" ] || log "runc still lists containers after cleanup: $left"

# --- 3. The table ---------------------------------------------------------------------------------

count() { # label kind
  local n=0 t
  for t in $TESTS; do [ "${KIND[$1/$t]}" != "$2" ] || n=$((n + 1)); done
  echo $n
}
both=0 runc_pass=0 goal=0 goal_met=0
for t in $TESTS; do
  if [ "${KIND[runc/$t]}" = pass ]; then
    runc_pass=$((runc_pass + 1))
    [ "${KIND[$NAME/$t]}" != pass ] || both=$((both + 1))
  fi
  if [ "${KIND[runc/$t]}" = pass ] || grep -qE "$GOAL_EXTRA" <<<"$t"; then
    goal=$((goal + 1))
    [ "${KIND[$NAME/$t]}" != pass ] || goal_met=$((goal_met + 1))
  fi
done
ntests=$(wc -w <<<"$TESTS")

table() {
  echo "| test | runc $(runc --version | awk 'NR == 1 { print $3 }') | $NAME |"
  echo "| --- | --- | --- |"
  for t in $TESTS; do echo "| $t | ${TEXT[runc/$t]} | ${TEXT[$NAME/$t]} |"; done
  echo
  for label in runc "$NAME"; do
    echo "- $label: $(count "$label" pass) pass, $(count "$label" skip) skip (every assertion skipped), $(count "$label" fail) fail, $(count "$label" timeout) timeout, of $ntests tests."
  done
  echo "- $NAME passes $both of the $runc_pass tests runc passes; goal (those plus the hooks and seccomp tests): $goal_met of $goal."
  for label in runc "$NAME"; do
    # Tests that expect a failure (a failing hook, a bad capability or namespace path) also pass
    # for a runtime that can run nothing at all.
    if [ -n "${KIND[$label/default]:-}" ] && [ "${KIND[$label/default]}" != pass ]; then
      echo "- $label fails \`default\` (it cannot run the plain container), so its passes of the tests that expect a failure (\`*_fail\`, \`linux_ns_path_type\`) say nothing."
    fi
  done
  echo
  echo "runtime-tools $VERSION, built from ${BUILT_FROM##*/}; $(uname -sr); $(date -u +%Y-%m-%d)."
}
table
if [ -n "$OUT" ]; then table >"$OUT"; log "wrote $OUT"; fi
[ "$goal_met" = "$goal" ]
