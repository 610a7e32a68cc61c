//! `tfctl stats [APP]` and `tfctl top APP/CONTAINER`: what running containers use, and their
//! processes (read by tfctl_runtime::app::stats).

use std::time::{Duration, Instant, SystemTime};

use tfctl_runtime::app::stats::{self, Usage};
use tfctl_runtime::app::{lifecycle, one_off, record};
use tfctl_runtime::state::StateRoot;

use super::target;
use crate::args::{Format, GlobalOpts, StatsArgs, TopArgs};
use crate::context;
use crate::exit::{CmdResult, Exit, Failure};
use crate::output;

pub(super) fn root(global: &GlobalOpts) -> Result<StateRoot, Failure> {
    context::existing_state_root(global)?.ok_or_else(|| Failure::msg(Exit::Usage, "no app under this state root: see `tfctl ps`"))
}

pub(super) fn require_up(root: &StateRoot, app: &str) -> Result<(), Failure> {
    let up = record::load(root, app).ok().flatten().and_then(|r| r.supervisor).is_some_and(|s| s.is_alive());
    if up {
        Ok(())
    } else {
        Err(Failure::msg(Exit::Failed, format!("app {app} is not up: `tfctl up` starts it")))
    }
}

/// The running containers of every supervised app (or of `only`), as (app, container).
fn running(root: &StateRoot, only: Option<&str>) -> Vec<(String, String)> {
    let rt = context::runtime();
    let mut out = Vec::new();
    for r in record::all(root).into_iter().filter(|r| only.is_none_or(|a| a == r.name)) {
        if !r.supervisor.as_ref().is_some_and(|s| s.is_alive()) {
            continue;
        }
        let Some(status) = rt.block_on(lifecycle::request_status(root, &r.name)) else { continue };
        for (name, s) in status["containers"].as_object().into_iter().flatten() {
            if s["state"] == "running" {
                out.push((r.name.clone(), name.clone()));
            }
        }
    }
    out
}

fn sample(root: &StateRoot, list: &[(String, String)]) -> Vec<Option<Usage>> {
    list.iter().map(|(app, c)| stats::container_cgroup(root, app, c).ok().and_then(|cg| stats::usage(cg.as_ref(), c).ok())).collect()
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[i])
    }
}

pub fn stats(args: StatsArgs, global: &GlobalOpts) -> CmdResult {
    let root = root(global)?;
    if let Some(app) = &args.app {
        require_up(&root, app)?;
    }
    let mut list = running(&root, args.app.as_deref());
    let mut before = sample(&root, &list);
    let mut at = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sample(&root, &list);
        let elapsed = at.elapsed().as_nanos() as f64;
        at = Instant::now();
        let rows: Vec<serde_json::Value> = list
            .iter()
            .zip(before.iter().zip(&now))
            .filter_map(|((app, c), (b, n))| {
                let n = n.as_ref()?;
                // Percent of one CPU over the interval, as `docker stats` shows it.
                let percent = b.as_ref().map(|b| (n.cpu_ns.saturating_sub(b.cpu_ns)) as f64 * 100.0 / elapsed);
                let mut v = serde_json::to_value(n).unwrap_or_default();
                let o = v.as_object_mut()?;
                o.insert("app".into(), app.clone().into());
                o.insert("container".into(), c.clone().into());
                o.insert("cpu_percent".into(), percent.map(|p| (p * 100.0).round() / 100.0).into());
                Some(v)
            })
            .collect();
        match global.format {
            Format::Json => {
                let doc = serde_json::json!({"schema": 1, "time": humantime::format_rfc3339_nanos(SystemTime::now()).to_string(), "containers": rows});
                println!("{doc}");
            }
            Format::Text => {
                if !args.no_stream {
                    // Live: redraw in place, as `docker stats` does.
                    print!("\x1b[2J\x1b[H");
                }
                println!("{:<30} {:>7} {:>20} {:>6} {:>21} {:>21}", "CONTAINER", "CPU %", "MEM / LIMIT", "PIDS", "NET I/O", "BLOCK I/O");
                for r in &rows {
                    let limit = r["memory_limit_bytes"].as_u64().map_or("-".to_string(), human);
                    let u = |k: &str| r[k].as_u64().unwrap_or(0);
                    println!(
                        "{:<30} {:>7} {:>20} {:>6} {:>21} {:>21}",
                        format!("{}/{}", r["app"].as_str().unwrap_or(""), r["container"].as_str().unwrap_or("")),
                        r["cpu_percent"].as_f64().map_or("-".to_string(), |p| format!("{p:.2}%")),
                        format!("{} / {limit}", human(u("memory_bytes"))),
                        u("pids"),
                        format!("{} / {}", human(u("net_rx_bytes")), human(u("net_tx_bytes"))),
                        format!("{} / {}", human(u("block_read_bytes")), human(u("block_write_bytes"))),
                    );
                }
            }
        }
        if args.no_stream {
            return Ok(());
        }
        // Containers come and go while it runs.
        let next = running(&root, args.app.as_deref());
        if next != list {
            list = next;
            before = sample(&root, &list);
        } else {
            before = now;
        }
        if args.app.as_deref().is_some_and(|a| require_up(&root, a).is_err()) {
            return Ok(());
        }
    }
}

pub fn top(args: TopArgs, global: &GlobalOpts) -> CmdResult {
    let root = root(global)?;
    let t = target::resolve(&root, &args.target, args.target_opts.file.as_deref(), true)?;
    let container = t.container.expect("need_container");
    let what = format!("{}/{container}", t.app);
    let cgroup = if let Some((r, state)) = one_off::load(&root, &t.app) {
        let r = r.filter(|_| state == one_off::RunState::Running).ok_or_else(|| Failure::msg(Exit::Failed, format!("{container} is not running")))?;
        let driver = tfctl_runtime::container::cgroup_driver(&root, &t.app, false).map_err(context::failed)?;
        driver.open(&r.cgroup)
    } else {
        require_up(&root, &t.app)?;
        if !running(&root, Some(&t.app)).iter().any(|(_, c)| *c == container) {
            return Err(Failure::msg(Exit::Failed, format!("{what} is not running")));
        }
        stats::container_cgroup(&root, &t.app, &container).map_err(context::failed)?
    };
    let procs = stats::processes(cgroup.as_ref(), &container).map_err(|e| Failure::msg(Exit::Failed, format!("{what}: {e}")))?;
    match global.format {
        Format::Json => output::print_json(&serde_json::json!({"app": t.app, "container": container, "processes": procs})),
        Format::Text => {
            println!("{:>8} {:>8} {:>8} {:>6} {:>6} {:<5} {:>10} {:>9}  COMMAND", "PID", "CPID", "PPID", "UID", "GID", "STATE", "RSS", "TIME");
            for p in &procs {
                println!(
                    "{:>8} {:>8} {:>8} {:>6} {:>6} {:<5} {:>10} {:>8.2}s  {}",
                    p.pid,
                    p.container_pid.map_or("-".to_string(), |n| n.to_string()),
                    p.ppid,
                    p.uid,
                    p.gid,
                    p.state.split_whitespace().next().unwrap_or(""),
                    human(p.rss_bytes),
                    p.cpu_ns as f64 / 1e9,
                    p.command.join(" ")
                );
            }
        }
    }
    Ok(())
}
