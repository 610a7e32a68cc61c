//! Real workloads, run as Docker runs them: samples/real-stack.kdl (nginx, a Python app,
//! PostgreSQL 15 and Redis, images built from Debian's packages by scripts/real-images.sh) under
//! tfctl's default confinement. The images are built first; when they cannot be, the test fails.

mod common;

use common::{repo, stderr, stdout, NetNs, Tfctl};
use std::process::{Command, Output};

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

struct Stack<'a> {
    t: &'a Tfctl,
    ns: &'a NetNs,
    images: String,
    file: String,
}

impl Stack<'_> {
    fn tfctl(&self, args: &[&str]) -> Output {
        self.t.cmd_in(self.ns).env("TFCTL_REAL_IMAGES", &self.images).args(args).output().expect("tfctl runs")
    }

    fn up(&self) {
        let o = self.tfctl(&["up", "--wait=300s", &self.file]);
        assert_eq!(o.status.code(), Some(0), "up: {}{}", stderr(&o), self.logs());
        // --wait returned: every container is running and healthy.
        let o = self.tfctl(&["ps", "real-stack", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let containers = v["apps"][0]["containers"].as_array().expect("ps lists the containers").clone();
        assert_eq!(containers.len(), 4, "{v}");
        for c in &containers {
            assert_eq!(c["state"], "running", "{c}");
            assert_eq!(c["health"], "healthy", "{c}");
        }
    }

    /// A request to nginx's published port, as a client on the host would make it.
    fn get(&self, path: &str) -> serde_json::Value {
        let o = self.ns.sh(&format!("wget -qO- -T 20 http://127.0.0.1:8080{path}"));
        assert!(o.status.success(), "GET {path}: {}{}", stderr(&o), self.logs());
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", stdout(&o)))
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
    let images = real_images();
    let ns = NetNs::new("real");
    let t = Tfctl::new();
    let file = repo().join("samples/real-stack.kdl").to_string_lossy().into_owned();
    let s = Stack { t: &t, ns: &ns, images, file };

    // First start: the entrypoint initialises the cluster in the empty volume.
    s.up();
    assert!(s.db_log().contains("PostgreSQL init process complete"), "{}", s.db_log());

    // Through nginx to the app, which writes a row to PostgreSQL and counts in Redis.
    for n in 1..=3 {
        let v = s.get("/");
        assert_eq!((v["rows"].as_i64(), v["visits"].as_i64()), (Some(n), Some(n)), "{v}");
    }

    // psql inside the database's container sees them.
    let o = s.tfctl(&["exec", "real-stack/db", "--", "psql", "-U", "postgres", "-d", "visits", "-tAc", "SELECT count(*) FROM visits"]);
    assert_eq!(o.status.code(), Some(0), "exec psql: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "3");

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
    assert!(common::mounts_under(t.root.path()).is_empty());
}
