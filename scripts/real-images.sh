#!/usr/bin/env bash
# Builds OCI image layouts of real services from Debian's packages, configured as Docker's official
# images are, for samples/real-stack.kdl and tests/real_stack.rs.
#
# usage: scripts/real-images.sh [OUTDIR]
#
# OUTDIR (default $TFCTL_REAL_IMAGES, else /var/cache/tfctl-real-images) becomes one OCI layout
# with four tags: postgres, redis, nginx and python. They share one base layer, a Debian 12
# minbase with the packages of every service (one mmdebstrap run instead of four, and the blob is
# stored once), under a thin layer per image holding its entrypoint and config. Image configs carry
# what the official images do: Entrypoint/Cmd, User, Env, WorkingDir, ExposedPorts, Volumes and
# StopSignal.
#
# Reproducible: SOURCE_DATE_EPOCH fixes every mtime, entries are sorted, gzip carries no name or
# time, so the same archive state gives the same digests. Cached: a layout built from the same
# inputs (this script, the suite, the mirror, the packages) is left alone. Needs root (mmdebstrap
# --mode=root), mmdebstrap and python3 (scripts/setup.sh installs them) and Debian's archive.
set -euo pipefail

out=${1:-${TFCTL_REAL_IMAGES:-/var/cache/tfctl-real-images}}
suite=bookworm
mirror=${TFCTL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${TFCTL_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
packages=(postgresql-15 redis-server redis-tools nginx-light python3 python3-psycopg2)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

command -v mmdebstrap >/dev/null || { echo "real-images.sh: mmdebstrap is needed (scripts/setup.sh installs it)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "real-images.sh: run as root (mmdebstrap --mode=root)" >&2; exit 1; }

key=$({ cat "$0"; echo "$suite $mirror $security ${packages[*]} $SOURCE_DATE_EPOCH"; } | sha256sum | cut -d' ' -f1)
if [ -f "$out/index.json" ] && [ "$(cat "$out/inputs" 2>/dev/null)" = "$key" ]; then
  echo "real-images.sh: $out is up to date"
  exit 0
fi

mkdir -p "$(dirname "$out")"
# Beside the output, so the finished layout is renamed into place, never half-written.
tmp=$(mktemp -d "$(dirname "$out")/.real-images.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
started=$(date +%s)

# The base: no manuals, docs or translations (a container reads none of them), no default
# PostgreSQL cluster (the entrypoint makes one in PGDATA on first start, as Docker's does), and
# no snakeoil key: ssl-cert makes one at install, which would differ on every build and be the
# same private key in every container made from it.
mmdebstrap --quiet --mode=root --variant=minbase --format=tar \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/postgresql/15/main "$1"/etc/postgresql/15/main' \
  --customize-hook='rm -f "$1"/etc/ssl/private/ssl-cert-snakeoil.key "$1"/etc/ssl/certs/ssl-cert-snakeoil.pem' \
  "$suite" "$tmp/rootfs.tar" "$mirror" "deb $security $suite-security main"

python3 - "$tmp/rootfs.tar" "$tmp/layout" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile

src, out = sys.argv[1], sys.argv[2]
epoch = int(os.environ["SOURCE_DATE_EPOCH"])
os.makedirs(os.path.join(out, "blobs", "sha256"))

class Blob:
    """A file-like sink that writes a gzip blob while hashing both the tar (diff_id) and the gzip
    stream (digest)."""
    def __init__(self):
        self.path = os.path.join(out, "blobs", "sha256", ".incoming")
        self.file = open(self.path, "wb")
        self.gz_hash, self.tar_hash = hashlib.sha256(), hashlib.sha256()
        outer = self
        class Tee:
            def write(self, b):
                outer.gz_hash.update(b)
                outer.file.write(b)
            def flush(self):
                pass
        self.gz = gzip.GzipFile(fileobj=Tee(), mode="wb", mtime=0, compresslevel=6)
    def write(self, b):
        self.tar_hash.update(b)
        self.gz.write(b)
        return len(b)
    def finish(self):
        self.gz.close()
        self.file.close()
        digest = self.gz_hash.hexdigest()
        os.rename(self.path, os.path.join(out, "blobs", "sha256", digest))
        return ("sha256:" + digest, os.path.getsize(os.path.join(out, "blobs", "sha256", digest)),
                "sha256:" + self.tar_hash.hexdigest())

def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)

# The base layer: mmdebstrap's tar (already sorted, mtimes clamped) without the device nodes it
# made in /dev (the runtime gives every container its own /dev), names without "./".
users = {}
b = Blob()
with tarfile.open(src, mode="r|") as tin, tarfile.open(fileobj=b, mode="w|", format=tarfile.PAX_FORMAT) as tout:
    for m in tin:
        name = m.name[2:] if m.name.startswith("./") else m.name
        if name in ("", ".") or (name.startswith("dev/") and not m.isdir()):
            continue
        m.name = name
        if m.islnk() and m.linkname.startswith("./"):
            m.linkname = m.linkname[2:]
        # A long or non-ASCII name sits in the PAX header too; tarfile writes it anew from m.name.
        m.pax_headers.pop("path", None)
        m.pax_headers.pop("linkpath", None)
        m.mtime = min(int(m.mtime), epoch)
        m.uname = m.gname = ""
        data = tin.extractfile(m) if m.isreg() else None
        if name == "etc/passwd":
            text = data.read()
            for line in text.decode().splitlines():
                f = line.split(":")
                users[f[0]] = (int(f[2]), int(f[3]))
            data = io.BytesIO(text)
        tout.addfile(m, data)
base = b.finish()

def add(tar, name, data=None, mode=0o644, kind=tarfile.REGTYPE, link="", owner="root"):
    info = tarfile.TarInfo(name)
    info.mode, info.type, info.linkname, info.mtime = mode, kind, link, epoch
    info.uid, info.gid = users[owner]
    if data is not None:
        data = data.encode() if isinstance(data, str) else data
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)

D, L = tarfile.DIRTYPE, tarfile.SYMTYPE
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's postgres entrypoint, cut to what a first start needs: a cluster in PGDATA with the
# password of POSTGRES_PASSWORD(_FILE), password logins from the network, POSTGRES_DB, and the
# scripts of /docker-entrypoint-initdb.d run against a server on the Unix socket only.
PG_ENTRYPOINT = r"""#!/bin/sh
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    # Started as root (user overridden): own the data folder, then drop to postgres.
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
    fi
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
        echo "error: database is uninitialized and superuser password is not specified." >&2
        echo "  Give POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust)." >&2
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    printf '%s\n' "${POSTGRES_PASSWORD:-}" | initdb --username="$user" --pwfile=/dev/stdin \
        --auth-local=trust --auth-host="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" \
        ${POSTGRES_INITDB_ARGS:-}
    echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    db=${POSTGRES_DB:-$user}
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres -c "CREATE DATABASE \"$db\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --username "$user" --dbname "$db" -f "$f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
"""

NGINX_DEFAULT = """server {
    listen 80;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html;
    }
}
"""

def postgres(tar):
    add(tar, "usr/local/bin/docker-entrypoint.sh", PG_ENTRYPOINT, mode=0o755)
    add(tar, "docker-entrypoint-initdb.d", mode=0o755, kind=D)
    add(tar, "var/lib/postgresql/data", mode=0o700, kind=D, owner="postgres")
    add(tar, "var/run/postgresql", mode=0o3777, kind=D, owner="postgres")
    return {
        "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["postgres"], "User": "postgres",
        "Env": ["PATH=/usr/lib/postgresql/15/bin:" + PATH, "LANG=C.UTF-8",
                "PGDATA=/var/lib/postgresql/data"],
        "ExposedPorts": {"5432/tcp": {}}, "Volumes": {"/var/lib/postgresql/data": {}},
        "StopSignal": "SIGINT",
    }

def redis(tar):
    add(tar, "data", mode=0o755, kind=D, owner="redis")
    # Docker's image builds redis without protected mode: it serves its network, not only lo.
    return {
        "Cmd": ["redis-server", "--protected-mode", "no"], "User": "redis", "Env": ["PATH=" + PATH],
        "WorkingDir": "/data", "ExposedPorts": {"6379/tcp": {}}, "Volumes": {"/data": {}},
    }

def nginx(tar):
    # As in Docker's image: logs to the container's output, the server in conf.d.
    add(tar, "var/log/nginx/access.log", kind=L, link="/dev/stdout")
    add(tar, "var/log/nginx/error.log", kind=L, link="/dev/stderr")
    add(tar, "etc/nginx/sites-enabled/.wh.default")
    add(tar, "etc/nginx/conf.d/default.conf", NGINX_DEFAULT)
    add(tar, "usr/share/nginx/html/index.html", "<h1>Welcome to nginx!</h1>\n")
    return {
        "Cmd": ["nginx", "-g", "daemon off;"], "Env": ["PATH=" + PATH],
        "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT",
    }

def python(tar):
    add(tar, "app", mode=0o755, kind=D)
    return {"Cmd": ["python3"], "Env": ["PATH=" + PATH, "LANG=C.UTF-8"], "WorkingDir": "/app"}

arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
created = __import__("datetime").datetime.fromtimestamp(epoch, __import__("datetime").timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
manifests = []
for tag, build in (("postgres", postgres), ("redis", redis), ("nginx", nginx), ("python", python)):
    b = Blob()
    with tarfile.open(fileobj=b, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        cfg = build(tar)
    top = b.finish()
    config = {
        "architecture": arch, "os": "linux", "created": created, "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [base[2], top[2]]},
        "history": [{"created": created, "created_by": "mmdebstrap bookworm (scripts/real-images.sh)"},
                    {"created": created, "created_by": f"scripts/real-images.sh: {tag}"}],
    }
    config_digest, config_size = blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}
                   for d, s, _ in (base, top)],
    }
    digest, size = blob(json.dumps(manifest, sort_keys=True).encode())
    manifests.append({"mediaType": manifest["mediaType"], "digest": digest, "size": size,
                      "annotations": {"org.opencontainers.image.ref.name": tag}})
    print(f"{tag}: {digest}")
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": manifests}, f, indent=1)
PY

echo "$key" > "$tmp/layout/inputs"
rm -rf "$out"
mv "$tmp/layout" "$out"
echo "real-images.sh: built $out in $(( $(date +%s) - started )) s ($(du -sh "$out" | cut -f1))"
