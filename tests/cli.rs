//! The command line itself: exit codes, help, version, completions, and man pages that match
//! the clap definitions.

mod common;

use common::{stderr, stdout, Tfctl};

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let t = Tfctl::new();
    let o = t.run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unrecognized subcommand 'frobnicate'"), "{}", stderr(&o));

    let o = t.run(&["up", "--no-such-flag", "app.kdl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--no-such-flag"), "{}", stderr(&o));

    // `--wait` takes its timeout with `=`, so a following file is not swallowed as one.
    let o = t.run(&["up", "--wait", "--detach"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let t = Tfctl::new();
    let o = t.run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for word in ["check", "up", "down", "exec", "images", "volumes", "completions", "Exit status"] {
        assert!(stdout(&o).contains(word), "help lacks {word}: {}", stdout(&o));
    }
    let o = t.run(&["version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).trim(), format!("tfctl {}", env!("CARGO_PKG_VERSION")));
    let o = t.run(&["--version"]);
    assert_eq!(stdout(&o).trim(), format!("tfctl {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    let t = Tfctl::new();
    for shell in ["bash", "zsh", "fish"] {
        let o = t.run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains("images") && script.contains("volumes"), "{shell} script lacks subcommands");
    }
    let o = t.run(&["completions", "powerpoint"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn commands_that_never_touch_state_leave_the_root_alone() {
    let t = Tfctl::new();
    for args in [&["version"][..], &["completions", "bash"], &["--help"]] {
        t.run(args);
    }
    assert!(!t.root.path().join("state").exists(), "a read-only command created the state root");
}

#[test]
fn man_pages_match_the_command_line() {
    let out = tempfile::tempdir().unwrap();
    let t = Tfctl::new();
    let o = t.run(&["generate-man", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let man = common::repo().join("man");
    let mut generated: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    generated.sort();
    assert!(generated.len() > 20, "expected a page per subcommand, got {generated:?}");
    for name in &generated {
        let fresh = std::fs::read(out.path().join(name)).unwrap();
        let committed = std::fs::read(man.join(name)).unwrap_or_default();
        assert!(
            fresh == committed,
            "man/{} is stale: run `cargo run -q -- generate-man man` and commit the result",
            name.to_string_lossy()
        );
    }
}

#[test]
fn systemd_prints_a_unit_whose_main_process_is_the_supervisor() {
    let t = Tfctl::new();
    let file = common::repo().join("samples/web.kdl");
    let o = t.run(&["systemd", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let unit = stdout(&o);
    let root = t.root.path().join("state");
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).expect("an ExecStart line");
    assert!(exec.ends_with(&format!("up --quiet {}", file.display())), "{exec}");
    assert!(exec.contains(&format!("--root {}", root.display())), "the unit loses --root: {exec}");
    assert!(unit.contains("ExecStopPost=-") && unit.contains("down --quiet web"), "{unit}");
    assert!(unit.contains("[Install]\nWantedBy=multi-user.target"), "{unit}");
    // The unit's cgroup is delegated: the containers' cgroups go below it (the VM checks in
    // scripts/vm/ show `systemctl stop` leaving nothing).
    assert!(unit.contains("\nDelegate=yes\n") && unit.contains("\nEnvironment=TFCTL_DELEGATED=1\n"), "{unit}");
    assert!(!root.exists(), "printing a unit touched the state root");
}
