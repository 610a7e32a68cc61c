//! `tfctl exec` and `tfctl logs`.

use std::time::{Duration, SystemTime};

use tfctl_runtime::app::driver::ExecAs;
use tfctl_runtime::app::lifecycle;
use tfctl_runtime::app::{one_off, record};
use tfctl_runtime::logs::{self, LogQuery};
use tfctl_runtime::relay::{ProcessStdio, Relay};
use tfctl_runtime::spawn::{Spawner, StartFds};
use tfctl_runtime::state::StateRoot;

use super::target;
use crate::args::{ExecArgs, Format, GlobalOpts, LogsArgs};
use crate::context;
use crate::logview::Output;
use crate::exit::{CmdResult, Exit, Failure};

pub fn exec(args: ExecArgs, global: &GlobalOpts) -> CmdResult {
    let root = context::existing_state_root(global)?.ok_or_else(|| Failure::msg(Exit::Usage, "no app is up under this state root"))?;
    let t = target::resolve(&root, &args.target, args.target_opts.file.as_deref(), true)?;
    let container = t.container.expect("need_container");
    for e in &args.env {
        if !e.contains('=') {
            return Err(Failure::msg(Exit::Usage, format!("-e {e}: write KEY=VALUE")));
        }
    }
    if let Some(one_off) = one_off::load(&root, &t.app) {
        return exec_one_off(&root, &t.app, one_off, &args);
    }
    let rec = record::load(&root, &t.app).map_err(context::failed)?;
    if !rec.and_then(|r| r.supervisor).is_some_and(|s| s.is_alive()) {
        return Err(Failure::msg(Exit::RunFailed, format!("app {} is not up", t.app)));
    }
    let how = exec_as(&args);
    let interactive = args.interactive;
    // Without -t: pipes relayed until the process exits (with -t, its pty's master is).
    let (relay, stdio) = relayed(&args)?;
    let rt = context::runtime();
    let result = rt.block_on(async {
        // With -t: the pty's master arrives once the process runs; proxied until it closes.
        let mut attached = None;
        let status = lifecycle::request_exec(&root, &t.app, &container, &args.command, &how, stdio, |master| {
            attached = Some(crate::terminal::Attached::start(master, interactive));
        })
        .await;
        if let Some(a) = attached {
            a.finish().await;
        }
        status
    });
    drop(relay);
    match result {
        Ok(0) => Ok(()),
        Ok(status) => Err(Failure::silent(Exit::Status(status.clamp(0, 255) as u8))),
        Err((status, message)) => {
            let exit = match status {
                127 => Exit::NotFound,
                126 => Exit::CannotExecute,
                _ => Exit::RunFailed,
            };
            Err(Failure::msg(exit, message))
        }
    }
}

/// Without -t, the process's stdin (with -i), stdout and stderr: pipes this process relays
/// from and to its own until the process exits, never its own descriptors.
fn relayed(args: &ExecArgs) -> Result<(Option<Relay>, Option<ProcessStdio>), Failure> {
    if args.tty {
        return Ok((None, None));
    }
    let (relay, stdio) = Relay::start(args.interactive).map_err(super::run::relay_failure)?;
    Ok((Some(relay), Some(stdio)))
}

fn exec_as(args: &ExecArgs) -> ExecAs {
    ExecAs { env: args.env.clone(), user: args.user.clone(), workdir: args.workdir.clone(), tty: args.tty }
}

/// `exec` in a container of `tfctl run` in the foreground, which no supervisor serves: this
/// process starts its own spawner and joins the container through its init's pidfd, with the
/// plan its `run` recorded (the same user, capabilities, seccomp, rlimits and environment).
fn exec_one_off(root: &StateRoot, name: &str, (record, state): (Option<one_off::RunRecord>, one_off::RunState), args: &ExecArgs) -> CmdResult {
    let not_running = || Failure::msg(Exit::RunFailed, format!("container {name} is not running"));
    let Some(r) = record.filter(|_| state == one_off::RunState::Running) else { return Err(not_running()) };
    let (Some(template), Some(init)) = (&r.exec, &r.init) else { return Err(not_running()) };
    let target = one_off::pidfd(init).ok_or_else(not_running)?;
    let failed = |e: String| Failure::msg(Exit::RunFailed, e);
    let mut plan = template.plan.exec_in(args.command.clone(), None);
    exec_as(args).apply(&mut plan, &target, &template.cap_add, &template.cap_drop).map_err(failed)?;
    let driver = tfctl_runtime::container::cgroup_driver(root, name, false).map_err(context::failed)?;
    let attach = driver.open(&r.cgroup).attach_files().map_err(|e| failed(format!("{name}: its cgroup: {e}")))?;
    let mut fds = StartFds { target: Some(target), cgroup_procs: attach.fds, ..StartFds::default() };
    // Still single-threaded here: no runtime has started, nor the relay's thread.
    let spawner = Spawner::start().map_err(|e| failed(format!("cannot start tfctl's process starter: {e}")))?;
    let status = if args.tty {
        context::runtime().block_on(super::run::with_terminal(&spawner, &plan, fds, args.interactive, |_| {}))?
    } else {
        let (relay, stdio) = relayed(args)?;
        if let Some(s) = stdio {
            (fds.stdin, fds.stdout, fds.stderr) = (s.stdin, Some(s.stdout), Some(s.stderr));
        }
        let status = spawner.launch(&plan, fds).and_then(|child| child.wait());
        drop(relay);
        status.map_err(super::run::start_failure)?
    };
    match status.code() {
        0 => Ok(()),
        code => Err(Failure::silent(Exit::Status(code.clamp(0, 255) as u8))),
    }
}

/// `10m`, `90s`, or an RFC 3339 time.
pub(super) fn parse_since(s: &str) -> Result<SystemTime, Failure> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    let d = tfctl_schema::values::parse_duration(s).map_err(|e| Failure::msg(Exit::Usage, format!("--since {s}: {}", e.message)))?;
    Ok(SystemTime::now() - d)
}

pub fn logs(args: LogsArgs, global: &GlobalOpts) -> CmdResult {
    let root = context::existing_state_root(global)?.ok_or_else(|| Failure::msg(Exit::Usage, "no app under this state root"))?;
    let t = target::resolve(&root, &args.target, args.target_opts.file.as_deref(), false)?;
    if one_off::exists(&root, &t.app) {
        return Err(Failure::msg(
            Exit::Failed,
            format!("{} was started by `tfctl run` in the foreground: its output went to that run's terminal and is not logged (`tfctl run -d` keeps a log)", t.app),
        ));
    }
    let dir = record::app_dir(&root, &t.app).join("logs");
    let containers: Vec<String> = match &t.container {
        Some(c) => vec![c.clone()],
        None => {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.strip_suffix(".log").map(str::to_string)).collect())
                .unwrap_or_default();
            names.sort();
            names
        }
    };
    let query = LogQuery { since: args.since.as_deref().map(parse_since).transpose()?, tail: args.tail };
    let prefix = t.container.is_none();
    let mut last_seen: Vec<Option<SystemTime>> = vec![None; containers.len()];
    let mut output = Output::for_terminals();
    loop {
        for (i, c) in containers.iter().enumerate() {
            let log = dir.join(format!("{c}.log"));
            if global.format == Format::Json {
                print_new_json(&log, &mut last_seen[i], &query, c).map_err(context::failed)?;
            } else {
                print_new_lines(&log, &mut last_seen[i], &query, prefix.then_some(c.as_str()), args.timestamps, &mut output).map_err(context::failed)?;
            }
            if last_seen[i].is_none() {
                last_seen[i] = Some(SystemTime::UNIX_EPOCH);
            }
        }
        if !args.follow {
            return Ok(());
        }
        let live = record::load(&root, &t.app).ok().flatten().and_then(|r| r.supervisor).is_some_and(|s| s.is_alive());
        if !live {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `tfctl stop`, `start`, `restart`: sent to the app's supervisor.
pub fn lifecycle_op(op: &str, targets: &[String], file: Option<&std::path::Path>, reset: bool, global: &GlobalOpts) -> CmdResult {
    let root = context::existing_state_root(global)?.ok_or_else(|| Failure::msg(Exit::Usage, "no app is up under this state root"))?;
    let rt = context::runtime();
    for target in targets {
        let t = target::resolve(&root, target, file, op == "restart")?;
        if let Some(one_off) = one_off::load(&root, &t.app) {
            one_off_op(&root, op, &t.app, one_off, global)?;
            continue;
        }
        let live = record::load(&root, &t.app).ok().flatten().and_then(|r| r.supervisor).is_some_and(|s| s.is_alive());
        if !live {
            return Err(Failure::msg(Exit::Failed, format!("app {} is not up: `tfctl up` starts it", t.app)));
        }
        let wire_op = if reset { "reset" } else { op };
        rt.block_on(lifecycle::request_op(&root, &t.app, wire_op, t.container.as_deref())).map_err(|e| Failure::msg(Exit::Failed, e))?;
        if !global.quiet {
            let what = t.container.map(|c| format!("{}/{c}", t.app)).unwrap_or(t.app);
            eprintln!("{what}: {op} done");
        }
    }
    Ok(())
}

/// `stop`, `start` and `restart` of a container of `tfctl run` in the foreground: only `stop`
/// applies (the image's StopSignal or SIGTERM, then SIGKILL after 10 s, as `docker stop`); its
/// tfctl then exits with the container's status and cleans up.
fn one_off_op(root: &StateRoot, op: &str, name: &str, (record, state): (Option<one_off::RunRecord>, one_off::RunState), global: &GlobalOpts) -> CmdResult {
    if op != "stop" {
        return Err(Failure::msg(
            Exit::Failed,
            format!("{name} was started by `tfctl run`, which cannot {op} it: run it again (after `tfctl rm {name}`), or start it with `tfctl run -d` to manage it"),
        ));
    }
    match (record, state) {
        (Some(r), one_off::RunState::Running) => {
            one_off::stop(root, &r, Duration::from_secs(10)).map_err(|e| Failure::msg(Exit::Failed, format!("{name}: {e}")))?;
            if !global.quiet {
                eprintln!("{name}: stop done");
            }
            Ok(())
        }
        (_, one_off::RunState::Starting) => Err(Failure::msg(Exit::Failed, format!("{name} is starting: try again in a moment"))),
        _ => {
            if !global.quiet {
                eprintln!("{name}: not running");
            }
            Ok(())
        }
    }
}

/// Prints the records of the log at `path` newer than `seen` (at first, those `first` selects)
/// through `output`, stdout's to stdout and stderr's to stderr, each line after `prefix | `
/// and, with `timestamps`, its time; `seen` moves to the last one printed.
pub(super) fn print_new_lines(
    path: &std::path::Path,
    seen: &mut Option<SystemTime>,
    first: &LogQuery,
    prefix: Option<&str>,
    timestamps: bool,
    output: &mut Output,
) -> std::io::Result<()> {
    for l in new_lines(path, seen, first)? {
        let mut head = String::new();
        if let Some(p) = prefix {
            head.push_str(&format!("{p} | "));
        }
        if timestamps {
            head.push_str(&format!("{} ", humantime::format_rfc3339_nanos(l.time)));
        }
        output.write(l.stream, prefix.unwrap_or_default(), &head, &l.text, l.partial)?;
    }
    Ok(())
}

/// The records of a log after `seen` (the first time: those `first` asks for); `seen` moves
/// to the last one.
fn new_lines(path: &std::path::Path, seen: &mut Option<SystemTime>, first: &LogQuery) -> std::io::Result<Vec<logs::LogLine>> {
    let before = *seen;
    let query = match before {
        Some(t) => LogQuery { since: Some(t), tail: None },
        None => first.clone(),
    };
    let lines: Vec<logs::LogLine> = logs::read(path, &query)?.into_iter().filter(|l| before.is_none_or(|t| l.time > t)).collect();
    if let Some(l) = lines.last() {
        *seen = Some(l.time);
    }
    Ok(lines)
}

/// `logs --format json`: one JSON object per record, `{"schema": 1, "time", "container",
/// "stream", "text", "partial"}`; text that is not UTF-8 has U+FFFD in place of its bad bytes.
fn print_new_json(path: &std::path::Path, seen: &mut Option<SystemTime>, first: &LogQuery, container: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for l in new_lines(path, seen, first)? {
        let v = serde_json::json!({
            "schema": 1,
            "time": humantime::format_rfc3339_nanos(l.time).to_string(),
            "container": container,
            "stream": l.stream.as_str(),
            "text": String::from_utf8_lossy(&l.text),
            "partial": l.partial,
        });
        writeln!(out, "{v}")?;
    }
    out.flush()
}
