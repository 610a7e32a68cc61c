//! `run` hook steps: commands on the host, in the app file's folder, with stdin from /dev/null,
//! a clean environment, and their own process group, so a timeout kills everything they started.
//! The files a step executes are opened and checked when it runs, and run by descriptor
//! (crate::trust::pin): `$0` of a script is then `/dev/fd/N`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How a host command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOutcome {
    /// Exit status, shell-style (128+N after signal N); `None` when it timed out.
    pub status: Option<i32>,
    pub timed_out: bool,
    /// stdout and stderr, interleaved as read, at most 64 KiB (for the supervisor's log).
    pub output: String,
}

impl HostOutcome {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

const OUTPUT_LIMIT: usize = 64 * 1024;

/// Runs `argv` on the host and waits for it, at most `timeout`; then its whole process group is
/// killed. An argv that cannot be started is an error naming the program; with `check_owners`,
/// so is a file it executes that someone other than root or the caller could change.
pub async fn run(argv: &[String], dir: &Path, env: &[(String, String)], timeout: Duration, check_owners: bool) -> std::io::Result<HostOutcome> {
    let Some(program) = argv.first() else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "a hook step has no command"));
    };
    let search = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str());
    let pinned = crate::trust::pin(argv, dir, search, check_owners)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, format!("hook command `{program}` not run: {e}")))?;
    let mut child = Command::new(&pinned.program)
        .arg0(&pinned.arg0)
        .args(&pinned.args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start hook command `{program}`: {e}")))?;
    // The child has its copies of the pinned files.
    drop(pinned);
    let pgid = child.id().map(|p| p as i32);
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");

    let collect = async {
        // Each stream keeps its first OUTPUT_LIMIT bytes and drains the rest: a hook printing
        // without end costs no memory, and never waits on a full pipe.
        async fn keep(r: &mut (impl tokio::io::AsyncRead + Unpin), buf: &mut Vec<u8>) {
            let _ = r.take(OUTPUT_LIMIT as u64).read_to_end(buf).await;
            let _ = tokio::io::copy(r, &mut tokio::io::sink()).await;
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        tokio::join!(keep(&mut stdout, &mut out), keep(&mut stderr, &mut err));
        out.extend_from_slice(&err);
        out.truncate(OUTPUT_LIMIT);
        String::from_utf8_lossy(&out).into_owned()
    };
    let waited = tokio::time::timeout(timeout, async {
        let (output, status) = tokio::join!(collect, child.wait());
        (output, status)
    })
    .await;
    match waited {
        Ok((output, status)) => {
            let status = status?;
            let code = status_code(status);
            Ok(HostOutcome { status: Some(code), timed_out: false, output })
        }
        Err(_) => {
            if let Some(pgid) = pgid {
                // The group was made for this hook (process_group(0)), so its id is the
                // child's pid, which is ours to signal until we reap it below.
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.wait().await;
            Ok(HostOutcome { status: None, timed_out: true, output: String::new() })
        }
    }
}

/// Shell-style status: the exit code, or 128+N after signal N.
pub fn status_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn runs_in_the_folder_with_only_the_given_environment() {
        std::env::set_var("TFCTL_TEST_LEAK", "secret-value");
        let dir = tempfile::tempdir().unwrap();
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string()), ("TFCTL_APP".to_string(), "web".to_string())];
        let out = run(&sh("pwd; env | sort; read x || echo stdin-empty"), dir.path(), &env, Duration::from_secs(5), true).await.unwrap();
        assert!(out.success(), "{out:?}");
        assert!(out.output.contains(&dir.path().canonicalize().unwrap().display().to_string()));
        assert!(out.output.contains("TFCTL_APP=web"));
        assert!(out.output.contains("stdin-empty"));
        assert!(!out.output.contains("secret-value"), "tfctl's environment leaked into a hook");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-survived");
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let out = run(&sh(&script), dir.path(), &[], Duration::from_millis(300), true).await.unwrap();
        assert!(out.timed_out && out.status.is_none());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "a process the hook started outlived the timeout");
    }

    /// A script whose folder another user owns is not run (that user could have swapped it);
    /// the control: the same step with the owners' check off (`up --trust-file`) runs.
    #[tokio::test]
    async fn a_script_others_could_swap_is_not_run() {
        use std::os::unix::fs::PermissionsExt;
        assert!(nix::unistd::geteuid().is_root(), "this test changes file owners: run it as root");
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        std::fs::write(hooks.join("notify.sh"), "echo ran").unwrap();
        std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&hooks, Some(1000), Some(1000)).unwrap();
        let argv = vec!["/bin/sh".to_string(), "./hooks/notify.sh".to_string()];
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let err = run(&argv, dir.path(), &env, Duration::from_secs(5), true).await.unwrap_err();
        assert!(err.to_string().contains("hooks") && err.to_string().contains("uid 1000"), "{err}");
        let out = run(&argv, dir.path(), &env, Duration::from_secs(5), false).await.unwrap();
        assert_eq!(out.output, "ran\n");
    }

    #[tokio::test]
    async fn exit_codes_are_shell_style() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(&sh("exit 3"), dir.path(), &[], Duration::from_secs(5), true).await.unwrap();
        assert_eq!(out.status, Some(3));
        let out = run(&sh("kill -9 $$"), dir.path(), &[], Duration::from_secs(5), true).await.unwrap();
        assert_eq!(out.status, Some(137));
        let err = run(&["/no/such/program".to_string()], dir.path(), &[], Duration::from_secs(5), true).await.unwrap_err();
        assert!(err.to_string().contains("/no/such/program"));
    }
}
