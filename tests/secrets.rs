//! Secrets reach the container as files on a tmpfs, and nowhere else: not the state root, not
//! /run, /tmp or /var/tmp, not tfctl's verbose output or logs, not any process's environment or
//! command line (unless the app file asks for an environment variable).

mod common;

use common::{sample_image, stderr, stdout, NetNs, Tfctl};

fn random_secret() -> String {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).unwrap();
    // Printable, so it can travel through an environment variable.
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Files under `dir` (not following symlinks, not crossing into /proc-like trees) containing
/// any of `needles`.
fn files_containing(dir: &std::path::Path, needles: &[&str], found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        if m.is_dir() {
            files_containing(&p, needles, found);
        } else if m.is_file() && m.len() < 64 << 20 {
            if let Ok(bytes) = std::fs::read(&p) {
                let text = String::from_utf8_lossy(&bytes);
                if needles.iter().any(|n| text.contains(n)) {
                    found.push(p.display().to_string());
                }
            }
        }
    }
}

#[test]
fn a_secret_is_in_its_file_and_nowhere_else() {
    sample_image();
    let ns = NetNs::new("secret");
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = random_secret();
    let image = sample_image();
    let file = dir.path().join("app.kdl");
    std::fs::write(
        &file,
        format!(
            "app \"sec\"\nsecret \"token\" from-env=\"TFCTL_TEST_TOKEN\"\ncontainer \"app\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n init\n stop-timeout \"1s\"\n secret \"token\" at=\"/run/secrets/token\"\n}}\n"
        ),
    )
    .unwrap();
    let mut c = ns.cmd(common::tfctl_bin());
    c.env("TFCTL_ROOT", t.root.path().join("state")).env("TFCTL_CONFIG", t.root.path().join("none")).env("NO_COLOR", "1");
    c.env("TFCTL_TEST_TOKEN", &secret).args(["--verbose", "up", "--trust-file", "--wait=30s", file.to_str().unwrap()]);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let output = format!("{}{}", stdout(&o), stderr(&o));

    // The container has it, as a 0400 file on a tmpfs.
    let o = t.run_in(&ns, &["exec", "sec/app", "--", "sh", "-c", "cat /run/secrets/token; echo; stat -c '%a %U' /run/secrets/token; grep ' /run/secrets/token ' /proc/self/mountinfo; ls /run/secrets; env"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let inside = stdout(&o);
    let mut lines = inside.lines();
    assert_eq!(lines.next(), Some(secret.as_str()));
    assert_eq!(lines.next(), Some("400 root"));
    let mount = lines.next().unwrap_or_default();
    assert!(mount.contains(" tmpfs ") && mount.contains("nosuid") && mount.contains("nodev") && mount.contains("noexec"), "{mount}");
    // A mount of its own file: kept out of swap (this kernel has tmpfs noswap; the legacy route,
    // forced by TFCTL_FORCE_LEGACY_MOUNT=1, goes without as Linux before 6.4 must) and at most 1 MiB.
    let legacy = std::env::var_os("TFCTL_FORCE_LEGACY_MOUNT").is_some_and(|v| v == "1");
    assert_eq!(mount.contains("noswap"), !legacy, "{mount}");
    assert!(mount.contains("size=1024k"), "{mount}");
    assert_eq!(lines.next(), Some("token"), "only the secret's own file is there");
    assert!(!lines.any(|l| l.contains(&secret)), "the secret is in the container's environment");

    let needles = [secret.as_str(), &base64(&secret)];
    let mut found = Vec::new();
    for d in [t.root.path(), std::path::Path::new("/run"), std::path::Path::new("/var/tmp")] {
        files_containing(d, &needles, &mut found);
    }
    // /tmp holds other tests' files too; the app file and this test's own temp folder hold no
    // secret, so any hit there is a leak.
    files_containing(std::path::Path::new("/tmp"), &needles, &mut found);
    // Processes: the test itself passed the secret to tfctl in its environment, so only other
    // processes count.
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        for f in ["environ", "cmdline"] {
            if let Ok(bytes) = std::fs::read(p.path().join(f)) {
                if needles.iter().any(|n| String::from_utf8_lossy(&bytes).contains(n)) {
                    found.push(format!("/proc/{pid}/{f}"));
                }
            }
        }
    }
    let logs = t.run_in(&ns, &["logs", "sec"]);
    let everything = format!("{output}{}{}", stdout(&logs), stderr(&logs));
    assert!(!needles.iter().any(|n| everything.contains(n)), "the secret is in tfctl's output or logs");
    assert_eq!(t.run_in(&ns, &["down", "sec"]).status.code(), Some(0));
    assert!(found.is_empty(), "the secret leaked into: {found:?}");
}
