//! What a process started in a container gets of the tfctl that started it, and what it can do
//! to tfctl: `exec` and a foreground `run` give it pipes tfctl relays, never the caller's own
//! stdin, stdout and stderr, so what it leaves running can neither read the terminal nor keep
//! a redirect target once tfctl has returned; and a process that another process in the
//! container ptraces is still reaped and reported, so `exec` returns and `down` cleans up.

mod common;

use common::{busybox_image, stderr, stdout, Tfctl, World};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes outside the test's own pid namespace (so: in a container) that hold `path` open.
fn container_holders(path: &Path) -> Vec<String> {
    let own_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let mut found = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let dir = p.path();
        if !p.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if std::fs::read_link(dir.join("ns/pid")).map_or(true, |ns| ns == own_ns) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else { continue };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l == path) {
                found.push(fd.path().display().to_string());
            }
        }
    }
    found
}

/// Runs `tfctl exec` as `exec` (a command factory for the right world) until `path` exists
/// in the container, for at most 20 s; returns its content.
fn wait_for_file(exec: &dyn Fn(&[&str]) -> std::process::Output, target: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = exec(&["exec", target, "--", "cat", path]);
        if o.status.code() == Some(0) {
            return stdout(&o);
        }
        assert!(Instant::now() < deadline, "{path} never appeared in {target}: {}", stderr(&o));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the exec'd shell does: names its descriptors, writes more than a pipe holds to stdout
/// and a line to stderr, and leaves a subshell behind that, once told (by /tmp/go), reads its
/// stdin and writes to its stdout, noting what happened.
const LEAVES_A_READER_AND_WRITER: &str = "for n in 0 1 2; do l=$(readlink /proc/$$/fd/$n); echo $l >> /tmp/links; done; \
     seq 1 30000; echo to-stderr >&2; \
     ( trap '' PIPE; while [ ! -e /tmp/go ]; do sleep 0.05; done; \
       read -r line; echo \"read:$line\" > /tmp/read; \
       echo after-exit && r=written || r=refused; echo $r > /tmp/wrote; echo done > /tmp/done ) & \
     exit 5";

fn numbers() -> String {
    (1..=30000).map(|n| format!("{n}\n")).collect()
}

/// `exec -i` with stdin a pipe the test keeps, stdout a file opened for append (a shell's
/// `>> file`) and stderr a file: the process sees pipes, its output arrives in full, and what it
/// left running gets EOF and EPIPE instead of the test's descriptors once tfctl has returned.
fn exec_leaves_nothing_of_the_caller(cmd: &dyn Fn() -> Command, target: &str, scratch: &Path) {
    let exec = |args: &[&str]| cmd().args(args).output().unwrap();
    let out_path = scratch.join("exec.out");
    let err_path = scratch.join("exec.err");
    std::fs::write(&out_path, "").unwrap();
    let (stdin_r, stdin_w) = nix::unistd::pipe().unwrap();
    let status = {
        let mut c = cmd();
        c.args(["exec", "-i", target, "--", "sh", "-c", LEAVES_A_READER_AND_WRITER])
            .stdin(Stdio::from(stdin_r))
            .stdout(std::fs::OpenOptions::new().append(true).open(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        c.status().unwrap()
    };
    assert_eq!(status.code(), Some(5), "{}", std::fs::read_to_string(&err_path).unwrap());
    assert!(std::fs::read_to_string(&out_path).unwrap() == numbers(), "stdout is not 1..30000 in order");
    assert_eq!(std::fs::read_to_string(&err_path).unwrap(), "to-stderr\n");
    let links = wait_for_file(&exec, target, "/tmp/links");
    assert_eq!(links.lines().count(), 3, "{links}");
    assert!(links.lines().all(|l| l.starts_with("pipe:[")), "the process got other descriptors than tfctl's pipes: {links}");
    // The subshell still runs, and holds nothing of the test's.
    assert_eq!(container_holders(&out_path), Vec::<String>::new(), "a container process holds the caller's stdout file");

    // Typed after tfctl returned: nobody reads it (the subshell's stdin is tfctl's pipe, closed).
    let typed = std::fs::File::from(stdin_w).write_all(b"secret\n");
    assert_eq!(typed.map_err(|e| e.kind()), Err(std::io::ErrorKind::BrokenPipe), "something still reads the caller's stdin");
    assert_eq!(exec(&["exec", target, "--", "touch", "/tmp/go"]).status.code(), Some(0));
    assert_eq!(wait_for_file(&exec, target, "/tmp/done"), "done\n");
    assert_eq!(wait_for_file(&exec, target, "/tmp/read"), "read:\n");
    assert_eq!(wait_for_file(&exec, target, "/tmp/wrote"), "refused\n");
    assert!(std::fs::read_to_string(&out_path).unwrap() == numbers(), "the caller's stdout file was written after tfctl returned");
}

fn sleeper(image: &str) -> String {
    format!("container \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n")
}

#[test]
fn exec_in_an_app_gives_pipes_and_nothing_outlives_it() {
    let w = World::new("xpipe");
    let _up = w.up("xp", &sleeper(&w.image));
    exec_leaves_nothing_of_the_caller(&|| w.t.cmd_in(&w.ns), "xp/box", w.dir.path());

    // A client handing the supervisor its own file as stdin, stdout and stderr (as tfctl did
    // before it relayed pipes) is refused, and the file stays untouched.
    use std::os::fd::AsFd;
    let handed = w.dir.path().join("handed");
    let file = std::fs::File::create(&handed).unwrap();
    let control = w.t.root.path().join("state/apps/xp/run");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reply: serde_json::Value = rt.block_on(async {
        let mut c = tfctl_runtime::control::Connection::connect_with_fds(&control, &[file.as_fd(), file.as_fd(), file.as_fd()]).await.unwrap();
        c.send(&serde_json::json!({"op": "exec", "container": "box", "argv": ["sh", "-c", "echo written"], "tty": false})).await.unwrap();
        c.recv().await.unwrap().unwrap()
    });
    assert_eq!((reply["ok"].as_bool(), reply["status"].as_i64()), (Some(false), Some(125)), "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("pipes"), "{reply}");
    assert_eq!(std::fs::read_to_string(&handed).unwrap(), "");
}

/// A `tfctl run` child process, killed if the test ends early.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn exec_in_a_foreground_run_gives_pipes_and_nothing_outlives_it() {
    let t = Tfctl::new();
    let image = busybox_image();
    let mut c = t.cmd();
    c.args(["run", "--rm", "--name", "fgp", &image, "sh", "-c", "echo ready; exec sleep 600"]).stdout(Stdio::piped());
    let mut fg = Running(c.spawn().unwrap());
    let mut line = String::new();
    std::io::BufReader::new(fg.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let scratch = tempfile::tempdir().unwrap();
    exec_leaves_nothing_of_the_caller(&|| t.cmd(), "fgp", scratch.path());
    assert_eq!(t.run(&["rm", "--force", "fgp"]).status.code(), Some(0));
    assert_eq!(fg.0.wait().unwrap().code(), Some(137));
}

#[test]
fn a_foreground_run_gets_pipes_and_delivers_its_output_in_full() {
    let t = Tfctl::new();
    let image = busybox_image();
    let scratch = tempfile::tempdir().unwrap();
    let (input, out_path, err_path) = (scratch.path().join("in"), scratch.path().join("out"), scratch.path().join("err"));
    std::fs::write(&input, "typed\n").unwrap();
    let script = "for n in 0 1 2; do l=$(readlink /proc/$$/fd/$n); echo $l >&2; done; seq 1 30000; cat; exit 4";
    let run = |args: &[&str]| {
        let mut c = t.cmd();
        c.args(["run", "--rm"]).args(args).args([&image, "sh", "-c", script]);
        c.stdin(std::fs::File::open(&input).unwrap())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        c.status().unwrap()
    };
    // With -i: stdin is a pipe fed from the file.
    assert_eq!(run(&["-i"]).code(), Some(4), "{}", std::fs::read_to_string(&err_path).unwrap());
    assert!(std::fs::read_to_string(&out_path).unwrap() == numbers() + "typed\n", "stdout is not 1..30000 then the input");
    let links = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(links.lines().count(), 3, "{links}");
    assert!(links.lines().all(|l| l.starts_with("pipe:[")), "the container got other descriptors than tfctl's pipes: {links}");
    // Without -i: stdin is /dev/null, not the file.
    assert_eq!(run(&[]).code(), Some(4));
    assert!(std::fs::read_to_string(&out_path).unwrap() == numbers(), "the container read tfctl's stdin without -i");
    let links = std::fs::read_to_string(&err_path).unwrap();
    let links: Vec<&str> = links.lines().collect();
    assert_eq!(links[0], "/dev/null");
    assert!(links[1..].iter().all(|l| l.starts_with("pipe:[")), "{links:?}");
}

/// A tracer for the container: waits for a pid in ARGV[1], PTRACE_SEIZEs that process, notes it
/// in ARGV[1].seized, waits for it to exit (a zombie only it may collect), notes that in
/// ARGV[1].zombie, and with ARGV[2] collects it (then exits) once that file exists; without,
/// it holds the zombie for good.
const TRACER: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static int exists(const char *p) { return access(p, F_OK) == 0; }
static void note(const char *base, const char *suffix, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s.%s", base, suffix);
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}
static char state(int pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] && p[2] ? p[2] : '?';
}
int main(int argc, char **argv) {
    int pid = 0;
    while (pid <= 0) {
        FILE *f = fopen(argv[1], "r");
        if (f) { if (fscanf(f, "%d", &pid) != 1) pid = 0; fclose(f); }
        if (pid <= 0) usleep(20000);
    }
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) {
        note(argv[1], "seized", strerror(errno));
        return 1;
    }
    note(argv[1], "seized", "seized");
    while (state(pid) != 'Z') usleep(20000);
    note(argv[1], "zombie", "zombie");
    if (argc < 3) for (;;) pause();
    while (!exists(argv[2])) usleep(20000);
    int status;
    waitpid(pid, &status, __WALL);
    return 0;
}
"#;

/// Builds the tracer as a static binary (the busybox image has no libc).
fn build_tracer(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("tracer.c");
    let bin = dir.join("tracer");
    std::fs::write(&src, TRACER).unwrap();
    let o = Command::new("cc").args(["-static", "-O", "-o"]).arg(&bin).arg(&src).output().expect("a C compiler (cc) builds the test's tracer");
    assert!(o.status.success(), "cc: {}", String::from_utf8_lossy(&o.stderr));
    bin
}

/// Host processes whose environment names this test's state root: its supervisor and spawners.
fn tfctl_processes_of(t: &Tfctl) -> Vec<String> {
    let needle = format!("TFCTL_ROOT={}", t.root.path().join("state").display());
    let own = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| p.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) && p.file_name().to_string_lossy() != own)
        .filter(|p| std::fs::read(p.path().join("environ")).is_ok_and(|e| e.split(|b| *b == 0).any(|v| v == needle.as_bytes())))
        .map(|p| format!("{} {}", p.file_name().to_string_lossy(), String::from_utf8_lossy(&std::fs::read(p.path().join("cmdline")).unwrap_or_default())))
        .collect()
}

/// Waits for `child` at most `patience`; kills it and fails if it is still running then.
fn wait_or_fail(child: &mut std::process::Child, patience: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not return within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A container with the default confinement (root, default capabilities and seccomp, which
/// allow ptrace of its own processes) seizes an `exec`'d process: `exec` still returns with the
/// process's status once the tracer lets go of its zombie, and `down` cleans up a container
/// whose tracer never does.
#[test]
fn a_traced_exec_is_still_reaped_and_down_cleans_up() {
    let w = World::new("xtrace");
    let tracer = build_tracer(w.dir.path());
    let up = w.up("xt", &sleeper(&w.image));
    let exec = |args: &[&str]| up.run(args);
    let o = exec(&["cp", tracer.to_str().unwrap(), "xt/box:/tracer"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = exec(&["exec", "xt/box", "--", "sh", "-c", "chmod 755 /tracer; mkfifo /tmp/fifo1 /tmp/fifo2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The victim: an exec'd shell that names itself, then exits with 7 when told through a FIFO
    // (a builtin read: it starts no process the tracer could take for it).
    let victim = |n: u32, code: u32| {
        let script = format!("echo $$ > /tmp/victim{n}; read -r x < /tmp/fifo{n}; exit {code}");
        let mut c = w.t.cmd_in(&w.ns);
        c.args(["exec", "xt/box", "--", "sh", "-c", &script]).stdout(Stdio::null()).stderr(Stdio::piped());
        Running(c.spawn().unwrap())
    };
    let traced = |n: u32, code: u32, release: Option<&str>| {
        let mut args = format!("/tracer /tmp/victim{n}");
        if let Some(r) = release {
            args.push(' ');
            args.push_str(r);
        }
        let o = exec(&["exec", "xt/box", "--", "sh", "-c", &format!("{args} > /tmp/tracer{n}.log 2>&1 &")]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v = victim(n, code);
        assert_eq!(wait_for_file(&exec, "xt/box", &format!("/tmp/victim{n}.seized")), "seized", "the tracer could not seize the exec'd process");
        let o = exec(&["exec", "xt/box", "--", "sh", "-c", &format!("echo go > /tmp/fifo{n}")]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        // The process has exited; only its tracer may collect it for now.
        assert_eq!(wait_for_file(&exec, "xt/box", &format!("/tmp/victim{n}.zombie")), "zombie");
        v
    };

    // Let go of: exec returns with the process's own status.
    let mut v = traced(1, 7, Some("/tmp/release1"));
    assert_eq!(exec(&["exec", "xt/box", "--", "touch", "/tmp/release1"]).status.code(), Some(0));
    assert_eq!(wait_or_fail(&mut v.0, Duration::from_secs(30), "exec of a traced process").code(), Some(7));

    // Held for good: `down` stops the container (and with it the tracer) and nothing is left,
    // not the supervisor nor its spawner; the exec returns too.
    let mut v = traced(2, 9, None);
    let mut down = w.t.cmd_in(&w.ns).args(["down", "xt"]).stderr(Stdio::piped()).spawn().unwrap();
    assert_eq!(wait_or_fail(&mut down, Duration::from_secs(60), "down").code(), Some(0));
    wait_or_fail(&mut v.0, Duration::from_secs(30), "exec of a process whose tracer never let go");
    assert_eq!(tfctl_processes_of(&w.t), Vec::<String>::new(), "tfctl processes remain after down");
}
