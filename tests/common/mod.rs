//! Shared fixtures of the integration tests: the built binary and per-test state roots.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `tfctl` binary cargo built for this test run.
pub fn tfctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tfctl")
}

/// The repository's top folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A `tfctl` command with its own state root and no host config, so tests never share state
/// with each other or with the host's /var/lib/tfctl.
pub struct Tfctl {
    pub root: tempfile::TempDir,
}

impl Tfctl {
    pub fn new() -> Self {
        let root = tempfile::Builder::new().prefix("tfctl-test-").tempdir().unwrap();
        Tfctl { root }
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(tfctl_bin());
        cmd.env("TFCTL_ROOT", self.root.path().join("state"))
            .env("TFCTL_CONFIG", self.root.path().join("no-config.kdl"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("tfctl runs")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
