//! A differential corpus (issue 14): the same image and flags under `docker run` (Debian's
//! docker.io, started once for the whole file in the test's own network namespace, with its own
//! data root, exec root and socket) and under `tfctl run`, and what the container observes
//! compared field by field: its command line, user and groups, HOME, working directory,
//! environment, hostname and name files, umask, rlimits, /dev, its mounts, capabilities,
//! seccomp, NoNewPrivs, exit statuses and signals, `stop` with the image's StopSignal, `--init`,
//! stdin and terminals, image volumes.
//!
//! The images are busybox variants built here as one OCI layout (one tag per variant: the busybox
//! layer of scripts/busybox-image.py, a second layer of extra files, a config of the variant's
//! own), loaded into Docker with skopeo and run by tfctl straight from the layout.
//!
//! Each case prints what it observes (normalised where the two engines may differ in what does
//! not matter: a container id, an address) and is either `Same` (the two outputs must be equal)
//! or `Differs` (tfctl deliberately differs: its own network, a smaller default capability set,
//! no_new_privs always set; the case then asserts each engine's documented output). All cases run
//! and every failing one is reported by name at the end. `TFCTL_DIFF_CASES=word,word` runs only
//! the cases whose name contains one of the words (to iterate on one difference).

mod common;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::docker::Docker;
use common::{repo, stderr, stdout, NetNs, Tfctl};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Images

/// A file of the extra layer every variant has.
enum Entry {
    Dir(&'static str, u32),
    File(&'static str, &'static str, u32),
    Link(&'static str, &'static str),
}

/// On top of busybox: supplementary groups for `app` and `root`, a folder reached through a
/// symlink (/w -> /srv/real), and content under /data for the image volume.
const EXTRA: &[Entry] = &[
    Entry::File("etc/group", "root:x:0:\nstaff:x:50:app\naudio:x:29:app,root\napp:x:1000:\nnogroup:x:65534:\n", 0o644),
    Entry::Dir("srv", 0o755),
    Entry::Dir("srv/real", 0o755),
    Entry::File("srv/real/inside", "real\n", 0o644),
    Entry::Link("w", "/srv/real"),
    Entry::Dir("data", 0o750),
    Entry::File("data/seed", "seeded by the image\n", 0o640),
];

/// The variants: a tag and how its config differs from busybox's (`Env` PATH, `Cmd` ["sh"],
/// `WorkingDir` "/"); a null removes the key.
fn variants() -> Vec<(&'static str, Value)> {
    vec![
        ("plain", json!({})),
        ("ep-exec", json!({"Entrypoint": ["echo", "ep"], "Cmd": ["default"]})),
        ("ep-shell", json!({"Entrypoint": ["/bin/sh", "-c", "echo ep-shell \"$0\" \"$@\""], "Cmd": ["a", "b"]})),
        ("ep-only", json!({"Entrypoint": ["echo", "only"], "Cmd": null})),
        ("cmd-exec", json!({"Cmd": ["echo", "from-cmd"]})),
        ("cmd-shell", json!({"Cmd": ["/bin/sh", "-c", "echo cmd-shell $HOME $(id -u)"]})),
        ("user-name", json!({"User": "app"})),
        ("user-ids", json!({"User": "1000:1000"})),
        ("user-namegroup", json!({"User": "app:staff"})),
        ("user-absent", json!({"User": "4242"})),
        ("wd-absent", json!({"WorkingDir": "/srv/app/new"})),
        ("wd-absent-user", json!({"WorkingDir": "/srv/app/new", "User": "app"})),
        ("wd-link", json!({"WorkingDir": "/w"})),
        ("noenv", json!({"Env": null})),
        ("env", json!({"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FOO=image", "BAR=image"]})),
        ("vol", json!({"Volumes": {"/data": {}}})),
        ("stopsig", json!({"StopSignal": "SIGUSR1"})),
        ("exposed", json!({"ExposedPorts": {"8080/tcp": {}}})),
    ]
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Writes a blob into the layout; returns its descriptor's digest and size.
fn blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let digest = sha256(data);
    std::fs::write(layout.join("blobs/sha256").join(&digest), data).unwrap();
    (format!("sha256:{digest}"), data.len())
}

fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()
}

/// The extra layer: (its gzip blob, its diff id).
fn extra_layer() -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    for e in EXTRA {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match e {
            Entry::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::File(p, content, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(content.len() as u64);
                b.append_data(&mut h, p, content.as_bytes()).unwrap();
            }
            Entry::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    let raw = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), format!("sha256:{}", sha256(&raw)))
}

/// Builds the OCI layout with every variant (tag = variant name) under `dir`; returns its path.
fn build_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let o = Command::new("python3").arg(repo().join("scripts/busybox-image.py")).arg(&layout).args(["--tag", "busybox"]).output().unwrap();
    assert!(o.status.success(), "busybox-image.py: {}", stderr(&o));
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let base_manifest: Value = serde_json::from_slice(&read_blob(&layout, index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let base_config: Value = serde_json::from_slice(&read_blob(&layout, base_manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let (gz, diff_id) = extra_layer();
    let (layer_digest, layer_size) = blob(&layout, &gz);
    let mut manifests = vec![];
    for (tag, overrides) in variants() {
        let mut config = base_config.clone();
        config["rootfs"]["diff_ids"].as_array_mut().unwrap().push(json!(diff_id));
        for (k, v) in overrides.as_object().unwrap() {
            let c = config["config"].as_object_mut().unwrap();
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
        let (config_digest, config_size) = blob(&layout, &serde_json::to_vec(&config).unwrap());
        let mut manifest = base_manifest.clone();
        manifest["config"]["digest"] = json!(config_digest);
        manifest["config"]["size"] = json!(config_size);
        manifest["layers"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size,
        }));
        let (digest, size) = blob(&layout, &serde_json::to_vec(&manifest).unwrap());
        manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    }
    let index = json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    layout
}

// ---------------------------------------------------------------------------------------------
// The two engines

enum Side<'a> {
    Docker(&'a Docker),
    Tfctl { t: &'a Tfctl, ns: &'a NetNs, layout: &'a Path },
}

/// What a run gave: its exit status and its stdout (stderr only for the report).
struct Ran {
    code: Option<i32>,
    out: String,
    err: String,
}

thread_local! {
    /// The stderr of the runs of the case being observed, for the report of a failing case.
    static STDERR: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl Ran {
    /// The observation compared: `exit N` and the output.
    fn obs(&self) -> String {
        STDERR.with(|e| e.borrow_mut().push_str(&self.err));
        format!("exit {:?}\n{}", self.code, self.out)
    }
}

impl Side<'_> {
    fn base(&self) -> Command {
        match self {
            Side::Docker(d) => d.cmd(),
            Side::Tfctl { t, ns, .. } => t.cmd_in(ns),
        }
    }

    fn image(&self, tag: &str) -> String {
        match self {
            Side::Docker(_) => format!("diff-{tag}:latest"),
            Side::Tfctl { layout, .. } => format!("oci:{}:{tag}", layout.display()),
        }
    }

    /// `run --rm FLAGS IMAGE CMD...`
    fn run_args(&self, flags: &[&str], tag: &str, cmd: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), "--rm".into()];
        a.extend(flags.iter().map(|s| s.to_string()));
        a.push(self.image(tag));
        a.extend(cmd.iter().map(|s| s.to_string()));
        a
    }

    fn run_with(&self, flags: &[&str], tag: &str, cmd: &[&str], stdin: Option<&str>) -> Ran {
        let mut c = self.base();
        c.args(self.run_args(flags, tag, cmd)).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = c.spawn().expect("the engine's CLI runs");
        if let Some(data) = stdin {
            child.stdin.take().unwrap().write_all(data.as_bytes()).unwrap();
        }
        let o = child.wait_with_output().unwrap();
        Ran { code: o.status.code(), out: stdout(&o), err: stderr(&o) }
    }

    fn run(&self, flags: &[&str], tag: &str, cmd: &[&str]) -> Ran {
        self.run_with(flags, tag, cmd, None)
    }

    /// `CMD` under a terminal of 30 rows and 100 columns (`script`), as a user at a terminal
    /// runs it.
    fn run_on_terminal(&self, flags: &[&str], tag: &str, cmd: &[&str]) -> Ran {
        let c = self.base();
        let mut line = String::from("stty rows 30 cols 100 && exec");
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                line.push_str(&format!(" {}={}", k.to_string_lossy(), quote(&v.to_string_lossy())));
            }
        }
        line = line.replacen("exec", "exec env", 1);
        line.push(' ');
        line.push_str(&quote(&c.get_program().to_string_lossy()));
        for a in c.get_args().map(|a| a.to_string_lossy().into_owned()).chain(self.run_args(flags, tag, cmd)) {
            line.push(' ');
            line.push_str(&quote(&a));
        }
        let o = Command::new("script").args(["-qec", &line, "/dev/null"]).stdin(Stdio::null()).output().unwrap();
        // The terminal carries the client's own stderr too: Docker's client says so when the
        // container ended before it could pass the size on, which is not the container's.
        let out = stdout(&o).replace('\r', "").lines().filter(|l| *l != "failed to resize tty, using default size").map(|l| format!("{l}\n")).collect();
        Ran { code: o.status.code(), out, err: stderr(&o) }
    }

    /// A command of the engine's CLI (`stop NAME`, `kill -s SIG NAME`).
    fn ctl(&self, args: &[&str]) -> Ran {
        let o = self.base().args(args).stdin(Stdio::null()).output().unwrap();
        Ran { code: o.status.code(), out: stdout(&o), err: stderr(&o) }
    }

    /// Starts `run --rm --name NAME FLAGS IMAGE CMD` and waits for its first line, `ready`; then
    /// runs `then` (e.g. `stop NAME`) and returns the run's exit and the rest of its output.
    fn while_running(&self, name: &str, flags: &[&str], tag: &str, cmd: &[&str], then: &[&str]) -> Ran {
        let mut all = vec!["--name", name];
        all.extend_from_slice(flags);
        let mut c = self.base();
        c.args(self.run_args(&all, tag, cmd)).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Killed(c.spawn().unwrap());
        let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        if first != "ready\n" {
            let _ = child.0.kill();
            return Ran { code: None, out: format!("first line {first:?} is not ready"), err: String::new() };
        }
        let ctl = self.ctl(then);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        let status = child.0.wait().unwrap();
        let mut e = String::new();
        std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut e).unwrap();
        Ran { code: status.code(), out: format!("{} -> {:?}\n{rest}", then.join(" "), ctl.code), err: format!("{e}{}", ctl.err) }
    }
}

/// A child killed if the case ends early.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `sh -c SCRIPT` in the image, with the common flags (a fixed hostname, so that Docker's
/// container id does not show) and `flags`.
fn sh(s: &Side, flags: &[&str], tag: &str, script: &str) -> String {
    let mut all = vec!["--hostname", "box"];
    all.extend_from_slice(flags);
    s.run(&all, tag, &["sh", "-c", script]).obs()
}

/// The image's own command (or `cmd`), with a fixed hostname.
fn default_cmd(s: &Side, flags: &[&str], tag: &str, cmd: &[&str]) -> String {
    let mut all = vec!["--hostname", "box"];
    all.extend_from_slice(flags);
    s.run(&all, tag, cmd).obs()
}

/// Docker's default capabilities tfctl's default set leaves out (`Differs` cases use it to show
/// that the rest is the same).
const DOCKER_ONLY_CAPS: [&str; 6] = ["--cap-drop", "NET_RAW", "--cap-drop", "MKNOD", "--cap-drop", "AUDIT_WRITE"];

/// A flag list for one engine: Docker's gets `docker_extra` too.
fn per_side<'a>(s: &Side, common: &[&'a str], docker_extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = common.to_vec();
    if matches!(s, Side::Docker(_)) {
        v.extend_from_slice(docker_extra);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The cases

enum Expect {
    /// Both engines must print the same.
    Same,
    /// tfctl deliberately differs: `why`, and what each engine prints.
    Differs { why: &'static str, docker: &'static str, tfctl: &'static str },
}

struct Case {
    name: &'static str,
    expect: Expect,
    observe: fn(&Side) -> String,
}

fn same(name: &'static str, observe: fn(&Side) -> String) -> Case {
    Case { name, expect: Expect::Same, observe }
}

/// Kills a shell under --init with `sig` (the shell is not PID 1, so the default action applies).
fn killed_by(s: &Side, sig: &str) -> String {
    sh(s, &["--init"], "plain", &format!("echo before; kill -{sig} $$; echo after"))
}

/// The mount at `path` as `/proc/mounts` has it, without its source: type and sorted options.
fn mount_of(path: &str) -> String {
    format!("awk '$2 == \"{path}\" {{ n = split($4, o, \",\"); s = \"\"; for (i = 1; i <= n; i++) s = s \" \" o[i]; print $2, $3, s }}' /proc/mounts")
}

const CAPS: &str = "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status";

/// /sys/fs/cgroup: on a cgroup v2 host both mount the container's own cgroup2; on a v1 host
/// Docker mounts the controllers (read-only, under a tmpfs) and tfctl none.
fn cgroup_case() -> Case {
    let observe: fn(&Side) -> String = |s| sh(s, &[], "plain", "awk '$2 == \"/sys/fs/cgroup\" {print $3, substr($4, 1, 2)}' /proc/mounts");
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        return same("/sys/fs/cgroup", observe);
    }
    Case {
        name: "/sys/fs/cgroup",
        expect: Expect::Differs {
            why: "on a cgroup v1 host tfctl mounts no cgroup controllers in the container (the container's limits are not its business)",
            docker: "exit Some(0)\ntmpfs rw\n",
            tfctl: "exit Some(0)\n",
        },
        observe,
    }
}

fn cases() -> Vec<Case> {
    vec![
        // Entrypoint and Cmd, exec and shell form, with and without a command given.
        same("entrypoint exec form, image cmd", |s| default_cmd(s, &[], "ep-exec", &[])),
        same("entrypoint exec form, command given", |s| default_cmd(s, &[], "ep-exec", &["given", "x"])),
        same("entrypoint shell form, image cmd", |s| default_cmd(s, &[], "ep-shell", &[])),
        same("entrypoint shell form, command given", |s| default_cmd(s, &[], "ep-shell", &["given", "x"])),
        same("entrypoint without cmd", |s| default_cmd(s, &[], "ep-only", &[])),
        same("cmd exec form", |s| default_cmd(s, &[], "cmd-exec", &[])),
        same("cmd exec form, command given", |s| default_cmd(s, &[], "cmd-exec", &["echo", "given"])),
        same("cmd shell form", |s| default_cmd(s, &[], "cmd-shell", &[])),
        same("--entrypoint replaces the image's and its cmd", |s| default_cmd(s, &["--entrypoint", "echo"], "ep-exec", &[])),
        same("--entrypoint with a command", |s| default_cmd(s, &["--entrypoint", "echo"], "ep-exec", &["given"])),
        // Users, groups, HOME.
        same("user root: id, supplementary groups, HOME", |s| sh(s, &[], "plain", "id; echo $HOME")),
        same("image user by name", |s| sh(s, &[], "user-name", "id; echo $HOME")),
        same("image user uid:gid", |s| sh(s, &[], "user-ids", "id; echo $HOME")),
        same("image user name:group", |s| sh(s, &[], "user-namegroup", "id; echo $HOME")),
        same("image user absent from /etc/passwd", |s| sh(s, &[], "user-absent", "id; echo $HOME")),
        same("-u name", |s| sh(s, &["-u", "app"], "plain", "id; echo $HOME")),
        same("-u uid", |s| sh(s, &["-u", "1000"], "plain", "id; echo $HOME")),
        same("-u uid:gid absent", |s| sh(s, &["-u", "4242:4242"], "plain", "id; echo $HOME")),
        same("-u name:gid", |s| sh(s, &["-u", "app:29"], "plain", "id; echo $HOME")),
        same("-u overrides the image's user", |s| sh(s, &["-u", "root"], "user-name", "id; echo $HOME")),
        // Working directories.
        same("image workdir absent is created", |s| sh(s, &[], "wd-absent", "pwd; stat -c '%U:%G %a' ."))
        ,
        same("image workdir absent, non-root user", |s| sh(s, &[], "wd-absent-user", "pwd; stat -c '%U:%G %a' .; touch x && echo writable")),
        same("image workdir through a symlink", |s| sh(s, &[], "wd-link", "pwd; ls")),
        same("-w absent is created", |s| sh(s, &["-w", "/new/dir"], "plain", "pwd; stat -c '%U:%G %a' . ..")),
        same("-w absent, -u app", |s| sh(s, &["-w", "/new/dir", "-u", "app"], "plain", "pwd; stat -c '%U:%G %a' .")),
        same("-w through a symlink", |s| sh(s, &["-w", "/w"], "plain", "pwd; ls")),
        same("-w absent under a read-only root", |s| sh(s, &["-w", "/new/dir", "--read-only"], "plain", "pwd; touch x 2>/dev/null || echo read-only")),
        // Environment.
        same("environment of the plain image", |s| sh(s, &[], "plain", "env | sort")),
        same("PATH default when the image sets none", |s| sh(s, &[], "noenv", "env | sort")),
        same("image env merged with -e", |s| sh(s, &["-e", "FOO=flag", "-e", "NEW=1"], "env", "env | sort")),
        same("environment of a non-root user", |s| sh(s, &["-u", "app"], "plain", "env | sort")),
        same("-e HOME wins over the user's", |s| sh(s, &["-u", "app", "-e", "HOME=/elsewhere"], "plain", "echo $HOME")),
        // Names.
        same("--hostname", |s| sh(s, &[], "plain", "hostname; cat /proc/sys/kernel/hostname; grep -c box /etc/hosts")),
        Case {
            name: "default hostname",
            expect: Expect::Differs {
                why: "tfctl names the container's host after the container (--name); Docker after its id",
                docker: "exit Some(0)\n12 hex\n",
                tfctl: "exit Some(0)\ndiffhost\n",
            },
            observe: |s| {
                let o = s.run(&["--name", "diffhost"], "plain", &["hostname"]).obs();
                let h = o.lines().nth(1).unwrap_or_default();
                if h.len() == 12 && h.chars().all(|c| c.is_ascii_hexdigit()) { "exit Some(0)\n12 hex\n".into() } else { o }
            },
        },
        Case {
            name: "/etc/hosts shape",
            expect: Expect::Differs {
                why: "tfctl's one-off run has no network of its own: its name is 127.0.1.1; Docker's default bridge gives an address (and IPv6 names)",
                docker: "exit Some(0)\n127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n172.17.0.0 box\n",
                tfctl: "exit Some(0)\n127.0.0.1 localhost\n127.0.1.1 box\n",
            },
            observe: |s| {
                let o = sh(s, &[], "plain", "cat /etc/hosts | tr -s ' \\t' '  '");
                o.lines().map(|l| if l.starts_with("172.17.") { format!("172.17.0.0 {}", l.split(' ').nth(1).unwrap_or("")) } else { l.to_string() }).collect::<Vec<_>>().join("\n") + "\n"
            },
        },
        same("resolv.conf nameservers", |s| sh(s, &[], "plain", "grep ^nameserver /etc/resolv.conf")),
        // The process's environment set by the runtime.
        same("umask", |s| sh(s, &[], "plain", "umask")),
        same("rlimit nofile", |s| sh(s, &[], "plain", "ulimit -Sn; ulimit -Hn")),
        same("rlimits", |s| sh(s, &[], "plain", "cat /proc/self/limits")),
        same("/dev entries and modes", |s| sh(s, &[], "plain", "cd /dev && stat -c '%N %F %a %U:%G %t,%T' * pts/* mqueue shm")),
        same("/dev entries with -t", |s| {
            let o = s.run_on_terminal(&["--hostname", "box", "-t"], "plain", &["sh", "-c", "cd /dev && stat -c '%N %F %a %t,%T' console ptmx pts/ptmx tty; tty"]);
            o.obs()
        }),
        same("/dev/shm size and mount", |s| sh(s, &[], "plain", &format!("{}; df -k /dev/shm | awk 'NR>1 {{print $2}}'", mount_of("/dev/shm")))),
        same("--shm-size", |s| sh(s, &["--shm-size", "8M"], "plain", &format!("{}; df -k /dev/shm | awk 'NR>1 {{print $2}}'", mount_of("/dev/shm")))),
        same("/proc mount", |s| sh(s, &[], "plain", &mount_of("/proc"))),
        same("/sys mount", |s| sh(s, &[], "plain", &mount_of("/sys"))),
        same("/dev, /dev/pts, /dev/mqueue mounts", |s| sh(s, &[], "plain", &format!("{}; {}; {}", mount_of("/dev"), mount_of("/dev/pts"), mount_of("/dev/mqueue")))),
        Case {
            name: "/proc's masked and read-only paths",
            expect: Expect::Differs {
                why: "tfctl also masks /proc/interrupts (the host's interrupt counts per CPU), which this Docker leaves readable",
                docker: "exit Some(0)\n/proc/acpi tmpfs ro\n/proc/bus proc ro\n/proc/fs proc ro\n/proc/irq proc ro\n/proc/keys tmpfs rw\n/proc/sys proc ro\n/proc/timer_list tmpfs rw\n",
                tfctl: "exit Some(0)\n/proc/acpi tmpfs ro\n/proc/bus proc ro\n/proc/fs proc ro\n/proc/interrupts tmpfs rw\n/proc/irq proc ro\n/proc/keys tmpfs rw\n/proc/sys proc ro\n/proc/timer_list tmpfs rw\n",
            },
            observe: |s| sh(s, &[], "plain", "awk '$2 ~ /^\\/proc\\// {print $2, $3, $4 ~ /^ro/ ? \"ro\" : \"rw\"}' /proc/mounts | sort"),
        },
        // /proc/kcore and the like are masked by a bind of /dev/null: the same on both.
        same("/proc's masked files", |s| sh(s, &[], "plain", "for f in kcore latency_stats timer_list sched_debug scsi keys; do [ -e /proc/$f ] && echo $f $(head -c 16 /proc/$f 2>&1 | wc -c); done")),
        cgroup_case(),
        same("read-only root", |s| sh(s, &["--read-only"], "plain", "for d in / /tmp /dev/shm /run /etc; do touch $d/x 2>/dev/null && echo $d writable || echo $d read-only; done")),
        // Capabilities, seccomp, no_new_privs.
        Case {
            name: "default capability sets",
            expect: Expect::Differs {
                why: "tfctl's default set leaves out NET_RAW, MKNOD and AUDIT_WRITE (tfctl-run(1))",
                docker: "exit Some(0)\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n",
                tfctl: "exit Some(0)\nCapInh:\t0000000000000000\nCapPrm:\t00000000800405fb\nCapEff:\t00000000800405fb\nCapBnd:\t00000000800405fb\nCapAmb:\t0000000000000000\n",
            },
            observe: |s| sh(s, &[], "plain", CAPS),
        },
        same("capability sets without Docker's three extra", |s| sh(s, &per_side(s, &[], &DOCKER_ONLY_CAPS), "plain", CAPS)),
        same("--cap-drop ALL --cap-add CHOWN", |s| sh(s, &["--cap-drop", "ALL", "--cap-add", "CHOWN"], "plain", CAPS)),
        same("--cap-add NET_ADMIN", |s| sh(s, &per_side(s, &["--cap-add", "NET_ADMIN"], &DOCKER_ONLY_CAPS), "plain", CAPS)),
        same("capability sets of a non-root user", |s| sh(s, &per_side(s, &["-u", "1000"], &DOCKER_ONLY_CAPS), "plain", CAPS)),
        same("seccomp mode", |s| sh(s, &[], "plain", "grep -E '^Seccomp:' /proc/self/status")),
        same("seccomp unconfined", |s| sh(s, &["--security-opt", "seccomp=unconfined"], "plain", "grep -E '^Seccomp:' /proc/self/status")),
        Case {
            name: "NoNewPrivs default",
            expect: Expect::Differs {
                why: "tfctl always sets no_new_privs (tfctl-run(1)); Docker only with --security-opt no-new-privileges",
                docker: "exit Some(0)\nNoNewPrivs:\t0\n",
                tfctl: "exit Some(0)\nNoNewPrivs:\t1\n",
            },
            observe: |s| sh(s, &[], "plain", "grep NoNewPrivs /proc/self/status"),
        },
        same("NoNewPrivs with no-new-privileges", |s| sh(s, &["--security-opt", "no-new-privileges"], "plain", "grep NoNewPrivs /proc/self/status")),
        // Exit statuses.
        same("exit status", |s| sh(s, &[], "plain", "echo out; exit 3")),
        same("command not found", |s| s.run(&[], "plain", &["no-such-command"]).obs()),
        same("command not executable", |s| s.run(&[], "plain", &["/etc/passwd"]).obs()),
        same("workdir is a file", |s| s.run(&["-w", "/etc/passwd"], "plain", &["true"]).obs()),
        same("killed by SIGHUP", |s| killed_by(s, "HUP")),
        same("killed by SIGINT", |s| killed_by(s, "INT")),
        same("killed by SIGQUIT", |s| killed_by(s, "QUIT")),
        same("killed by SIGTERM", |s| killed_by(s, "TERM")),
        same("killed by SIGUSR1", |s| killed_by(s, "USR1")),
        same("killed by SIGKILL", |s| killed_by(s, "KILL")),
        same("PID 1 ignores SIGTERM without a handler", |s| sh(s, &[], "plain", "kill -TERM $$; echo alive")),
        same("stop sends SIGTERM", |s| {
            s.while_running("diff-stop", &[], "plain", &["sh", "-c", "trap 'echo term; exit 7' TERM; trap 'echo usr1; exit 8' USR1; echo ready; while :; do sleep 0.1; done"], &["stop", "diff-stop"]).obs()
        }),
        same("stop sends the image's StopSignal", |s| {
            s.while_running("diff-stopsig", &[], "stopsig", &["sh", "-c", "trap 'echo term; exit 7' TERM; trap 'echo usr1; exit 8' USR1; echo ready; while :; do sleep 0.1; done"], &["stop", "diff-stopsig"]).obs()
        }),
        same("kill -s HUP", |s| {
            s.while_running("diff-kill", &[], "plain", &["sh", "-c", "trap 'echo hup; exit 9' HUP; echo ready; while :; do sleep 0.1; done"], &["kill", "-s", "HUP", "diff-kill"]).obs()
        }),
        same("--init reaps zombies", |s| {
            sh(s, &["--init"], "plain", "sh -c 'sleep 0.1 & exec sleep 0.5'; sleep 1; ps -o stat,comm | grep -c '^Z'; echo pid1: $(cat /proc/1/comm | grep -c init)")
        }),
        // Standard input and terminals.
        same("stdin closed without -i", |s| s.run_with(&[], "plain", &["sh", "-c", "cat; echo done"], Some("typed\n")).obs()),
        same("stdin attached with -i", |s| s.run_with(&["-i"], "plain", &["sh", "-c", "cat; echo done"], Some("typed\n")).obs()),
        // Docker's client may set the size a moment after the start: the script waits for it.
        same("a terminal's size", |s| {
            let wait = "for i in $(seq 100); do s=$(stty size 2>&1); [ \"$s\" = '30 100' ] && break; sleep 0.1; done; echo $s";
            s.run_on_terminal(&["-t"], "plain", &["sh", "-c", wait]).obs()
        }),
        same("TERM with -t", |s| s.run_on_terminal(&["-t"], "plain", &["sh", "-c", "echo $TERM; [ -t 0 ] && echo tty-in; [ -t 1 ] && echo tty-out"]).obs()),
        // Image volumes and exposed ports.
        same("image volume populated from the image", |s| {
            sh(s, &[], "vol", "cat /data/seed; stat -c '%U:%G %a' /data /data/seed; awk '$2 == \"/data\"' /proc/mounts | wc -l; touch /data/x && echo writable")
        }),
        same("image volume, read-only root", |s| sh(s, &["--read-only"], "vol", "touch /data/x && echo writable")),
        // tfctl's own user namespace (a Docker daemon would need userns-remap for it): inside,
        // the same ids and the same writable volume.
        same("image volume under tfctl's --userns auto", |s| {
            let flags = if matches!(s, Side::Tfctl { .. }) { vec!["--userns", "auto"] } else { vec![] };
            sh(s, &flags, "vol", "id; stat -c '%U:%G %a' /data /data/seed; touch /data/x && echo writable; touch /new && echo root-writable")
        }),
        same("a named volume over an image volume", |s| {
            sh(s, &["-v", "diffvol:/data"], "vol", "cat /data/seed; awk '$2 == \"/data\"' /proc/mounts | wc -l; echo kept > /data/later")
        }),
        same("exposed ports are informational", |s| sh(s, &[], "exposed", "env | sort; echo ok")),
    ]
}

// ---------------------------------------------------------------------------------------------
// The runner

#[test]
fn tfctl_run_observes_what_docker_run_observes() {
    let dir = tempfile::tempdir().unwrap();
    let layout = build_layout(dir.path());
    let ns = NetNs::new("diff");
    let docker = Docker::start(&ns.path());
    for (tag, _) in variants() {
        docker.load(&format!("oci:{}:{tag}", layout.display()), &format!("diff-{tag}:latest"));
    }
    let t = Tfctl::new();
    let sides = [Side::Docker(&docker), Side::Tfctl { t: &t, ns: &ns, layout: &layout }];
    let only: Vec<String> = std::env::var("TFCTL_DIFF_CASES").map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default();
    let all = cases();
    let mut names = std::collections::HashSet::new();
    assert!(all.iter().all(|c| names.insert(c.name)), "two cases have the same name");
    assert!(all.len() >= 40, "the corpus has {} cases", all.len());
    let mut failures = vec![];
    let mut ran = 0;
    for case in all.iter().filter(|c| only.is_empty() || only.iter().any(|w| c.name.contains(w.as_str()))) {
        ran += 1;
        let [(d, d_err), (f, f_err)] = [&sides[0], &sides[1]].map(|s| {
            STDERR.with(|e| e.borrow_mut().clear());
            let o = (case.observe)(s);
            (o, STDERR.with(|e| e.take()))
        });
        let failed = match &case.expect {
            Expect::Same => (d != f).then(|| format!("docker:\n{d}\ntfctl:\n{f}")),
            Expect::Differs { why, docker, tfctl } => {
                (d != *docker || f != *tfctl).then(|| format!("expected a documented difference ({why})\ndocker:\n{d}\n(expected:\n{docker})\ntfctl:\n{f}\n(expected:\n{tfctl})"))
            }
        };
        match failed.map(|r| format!("{r}\n(docker's stderr: {d_err:?}; tfctl's stderr: {f_err:?})\n")) {
            Some(report) => {
                eprintln!("FAIL {}\n{report}", case.name);
                failures.push(format!("{}:\n{report}", case.name));
            }
            None => eprintln!("ok   {}", case.name),
        }
    }
    assert!(ran > 0, "TFCTL_DIFF_CASES={only:?} names no case");
    assert!(failures.is_empty(), "{} of {ran} cases differ:\n\n{}", failures.len(), failures.join("\n"));
}
