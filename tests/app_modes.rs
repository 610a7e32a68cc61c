//! The app-file settings `check` always accepted and `up` now runs: `log files=`, `restart
//! "unless-stopped"`, the host modes, `device`, `tty`, `after restart=` and `replicas=`, as a user
//! meets them. Each test in a network namespace and state root of its own.

mod common;

use common::{stdout, World};

#[test]
fn a_log_keeps_as_many_rotated_files_as_files_says() {
    let w = World::new("logfiles");
    // 400 lines of 100 bytes, 40 kB, against a 4K size: many rotations, three files kept.
    let up = w.up(
        "lf",
        &format!(
            "container \"chatty\" {{\n image \"{}\"\n command \"sh\" \"-c\" \"i=0; while [ $$i -lt 400 ]; do printf '%099d\\\\n' $$i; i=$$((i+1)); done; echo done; sleep 300\"\n init\n stop-timeout \"1s\"\n log size=\"4K\" files=3\n}}\n",
            w.image
        ),
    );
    let logs = up.state_dir().join("apps/lf/logs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !stdout(&up.run(&["logs", "--tail", "1", "lf/chatty"])).contains("done") {
        assert!(std::time::Instant::now() < deadline, "the container never finished writing");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for n in 1..=3 {
        let f = logs.join(format!("chatty.log.{n}"));
        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(len <= 4096, "{} is {len} bytes", f.display());
    }
    assert!(!logs.join("chatty.log.4").exists(), "a fourth rotated file was kept");
    // `logs` reads all four files, oldest first: more lines than two files of 4K hold, in order.
    let text = stdout(&up.run(&["logs", "lf/chatty"]));
    let numbers: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(numbers.len() > 2 * 4096 / 100, "{} lines: {text}", numbers.len());
    assert!(numbers.windows(2).all(|p| p[1] == p[0] + 1), "{text}");
    assert_eq!(numbers.last(), Some(&399));
}
