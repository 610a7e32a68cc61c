//! The command line itself: exit codes, help, version, completions, and man pages that match
//! the clap definitions.

mod common;

use common::{stderr, stdout, tfctl_bin, Tfctl};

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

/// Every subcommand's page says how it exits; those of commands that print JSON show it, the
/// main ones show examples; no page names a page that does not exist.
#[test]
fn man_pages_have_exit_status_json_and_examples_and_name_only_real_pages() {
    let man = common::repo().join("man");
    let page = |name: &str| std::fs::read_to_string(man.join(name)).unwrap_or_else(|e| panic!("man/{name}: {e}"));
    for entry in std::fs::read_dir(&man).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = page(&name);
        if name.starts_with("tfctl-") && name.ends_with(".1") {
            assert!(text.contains(".SH \"EXIT STATUS\""), "man/{name} has no EXIT STATUS");
        }
        // References such as tfctl\-up(1) or tfctl.kdl(5) name pages of man/.
        let unescaped = text.replace("\\-", "-").replace("\\fB", "").replace("\\fR", "");
        for (i, _) in unescaped.match_indices("tfctl") {
            let rest = &unescaped[i..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')).unwrap_or(rest.len());
            let (word, after) = rest.split_at(end);
            if let Some(section) = after.strip_prefix('(').and_then(|a| a.chars().next()).filter(char::is_ascii_digit) {
                assert!(man.join(format!("{word}.{section}")).exists(), "man/{name} names {word}({section}), which does not exist");
            }
        }
    }
    for name in ["tfctl-ps.1", "tfctl-config.1", "tfctl-plan.1", "tfctl-images-ls.1", "tfctl-info.1"] {
        assert!(page(name).contains(".SH JSON"), "man/{name} does not show its JSON");
    }
    for name in ["tfctl-up.1", "tfctl-down.1", "tfctl-systemd.1", "tfctl-ps.1", "tfctl-run.1", "tfctl-exec.1"] {
        assert!(page(name).contains(".SH EXAMPLES"), "man/{name} has no EXAMPLES");
    }
}

/// `info` tells what this host has, as the kernel says it elsewhere; JSON carries the schema.
#[test]
fn info_reports_this_host() {
    let t = Tfctl::new();
    let o = t.run(&["--format", "json", "info"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(v["kernel"]["release"], release.trim());
    assert_eq!(v["root"], true);
    assert_eq!(v["missing"].as_array().map(Vec::len), Some(0), "{v}");
    let names: Vec<&str> = v["features"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    for want in ["overlay file system", "nftables", "seccomp filters", "user namespaces"] {
        assert!(names.iter().any(|n| n.starts_with(want)), "{want} not in {names:?}");
    }
    let o = t.run(&["info"]);
    assert!(stdout(&o).contains("kernel:") && stdout(&o).contains("this host can run them"), "{}", stdout(&o));
}

/// Not root: a command that needs root says so in one line with exit 1 (never an empty table
/// with 0); commands that only read a file work.
#[test]
fn commands_that_need_root_say_so() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("app.kdl");
    std::fs::write(&file, "app \"x\"\ncontainer \"c\" { image \"busybox\"; }\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", tfctl_bin()]).args(args);
        cmd.env("TFCTL_ROOT", t.root.path().join("state")).env("TFCTL_CONFIG", "/nonexistent/config.kdl").env("NO_COLOR", "1");
        cmd.output().unwrap()
    };
    for (args, name) in [(&["ps"][..], "ps"), (&["up", "-d", file.to_str().unwrap()][..], "up"), (&["images", "ls"][..], "images"), (&["run", "--rm", "busybox", "true"][..], "run")] {
        let o = as_nobody(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim(), format!("tfctl {name}: must be run as root (rootless mode is not supported)"));
        assert!(o.stdout.is_empty(), "{}", stdout(&o));
    }
    let o = as_nobody(&["check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = as_nobody(&["info"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("root:         no"), "{}", stdout(&o));
}

/// `scripts/install.sh` puts what a packaged tool has where `man` and the shells find it: a
/// binary without debug info, every man page (and only references to pages it installs), and
/// completions for bash, zsh and fish.
#[test]
fn install_sh_installs_a_tool_as_a_package_would() {
    let dest = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(common::repo().join("scripts/install.sh"))
        .env("DESTDIR", dest.path())
        .env("PREFIX", "/usr")
        .env("TFCTL_BIN", tfctl_bin())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let root = dest.path().join("usr");
    let bin = root.join("bin/tfctl");
    let v = std::process::Command::new(&bin).arg("version").output().unwrap();
    assert!(stdout(&v).starts_with("tfctl "), "{}", stdout(&v));
    let sections = std::process::Command::new("readelf").arg("-S").arg("-W").arg(&bin).output().unwrap();
    assert!(sections.status.success(), "{}", stderr(&sections));
    assert!(!stdout(&sections).contains(".debug_info"), "the installed binary carries debug info");
    for page in ["man1/tfctl.1", "man1/tfctl-up.1", "man1/tfctl-info.1", "man5/tfctl.kdl.5", "man5/tfctl-config.5"] {
        assert!(root.join("share/man").join(page).is_file(), "{page} not installed");
    }
    // Every page a page names is installed.
    let mut named = std::collections::BTreeSet::new();
    for dir in ["man1", "man5"] {
        for e in std::fs::read_dir(root.join("share/man").join(dir)).unwrap().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap().replace("\\-", "-");
            for (i, _) in text.match_indices('(') {
                let section = text[i + 1..].chars().next().unwrap_or(' ');
                let name: String = text[..i].chars().rev().take_while(|c| c.is_ascii_alphanumeric() || "-._".contains(*c)).collect::<Vec<_>>().into_iter().rev().collect();
                if name.starts_with("tfctl") && section.is_ascii_digit() && text[i + 2..].starts_with(')') {
                    named.insert(format!("man{section}/{name}.{section}"));
                }
            }
        }
    }
    assert!(named.len() >= 3, "{named:?}");
    for page in &named {
        assert!(root.join("share/man").join(page).is_file(), "a page refers to {page}, which is not installed");
    }
    for f in ["share/bash-completion/completions/tfctl", "share/zsh/site-functions/_tfctl", "share/fish/vendor_completions.d/tfctl.fish"] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        assert!(text.contains("userns") || text.contains("up"), "{f} is empty");
    }
}
