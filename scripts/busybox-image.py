#!/usr/bin/env python3
"""Builds a busybox-static OCI image layout: the image tfctl's samples, tests and benchmarks use.

usage: busybox-image.py OUTDIR [--tag TAG] [--busybox /bin/busybox]

One gzip layer: /bin/busybox, a symlink per applet, /etc/passwd and /etc/group (root, nobody and
an unprivileged `app` user 1000), an empty /tmp (1777), /var/run -> /run (an absolute symlink, as
real images have) and /var/www/index.html for httpd. The output is reproducible: the same busybox
gives the same digests, so a rebuilt layout is a no-op for an image store that already has it.
"""
import argparse, gzip, hashlib, io, json, os, subprocess, sys, tarfile

def add(tar, name, data=None, mode=0o644, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.mode, info.type, info.linkname, info.mtime = mode, kind, link, 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)

def layer_bytes(busybox):
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "etc", "root", "run", "var", "var/www", "home", "home/app"):
            add(tar, d, mode=0o755, kind=tarfile.DIRTYPE)
        add(tar, "tmp", mode=0o1777, kind=tarfile.DIRTYPE)
        with open(busybox, "rb") as f:
            add(tar, "bin/busybox", f.read(), mode=0o755)
        for a in sorted(set(applets)):
            if a != "busybox":
                add(tar, "bin/" + a, kind=tarfile.SYMTYPE, link="busybox")
        add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
            b"app:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        add(tar, "etc/group", b"root:x:0:\napp:x:1000:\nnogroup:x:65534:\n")
        add(tar, "var/run", kind=tarfile.SYMTYPE, link="/run")
        add(tar, "var/www/index.html", b"<h1>hello from tfctl</h1>\n")
    diff = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(diff)
    return diff, gz.getvalue()

def blob(out, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(out, "blobs", "sha256", digest)
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
    return "sha256:" + digest, len(data)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--busybox", default="/bin/busybox")
    args = ap.parse_args()
    if not os.path.exists(args.busybox):
        sys.exit(f"{args.busybox} not found: install busybox-static (scripts/setup.sh does)")
    os.makedirs(os.path.join(args.out, "blobs", "sha256"), exist_ok=True)
    diff, gz = layer_bytes(args.busybox)
    layer_digest, layer_size = blob(args.out, gz)
    config = {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(diff).hexdigest()]},
        "history": [{"created_by": "scripts/busybox-image.py"}],
    }
    config_digest, config_size = blob(args.out, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = blob(args.out, json.dumps(manifest, sort_keys=True).encode())
    index_path = os.path.join(args.out, "index.json")
    index = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index["manifests"] = [m for m in index.get("manifests", [])
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != args.tag]
    index["manifests"].append({"mediaType": manifest["mediaType"], "digest": manifest_digest,
                               "size": manifest_size,
                               "annotations": {"org.opencontainers.image.ref.name": args.tag}})
    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(index_path + ".tmp", "w") as f:
        json.dump(index, f, indent=1)
    os.rename(index_path + ".tmp", index_path)
    print(manifest_digest)

if __name__ == "__main__":
    main()
