//! Real workloads, run as Docker runs them: samples/real-stack.kdl (nginx, a Python app,
//! PostgreSQL 15 and Redis, images built from Debian's packages by scripts/real-images.sh) under
//! tfctl's default confinement. The images are built first; when they cannot be, the test fails.

mod common;

use common::{repo, stderr, stdout, NetNs, Tfctl};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Builds (or finds cached) the images, returning their layout's folder.
fn real_images() -> String {
    let dir = std::env::var("TFCTL_REAL_IMAGES").unwrap_or_else(|_| "/var/cache/tfctl-real-images".into());
    let o = Command::new("bash").arg(repo().join("scripts/real-images.sh")).arg(&dir).output().expect("bash runs");
    assert!(
        o.status.success(),
        "scripts/real-images.sh could not build the images (it needs root, mmdebstrap and Debian's archive):\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    dir
}

/// A real-stack app in a network namespace and a state root of its own. Dropped in order: its
/// apps go down (Tfctl), then the namespace, then the folder of a derived app file.
struct Stack {
    t: Tfctl,
    ns: NetNs,
    images: String,
    file: String,
    _dir: Option<tempfile::TempDir>,
}

impl Stack {
    /// samples/real-stack.kdl as it is.
    fn new(tag: &str) -> Stack {
        let images = real_images();
        let file = repo().join("samples/real-stack.kdl").to_string_lossy().into_owned();
        Stack { t: Tfctl::new(), ns: NetNs::new(tag), images, file, _dir: None }
    }

    /// samples/real-stack.kdl changed by `edit`, in a folder of its own beside a copy of the
    /// app's code (which the file names relative to itself).
    fn derived(tag: &str, edit: impl FnOnce(String) -> String) -> Stack {
        let images = real_images();
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(repo().join("samples/real-stack.kdl")).unwrap();
        let changed = edit(text.clone());
        assert_ne!(changed, text, "the edit changed nothing");
        std::fs::create_dir(dir.path().join("real-stack")).unwrap();
        std::fs::copy(repo().join("samples/real-stack/app.py"), dir.path().join("real-stack/app.py")).unwrap();
        let file = dir.path().join("real-stack.kdl");
        std::fs::write(&file, changed).unwrap();
        let file = file.to_string_lossy().into_owned();
        Stack { t: Tfctl::new(), ns: NetNs::new(tag), images, file, _dir: Some(dir) }
    }

    fn cmd(&self) -> Command {
        let mut c = self.t.cmd_in(&self.ns);
        c.env("TFCTL_REAL_IMAGES", &self.images);
        c
    }

    fn tfctl(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("tfctl runs")
    }

    fn up(&self) {
        let o = self.tfctl(&["up", "--wait=300s", &self.file]);
        assert_eq!(o.status.code(), Some(0), "up: {}{}", stderr(&o), self.logs());
        // --wait returned: every container is running and healthy.
        let containers = self.containers();
        assert_eq!(containers.len(), 4, "{containers:?}");
        for c in &containers {
            assert_eq!(c["state"], "running", "{c}");
            assert_eq!(c["health"], "healthy", "{c}");
        }
    }

    /// `ps --format json`'s containers of the app.
    fn containers(&self) -> Vec<serde_json::Value> {
        let o = self.tfctl(&["ps", "real-stack", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("ps: {e}: {}{}", stdout(&o), stderr(&o)));
        v["apps"][0]["containers"].as_array().cloned().unwrap_or_default()
    }

    fn container(&self, name: &str) -> serde_json::Value {
        let all = self.containers();
        all.iter().find(|c| c["name"] == name).cloned().unwrap_or_else(|| panic!("ps lists no {name}: {all:?}"))
    }

    /// Waits (two minutes at most) until `name` runs and is healthy.
    fn wait_healthy(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let c = self.container(name);
            if c["state"] == "running" && c["health"] == "healthy" {
                return;
            }
            assert!(Instant::now() < deadline, "{name} did not turn healthy: {c}{}", self.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A request to nginx's published port, as a client on the host would make it.
    fn get(&self, path: &str) -> serde_json::Value {
        let o = self.ns.sh(&format!("wget -qO- -T 20 http://127.0.0.1:8080{path}"));
        assert!(o.status.success(), "GET {path}: {}{}", stderr(&o), self.logs());
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", stdout(&o)))
    }

    /// A query by psql inside the database's container (no terminal), its one-value answer.
    fn psql(&self, sql: &str) -> String {
        let o = self.tfctl(&["exec", "real-stack/db", "--", "psql", "-U", "postgres", "-d", "visits", "-tAc", sql]);
        assert_eq!(o.status.code(), Some(0), "exec psql {sql}: {}", stderr(&o));
        stdout(&o).trim().to_string()
    }

    fn db_log(&self) -> String {
        let o = self.tfctl(&["logs", "real-stack/db"]);
        assert!(o.status.success(), "logs: {}", stderr(&o));
        format!("{}{}", stdout(&o), stderr(&o))
    }

    fn logs(&self) -> String {
        let o = self.tfctl(&["logs", "real-stack"]);
        format!("\n--- logs ---\n{}{}", stdout(&o), stderr(&o))
    }
}

#[test]
fn nginx_app_postgres_and_redis_serve_keep_their_rows_and_postgres_shuts_down_cleanly() {
    let s = Stack::new("real");

    // First start: the entrypoint initialises the cluster in the empty volume.
    s.up();
    assert!(s.db_log().contains("PostgreSQL init process complete"), "{}", s.db_log());

    // Through nginx to the app, which writes a row to PostgreSQL and counts in Redis.
    for n in 1..=3 {
        let v = s.get("/");
        assert_eq!((v["rows"].as_i64(), v["visits"].as_i64()), (Some(n), Some(n)), "{v}");
    }

    // psql inside the database's container sees them.
    assert_eq!(s.psql("SELECT count(*) FROM visits"), "3");

    // down: PostgreSQL gets its stop signal (SIGINT, a fast shutdown) and finishes it in time.
    let o = s.tfctl(&["down", "real-stack"]);
    assert_eq!(o.status.code(), Some(0), "down: {}", stderr(&o));
    let log = s.db_log();
    assert!(log.contains("received fast shutdown request"), "{log}");
    assert!(log.contains("database system is shut down"), "{log}");

    // up again: the rows are in the volume, and PostgreSQL starts without crash recovery.
    s.up();
    let log = s.db_log();
    // A new run's log starts afresh (the last run's was read above): it says the database was
    // shut down cleanly, and it is ready.
    assert!(log.contains("database system was shut down at"), "{log}");
    assert!(log.contains("database system is ready to accept connections"), "{log}");
    assert!(!log.contains("database system was not properly shut down"), "{log}");
    assert!(!log.contains("automatic recovery in progress"), "{log}");
    let v = s.get("/");
    assert_eq!(v["rows"].as_i64(), Some(4), "{v}");
    let rows = s.get("/visits");
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(4), "{rows}");

    let o = s.tfctl(&["down", "--volumes", "real-stack"]);
    assert_eq!(o.status.code(), Some(0), "down --volumes: {}", stderr(&o));
    assert!(common::mounts_under(s.t.root.path()).is_empty());
}

/// `restart --reset` of the app tier throws away what was written in its container since it
/// started, and nothing of the database's: the rows written before are there after, PostgreSQL
/// and Redis did not restart.
#[test]
fn restart_reset_of_the_app_tier_keeps_the_database() {
    let s = Stack::new("reset");
    s.up();
    for n in 1..=2 {
        let v = s.get("/");
        assert_eq!(v["rows"].as_i64(), Some(n), "{v}");
    }
    let ready = "database system is ready to accept connections";
    let readies = s.db_log().matches(ready).count();
    // Written in the app's container since it started: what the reset must discard.
    let o = s.tfctl(&["exec", "real-stack/app", "--", "sh", "-c", "echo scratch > /app/scratch"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let o = s.tfctl(&["restart", "--reset", "real-stack/app"]);
    assert_eq!(o.status.code(), Some(0), "restart --reset: {}{}", stderr(&o), s.logs());
    s.wait_healthy("app");
    // The reset happened: the file is gone, the app's own code is back in place.
    let o = s.tfctl(&["exec", "real-stack/app", "--", "ls", "/app"]);
    assert_eq!(stdout(&o), "app.py\n", "{}", stderr(&o));

    // The database and the cache went on as they were.
    for tier in ["db", "cache"] {
        let c = s.container(tier);
        assert_eq!((c["state"].as_str(), c["restarts"].as_u64()), (Some("running"), Some(0)), "{c}");
    }
    assert_eq!(s.db_log().matches(ready).count(), readies, "PostgreSQL started again: {}", s.db_log());
    // Through nginx, the new app process finds the rows (and the count) from before.
    let v = s.get("/");
    assert_eq!((v["row"].as_i64(), v["rows"].as_i64(), v["visits"].as_i64()), (Some(3), Some(3), Some(3)), "{v}");
    assert_eq!(s.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM visits"), "1,2,3");
}

/// A terminal the test holds: the master side of a pty whose slave is tfctl's stdin, stdout and
/// stderr. What arrives on the master is collected by a thread.
struct Terminal {
    master: std::fs::File,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// How much of `seen` the last `expect` consumed.
    read: usize,
}

impl Terminal {
    /// Starts `cmd` on a new 24x80 pty.
    fn spawn(mut cmd: Command) -> (Terminal, std::process::Child) {
        use nix::fcntl::OFlag;
        // Both ends close-on-exec from the start: no other test's child may hold them.
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
        nix::pty::grantpt(&master).unwrap();
        nix::pty::unlockpt(&master).unwrap();
        let path = nix::pty::ptsname_r(&master).unwrap();
        let slave = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(&path).unwrap();
        // A terminal's size, as a terminal emulator sets it (psql pages output taller than it).
        let o = Command::new("stty").args(["rows", "24", "cols", "80"]).stdin(slave.try_clone().unwrap()).output().unwrap();
        assert!(o.status.success(), "stty: {}", stderr(&o));
        cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave);
        let child = cmd.spawn().expect("tfctl runs");
        // The slave's last descriptor is the child's now: reads on the master end (EIO) when it exits.
        drop(cmd);
        let master = std::fs::File::from(std::os::fd::OwnedFd::from(master));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut reader, &mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (Terminal { master, seen, read: 0 }, child)
    }

    fn send(&mut self, bytes: &[u8]) {
        std::io::Write::write_all(&mut self.master, bytes).unwrap();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits (a minute at most) until `needle` arrives after what was consumed so far, and
    /// consumes up to its end; returns what came before it.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = self.seen.lock().unwrap().clone();
            let rest = String::from_utf8_lossy(&seen[self.read..]).into_owned();
            if let Some(at) = rest.find(needle) {
                self.read += rest[..at + needle.len()].len();
                return rest[..at].to_string();
            }
            assert!(Instant::now() < deadline, "no {needle:?} on the terminal; it shows:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `exec -it db -- psql` on a real terminal: psql sees a tty (it prints its banner and prompt),
/// answers a query typed at the prompt, a Ctrl-C at the terminal cancels a running query (the
/// container's pty turns it into SIGINT, psql sends PostgreSQL a cancel request) and the prompt
/// comes back; `\q` ends it with status 0. `exec -t` alone gives psql a terminal for its output.
#[test]
fn psql_in_the_database_s_container_on_a_terminal() {
    let s = Stack::new("pty");
    s.up();
    s.get("/");

    let mut cmd = s.cmd();
    cmd.args(["exec", "-it", "real-stack/db", "--", "psql", "-U", "postgres", "-d", "visits"]);
    let (mut term, mut child) = Terminal::spawn(cmd);
    let banner = term.expect("visits=# ");
    assert!(banner.contains("Type \"help\" for help."), "{banner}");

    term.send(b"SELECT 'rows: ' || count(*) AS answer FROM visits;\r");
    let answer = term.expect("visits=# ");
    assert!(answer.contains(" rows: 1\r\n(1 row)\r\n"), "{answer}");

    // A query that would run for a minute, cancelled from the keyboard once PostgreSQL runs it.
    term.send(b"SELECT pg_sleep(60);\r");
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60);' AND state = 'active'") != "1" {
        assert!(Instant::now() < deadline, "the query never ran: {}", term.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    term.send(b"\x03");
    let cancelled = term.expect("visits=# ");
    assert!(cancelled.contains("canceling statement due to user request"), "{cancelled}");

    term.send(b"\\q\r");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("psql did not end on \\q: {}", term.text());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", term.text());

    // -t without -i: psql's output comes through the container's pty (\r\n), its input is empty.
    let o = s.tfctl(&["exec", "-t", "real-stack/db", "--", "psql", "-U", "postgres", "-d", "visits", "-P", "pager=off", "-tAc", "SELECT 40 + 2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "42\r\n");
}

/// PostgreSQL with a memory limit it cannot live in (its first start's initdb alone needs more
/// than 24 MiB): the kernel kills it at the limit, `up --wait` fails naming the database and
/// why, and `ps` says out of memory, not a plain exit; the tier waiting for it never starts.
#[test]
fn postgres_at_a_memory_limit_it_cannot_live_in_is_reported_out_of_memory() {
    let s = Stack::derived("oom", |text| text.replacen("container \"db\" {\n", "container \"db\" {\n    limits memory=\"24M\"\n", 1));
    let o = s.tfctl(&["up", "--wait=300s", &s.file]);
    assert_eq!(o.status.code(), Some(3), "up: {}{}", stderr(&o), s.logs());
    let err = stderr(&o);
    assert!(err.contains("container db of app real-stack failed: out of memory"), "{err}");
    let db = s.container("db");
    assert_eq!(db["state"], "failed", "{db}");
    let reason = db["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("out of memory: the kernel killed"), "{db}");
    assert!(s.db_log().contains("Killed"), "{}", s.db_log());
    assert_ne!(s.container("app")["state"], "running");
}

/// `up --wait` does not call an app ready whose container exits right after it started: it fails
/// with status 3, naming the container and its exit. A busybox shell that exits 1, and nginx
/// with a configuration it refuses (it exits at once, as it would on a host); the control, a
/// container that stays, is ready.
#[test]
fn up_wait_fails_on_a_container_that_exits_right_after_start() {
    let s = Stack::new("exits");
    let dir = tempfile::tempdir().unwrap();
    let busybox = common::sample_image();
    let nginx = format!("oci:{}:nginx", s.images);
    for (app, body, container, why) in [
        ("sh", format!("container \"quits\" {{\n image \"{busybox}\"\n command \"sh\" \"-c\" \"echo cannot go on >&2; exit 1\"\n}}\n"), "quits", "exited with status 1"),
        (
            "badconf",
            format!("container \"web\" {{\n image \"{nginx}\"\n file \"/etc/nginx/conf.d/default.conf\" \"server {{ listen 80; no_such_directive on; }}\\n\"\n}}\n"),
            "web",
            "exited with status 1",
        ),
    ] {
        let file = dir.path().join(format!("{app}.kdl"));
        std::fs::write(&file, format!("app \"{app}\"\n{body}")).unwrap();
        let o = s.tfctl(&["up", "--wait=120s", file.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{app}: {err}");
        assert!(err.contains(&format!("container {container} of app {app} failed: {why}")), "{app}: {err}");
        let o = s.tfctl(&["logs", app]);
        let log = format!("{}{}", stdout(&o), stderr(&o));
        assert!(log.contains(if app == "sh" { "cannot go on" } else { "unknown directive \"no_such_directive\"" }), "{app}: {log}");
        assert_eq!(s.tfctl(&["down", app]).status.code(), Some(0));
    }
    // The control: the same image staying up is ready.
    let file = dir.path().join("stays.kdl");
    std::fs::write(&file, format!("app \"stays\"\ncontainer \"box\" {{\n image \"{busybox}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n")).unwrap();
    let o = s.tfctl(&["up", "--wait=120s", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = s.tfctl(&["ps", "stays", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["apps"][0]["containers"][0]["state"], "running", "{v}");
    assert_eq!(s.tfctl(&["down", "stays"]).status.code(), Some(0));
}
