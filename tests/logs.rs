//! A container's output as the supervisor logs it and `logs` and the foreground `up` show it,
//! each test in a network namespace of its own: output without newlines costs the supervisor
//! no memory and the log no more than its size, bytes that are not UTF-8 are kept, and control
//! characters reach a terminal escaped.

mod common;

use common::{stderr, stdout, Up, World};

/// A memory figure of /proc/PID/status, in kB.
fn status_kb(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{key}:"))).unwrap_or_else(|| panic!("no {key} in {status}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits (30 s at most) until the last line of `logs` of `target` is `line`.
fn wait_for_last_line(up: &Up<'_>, target: &str, line: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = up.run(&["logs", "--tail", "1", target]);
        if o.stdout == format!("{line}\n").as_bytes() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{target} never logged {line}: {}", stderr(&o));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_line_of_64_mib_costs_the_supervisor_no_memory_and_the_log_no_more_than_its_size() {
    let w = World::new("flood");
    std::fs::write(w.t.root.path().join("no-config.kdl"), "log-size \"1M\"\n").unwrap();
    let up = w.up(
        "flood",
        &format!(
            "container \"c\" {{\n image \"{}\"\n command \"sh\" \"-c\" \"head -c 67108864 /dev/zero | tr '\\\\0' x; echo; echo done; exec sleep 600\"\n stop-timeout \"1s\"\n}}\n",
            w.image
        ),
    );
    wait_for_last_line(&up, "flood/c", "done");
    let pid = up.ps()["apps"][0]["supervisor"]["pid"].as_i64().unwrap() as i32;
    // The supervisor's peak resident memory, over its whole life: 15 MB here, against 2.1 GB
    // for a line of 1 GiB when it held whole lines.
    let peak = status_kb(pid, "VmHWM");
    assert!(peak < 100 * 1024, "the supervisor peaked at {peak} kB");
    let logs = up.state_dir().join("apps/flood/logs");
    for f in ["c.log", "c.log.1"] {
        let size = std::fs::metadata(logs.join(f)).unwrap().len();
        assert!(size <= 1 << 20, "{f} is {size} bytes, over log-size 1M");
    }
    // What the log kept reads back as the end of that line, joined again, and the next.
    let o = up.run(&["logs", "flood/c"]);
    let out = &o.stdout;
    assert!(out.ends_with(b"x\ndone\n"), "{}", stderr(&o));
    let long = &out[..out.len() - b"\ndone\n".len()];
    assert!(long.len() > 512 * 1024 && long.iter().all(|&b| b == b'x'), "{} bytes, not all x", long.len());
}

#[test]
fn a_byte_that_is_not_utf8_neither_stops_the_log_nor_kills_the_writer() {
    let w = World::new("utf8");
    let up = w.up(
        "bytes",
        &format!(
            "container \"c\" {{\n image \"{}\"\n command \"sh\" \"-c\" \"printf 'before\\\\n\\\\377\\\\n'; for i in 1 2 3; do echo after$$i; done; echo end >&2; exec sleep 600\"\n stop-timeout \"1s\"\n}}\n",
            w.image
        ),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let o = loop {
        let o = up.run(&["logs", "bytes/c"]);
        if stderr(&o).contains("end") || std::time::Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // Piped, the bytes come back as they were written.
    assert_eq!(o.stdout, b"before\n\xff\nafter1\nafter2\nafter3\n");
    assert_eq!(stderr(&o), "end\n");
    // The shell wrote on after the byte without dying of SIGPIPE: it is the sleep that runs.
    assert_eq!(up.state("c"), "running");
    let o = up.run(&["exec", "bytes/c", "--", "cat", "/proc/1/cmdline"]);
    assert_eq!(stdout(&o), "sleep\x00600\x00", "{}", stderr(&o));
}

/// `tfctl ARGS` in the test's namespace under a terminal (script(1) gives it a pty): its status
/// and what the terminal received.
fn on_a_terminal(w: &World, args: &[&str]) -> (Option<i32>, Vec<u8>) {
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let net = format!("--net={}", w.ns.path());
    let line: Vec<String> = ["nsenter", net.as_str(), common::tfctl_bin()].into_iter().chain(args.iter().copied()).map(quote).collect();
    let mut c = std::process::Command::new("script");
    // tfctl's environment (its state root, no colours) as the test's other commands have it.
    c.envs(w.t.cmd_in(&w.ns).get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))));
    c.args(["-qec", &line.join(" "), "/dev/null"]).stdin(std::process::Stdio::null());
    let out = c.output().unwrap();
    (out.status.code(), out.stdout)
}

const HOSTILE: &str = r"printf 'title\\033]0;owned\\007 clear\\033[2J cr\\rX tab\\there caf\\303\\251\\n'";

#[test]
fn control_characters_reach_a_terminal_escaped_and_a_pipe_as_they_are() {
    let w = World::new("esc");
    let up = w.up("esc", &format!("container \"c\" {{\n image \"{}\"\n command \"sh\" \"-c\" \"{HOSTILE}; echo end; exec sleep 600\"\n stop-timeout \"1s\"\n}}\n", w.image));
    wait_for_last_line(&up, "esc/c", "end");
    let raw = b"title\x1b]0;owned\x07 clear\x1b[2J cr\rX tab\there caf\xc3\xa9\nend\n";
    // Piped: the bytes as they came.
    assert_eq!(up.run(&["logs", "esc/c"]).stdout, raw);
    // To a terminal: nothing it would act on (the pty turns \n into \r\n).
    let (status, seen) = on_a_terminal(&w, &["logs", "esc/c"]);
    assert_eq!(status, Some(0), "{}", String::from_utf8_lossy(&seen));
    assert_eq!(String::from_utf8_lossy(&seen), "title\\x1b]0;owned\\x07 clear\\x1b[2J cr\\x0dX tab\there café\r\nend\r\n");
    drop(up);

    // The foreground `up` too: its container prints and exits, and --exit-code-from ends it.
    let file = w.dir.path().join("fg.kdl");
    std::fs::write(&file, format!("app \"fg\"\ncontainer \"c\" {{\n image \"{}\"\n command \"sh\" \"-c\" \"{HOSTILE}\"\n}}\n", w.image)).unwrap();
    let (status, seen) = on_a_terminal(&w, &["--quiet", "up", "--trust-file", "--exit-code-from", "c", file.to_str().unwrap()]);
    let seen = String::from_utf8_lossy(&seen).into_owned();
    assert_eq!(status, Some(0), "{seen}");
    assert!(seen.contains("c | title\\x1b]0;owned\\x07 clear\\x1b[2J cr\\x0dX tab\there café\r\n"), "{seen:?}");
    assert!(!seen.contains('\x1b') && !seen.contains('\x07'), "{seen:?}");
}
