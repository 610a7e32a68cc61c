#!/usr/bin/env bash
# tfctl against its peers doing the same work, ratios from the same run (issue 14):
#   run --rm   `tfctl run --rm IMAGE true`  vs  `docker run --rm IMAGE true` (busybox; hyperfine)
#   up         `tfctl up --wait`            vs  `docker-compose up -d`, then polled until every
#              health check passes; N busybox httpd services with a TCP health check (interval
#              1s), N = 20 and 200, and samples/real-stack.kdl (PostgreSQL, Redis, a Python app,
#              nginx; images from scripts/real-images.sh), each from nothing (the database's
#              first start initialises its cluster under both)
#   down       `tfctl down`                 vs  `docker-compose down`
# Goals: run --rm >= 50x faster than docker run --rm; up --wait of 200 busybox services under 2 s
# and >= 20x faster than docker-compose; the real stack ready no later than under docker-compose.
#
# Docker is Debian's (docker.io, Engine 20.10) started here with a data root, exec root, socket,
# cgroup parent and network namespace of its own (`nsenter --net`, not `ip netns exec`, which
# remounts /sys and leaves dockerd without cgroups); the images are loaded into it with `skopeo
# copy oci:... docker-daemon:...`, and Debian's docker-compose 1.29 talks to it through
# DOCKER_HOST. tfctl runs in another namespace with a throwaway state root (bench/app-env.bash).
# Each app file has a compose file written beside it that says the same: images, commands,
# health checks (Docker can only exec a command: busybox `nc` for TCP, python3 for HTTP), order
# (depends_on with service_healthy), volume, secret, published port, stop timeouts. What compose
# cannot say is left out (tfctl's egress deny and per-port allow rules).
#
#   bench/peers.sh               # the release build (built here unless $TFCTL_BIN is set)
#   PEERS_SIZES=20 PEERS_REAL=0 bench/peers.sh   # a shorter full run
#   bench/peers.sh --quick       # 3 services, a few runs, no real stack: a smoke of the script
#                                # (--smoke, as bench/run.sh passes it, is the same)
#
# Needs root. Whatever happens, apps and compose projects go down, dockerd and everything it
# started are stopped, and its mounts, cgroups, namespaces and folders are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in --quick | --smoke) quick=1 ;; esac
if [ $quick = 1 ]; then
  sizes=(3) runs_tfctl=5 runs_docker=3 reps=1 real=0
else
  # PEERS_SIZES="20" leaves out the 200-service round (docker-compose takes many minutes for it
  # on 2 cores); PEERS_REAL=0 the real stack.
  read -r -a sizes <<<"${PEERS_SIZES:-20 200}"
  runs_tfctl=50 runs_docker=10 reps=3 real=${PEERS_REAL:-1}
fi
for t in dockerd docker-compose skopeo hyperfine jq python3; do
  command -v $t >/dev/null || { echo "bench/peers.sh: $t is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
docker_cli=/usr/bin/docker # Debian's, the daemon's own version (another may come first in PATH)
if [ -z "${TFCTL_BIN:-}" ]; then
  cargo build --release --locked -q -p tfctl
  TFCTL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/tfctl"
fi
export TFCTL_BIN
source bench/app-env.bash peers
images=${TFCTL_REAL_IMAGES:-/var/cache/tfctl-real-images}
export TFCTL_REAL_IMAGES=$images

# Docker, in its own namespace and folders.
d="$tmp/docker"
dns="tfbench-docker-$$"
cgparent="/tfctl-bench-docker-$$"
shared_made=()
for p in /run/docker/plugins /run/docker /run/containerd/s /run/containerd; do
  [ -e "$p" ] || shared_made+=("$p")
done
export DOCKER_HOST="unix://$d/docker.sock" DOCKER_CONFIG="$d/cli"
docker() { "$docker_cli" "$@"; }
compose() { docker-compose --ansi never "$@"; }
docker_cleanup() {
  # Best effort, every step: nothing that fails here may skip the rest.
  set +e
  for f in "$tmp"/*.yml; do
    [ -e "$f" ] && compose -f "$f" down -v -t 1 >/dev/null 2>&1 || true
  done
  if [ -f "$d/docker.pid" ]; then
    pid=$(cat "$d/docker.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # What outlived it, by pid: processes in its cgroups, and containerd and its shims (their
  # command lines name its folders).
  for _ in $(seq 50); do
    left=$({ cat /sys/fs/cgroup/*"$cgparent"/cgroup.procs /sys/fs/cgroup/*"$cgparent"/*/cgroup.procs 2>/dev/null
             pgrep -f -- "$d"; } | grep -vx "$$" | sort -u)
    [ -z "$left" ] && break
    kill -KILL $left 2>/dev/null || true
    sleep 0.1
  done
  awk -v d="$d" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  find /sys/fs/cgroup/ -mindepth 2 -maxdepth 3 -type d -path "*$cgparent*" 2>/dev/null | sort -r | while read -r c; do rmdir "$c" 2>/dev/null || true; done
  ip netns del "$dns" 2>/dev/null || true
  for p in "${shared_made[@]}"; do rmdir "$p" 2>/dev/null || true; done
}
trap 'docker_cleanup; cleanup' EXIT
mkdir -p "$d/cli"
echo "{\"deprecated-key-path\": \"$d/key.json\"}" >"$d/daemon.json"
ip netns add "$dns"
nsenter --net="/run/netns/$dns" ip link set lo up
nsenter --net="/run/netns/$dns" dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
  --pidfile "$d/docker.pid" -H "$DOCKER_HOST" --cgroup-parent "$cgparent" --shutdown-timeout 2 \
  </dev/null >"$d/dockerd.log" 2>&1 &
for i in $(seq 600); do
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
  [ "$i" = 600 ] && { echo "dockerd did not start:" >&2; tail -20 "$d/dockerd.log" >&2; exit 1; }
  sleep 0.1
done
echo "Docker Engine $(docker version --format '{{.Server.Version}}'), $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'), tfctl $TFCTL_BIN"

load() { skopeo copy --quiet --dest-daemon-host "$DOCKER_HOST" "$1" "docker-daemon:$2"; }
load "oci:$image" tfbench/busybox:latest
in_ns "$bin" pull --quiet "oci:$image" >/dev/null
if [ $real = 1 ]; then
  bash scripts/real-images.sh "$images" >/dev/null
  for i in postgres redis python nginx; do
    load "oci:$images:$i" "tfbench/$i:latest"
    in_ns "$bin" pull --quiet "oci:$images:$i" >/dev/null
  done
fi

now() { date +%s.%N; }
results="$tmp/results"
: >"$results"
# record WHAT TOOL SECONDS
record() { echo "$1 $2 $3" >>"$results"; }

# --- run --rm -----------------------------------------------------------------------------------
# Both once before timing: tfctl unpacks the image into its store, Docker creates its bridge.
in_ns "$bin" run --rm "oci:$image" true
docker run --rm tfbench/busybox true
in_ns hyperfine -N --style basic --warmup 3 --runs $runs_tfctl --export-json "$tmp/run-tfctl.json" "$bin run --rm oci:$image true" >/dev/null
hyperfine -N --style basic --warmup 1 --runs $runs_docker --export-json "$tmp/run-docker.json" "$docker_cli run --rm tfbench/busybox true" >/dev/null
record run tfctl "$(jq '.results[0].median' "$tmp/run-tfctl.json")"
record run docker "$(jq '.results[0].median' "$tmp/run-docker.json")"

# --- up and down of apps --------------------------------------------------------------------------
# Busybox httpd as PID 1 of a shell that leaves on SIGTERM (busybox's httpd ignores it as PID
# 1), under both.
busybox_app() {
  local n=$1 kdl=$2 yml=$3 serve="trap 'exit 0' TERM; httpd -f -p 80 -h /var/www & wait"
  {
    echo "app \"peers$n\""
    for i in $(seq 1 "$n"); do
      printf 'container "w%d" {\n image "oci:%s"\n command "sh" "-c" "%s"\n stop-timeout "1s"\n health {\n  tcp 80\n  interval "1s"\n  retries 30\n }\n}\n' "$i" "$image" "$serve"
    done
  } >"$kdl"
  {
    echo 'version: "2.4"'
    echo 'services:'
    for i in $(seq 1 "$n"); do
      cat <<EOF
  w$i:
    image: tfbench/busybox
    command: ["sh", "-c", "$serve"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "nc", "-w", "1", "127.0.0.1", "80", "-e", "true"]
      interval: 1s
      retries: 30
EOF
    done
  } >"$yml"
}

# samples/real-stack.kdl as compose says it: the same images, commands, health checks, order,
# volume, secret, published port and stop timeouts.
real_stack_app() {
  local yml=$1 dir
  dir=$(dirname "$yml")
  mkdir -p "$dir/real-stack"
  cp samples/real-stack/app.py "$dir/real-stack/app.py"
  head -c 24 /dev/urandom | base64 >"$dir/db-password"
  chmod 644 "$dir/db-password"
  cat >"$dir/default.conf" <<'EOF'
server {
    listen 80;
    location = /nginx-health { return 200 "ok\n"; }
    location / {
        proxy_pass http://app:8000;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
}
EOF
  local http='import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)'
  cat >"$yml" <<EOF
version: "2.4"
secrets:
  db-password:
    file: ./db-password
volumes:
  db-data: {}
services:
  db:
    image: tfbench/postgres
    volumes: ["db-data:/var/lib/postgresql/data"]
    secrets: [db-password]
    environment: {POSTGRES_PASSWORD_FILE: /run/secrets/db-password, POSTGRES_DB: visits}
    healthcheck: {test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres"], interval: 1s, retries: 60}
    stop_grace_period: 30s
  cache:
    image: tfbench/redis
    healthcheck: {test: ["CMD", "redis-cli", "ping"], interval: 1s, retries: 30}
  app:
    image: tfbench/python
    command: ["python3", "/app/app.py"]
    volumes: ["./real-stack/app.py:/app/app.py:ro"]
    secrets: [db-password]
    environment: {DB_HOST: db, DB_NAME: visits, DB_PASSWORD_FILE: /run/secrets/db-password, REDIS_HOST: cache}
    depends_on: {db: {condition: service_healthy}, cache: {condition: service_healthy}}
    healthcheck: {test: ["CMD", "python3", "-c", "$http", "http://127.0.0.1:8000/health"], interval: 1s, retries: 30}
    restart: on-failure:3
    init: true
  web:
    image: tfbench/nginx
    volumes: ["./default.conf:/etc/nginx/conf.d/default.conf:ro"]
    depends_on: {app: {condition: service_healthy}}
    ports: ["8080:80"]
    healthcheck: {test: ["CMD", "python3", "-c", "$http", "http://127.0.0.1:80/nginx-health"], interval: 1s, retries: 30}
EOF
}

# One up and down under each tool; records up/down seconds as WHAT.
measure_app() {
  local what=$1 kdl=$2 yml=$3 name=$4 n=$5 t0 t1 t2 t3
  t0=$(now)
  in_ns "$bin" up --wait=10m "$kdl" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  t1=$(now)
  in_ns "$bin" down --volumes "$name" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  t2=$(now)
  record "up-$what" tfctl "$(echo "$t1 - $t0" | bc)"
  record "down-$what" tfctl "$(echo "$t2 - $t1" | bc)"

  t0=$(now)
  compose -f "$yml" -p "$name" up -d >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  t1=$(now)
  # Ready as up --wait means it: every container healthy.
  local deadline=$(($(date +%s) + 600)) healthy=0
  while :; do
    healthy=$(docker ps -q --filter "label=com.docker.compose.project=$name" --filter health=healthy | wc -l)
    [ "$healthy" = "$n" ] && break
    if [ "$(date +%s)" -gt $deadline ]; then
      echo "docker-compose: only $healthy of $n containers of $name healthy after 10 minutes" >&2
      docker ps -a >&2
      exit 1
    fi
    sleep 0.05
  done
  t2=$(now)
  compose -f "$yml" -p "$name" down -v >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  t3=$(now)
  record "up-$what" compose "$(echo "$t2 - $t0" | bc)"
  record "compose-up-d-$what" compose "$(echo "$t1 - $t0" | bc)"
  record "down-$what" compose "$(echo "$t3 - $t2" | bc)"
}

for n in "${sizes[@]}"; do
  busybox_app "$n" "$tmp/peers$n.kdl" "$tmp/peers$n.yml"
  # 200 services under Docker take minutes (and its exec health checks load the machine): once.
  r=$reps; [ "$n" -ge 100 ] && r=1
  for _ in $(seq $r); do measure_app "$n" "$tmp/peers$n.kdl" "$tmp/peers$n.yml" "peers$n" "$n"; done
done
if [ $real = 1 ]; then
  mkdir -p "$tmp/real"
  real_stack_app "$tmp/real/real-stack.yml"
  for _ in $(seq $reps); do measure_app real samples/real-stack.kdl "$tmp/real/real-stack.yml" real-stack 4; done
  rm -f "$tmp/real/real-stack.yml"
fi

# --- figures ------------------------------------------------------------------------------------
python3 - "$results" <<'PY'
import statistics, sys
r = {}
for line in open(sys.argv[1]):
    what, tool, secs = line.split()
    r.setdefault((what, tool), []).append(float(secs))
med = lambda what, tool: statistics.median(r[(what, tool)])
def line(label, what, goal=None, ms=False):
    t, d = med(what, "tfctl"), med(what, "compose" if (what, "compose") in r else "docker")
    unit, k = ("ms", 1e3) if ms else ("s", 1)
    g = f"  (goal {goal})" if goal else ""
    print(f"{label:<34} tfctl {t*k:8.2f} {unit}   docker {d*k:8.2f} {unit}   docker/tfctl {d/t:6.1f}x{g}")
line("run --rm IMAGE true (median)", "run", ">= 50x", ms=True)
for what in sorted({w[3:] for w, _ in r if w.startswith("up-")}, key=lambda w: (not w.isdigit(), int(w) if w.isdigit() else 0)):
    label = f"{what} busybox services (tcp health)" if what.isdigit() else "real stack (4 services)"
    goal = {"200": "tfctl < 2 s, >= 20x", "real": "tfctl no slower: >= 1.0x"}.get(what)
    line(f"up --wait  {label}", f"up-{what}", goal)
    print(f"{'':<34} (docker-compose up -d alone: {med(f'compose-up-d-{what}', 'compose'):.2f} s)")
    line(f"down       {label}", f"down-{what}")
n = max(len(v) for v in r.values())
print(f"medians of {n} runs each; up is from the command to every container healthy")
PY
