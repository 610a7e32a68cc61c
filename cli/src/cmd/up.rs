//! `tfctl up`, `tfctl down`, `tfctl ps`: an app under its supervisor.
//!
//! In the foreground the `up` process is the supervisor. With `-d` or `--wait` it forks one
//! (before any thread exists, so the child may run Rust freely) that detaches into its own
//! session and reports its progress back over a pipe until `up` has what it waits for.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tfctl_runtime::app::one_off;
use tfctl_runtime::app::lifecycle::{self, Progress, StopReason, SupervisorSetup};
use tfctl_runtime::app::record::{self, AppRecord};
use tfctl_runtime::app::driver::OUTPUT_BACKLOG;
use tfctl_runtime::app::OutputLine;
use tfctl_runtime::logs::Stream;
use tfctl_runtime::image::{ImageError, ImageSource, Store};
use tfctl_runtime::spawn::Spawner;
use tfctl_runtime::state::StateRoot;
use tfctl_schema::model::{App, Event};
use tokio::sync::{mpsc, watch};

use crate::args::{DownArgs, Format, GlobalOpts, PsArgs, PullPolicy, UpArgs};
use crate::context::{self, failed};
use crate::exit::{CmdResult, Exit, Failure};
use crate::logview::Output;
use crate::output;
use crate::progress::PullProgress;

/// Files that shape what runs as root must be root's alone (or the user says --trust-file).
fn check_trust(app: &App) -> Result<(), Failure> {
    let mut files = vec![app.file.clone(), app.dir.join(".env")];
    for c in &app.containers {
        for f in &c.files {
            if let tfctl_schema::model::FileContent::From(p) = &f.content {
                files.push(p.clone());
            }
        }
        for h in &c.hooks {
            for s in &h.steps {
                if let tfctl_schema::model::HookStep::Run(argv) = s {
                    files.extend(tfctl_runtime::trust::hook_scripts(argv, &app.dir));
                }
            }
        }
    }
    for h in &app.hooks {
        for s in &h.steps {
            if let tfctl_schema::model::HookStep::Run(argv) = s {
                files.extend(tfctl_runtime::trust::hook_scripts(argv, &app.dir));
            }
        }
    }
    tfctl_runtime::trust::check(&files).map_err(|e| Failure::msg(Exit::Usage, e.to_string()))
}

fn parse_timeout(s: &str) -> Result<Duration, Failure> {
    tfctl_schema::values::parse_duration(s).map_err(|e| Failure::msg(Exit::Usage, format!("--wait={s}: {}", e.message)))
}

/// Every container's image from the store, pulled as `policy` says: `missing` pulls only
/// absent ones (a stored tag keeps its digest), `always` every one, `never` none.
pub(super) fn images(
    app: &App,
    store: &Store,
    global: &GlobalOpts,
    config: &tfctl_schema::model::HostConfig,
    registry: &crate::args::RegistryArgs,
    policy: PullPolicy,
) -> Result<HashMap<String, tfctl_runtime::image::Image>, Failure> {
    let opts = context::pull_options(global, config, registry);
    let progress = PullProgress::for_terminal(global);
    let rt = context::runtime();
    let result = rt.block_on(async {
        let mut out = HashMap::new();
        let mut pulled: Vec<String> = Vec::new();
        for c in &app.containers {
            let source = ImageSource::parse(&c.image, &app.dir).map_err(|e| Failure::msg(Exit::Usage, format!("container {}: {e}", c.name)))?;
            if policy == PullPolicy::Always && !pulled.contains(&source.to_string()) {
                store.pull(&source, &opts, &progress).await.map_err(failed)?;
                pulled.push(source.to_string());
            }
            let image = match store.resolve(&source) {
                Ok(i) => i,
                Err(ImageError::NotFound { .. }) if policy == PullPolicy::Never => {
                    return Err(Failure::msg(
                        Exit::Failed,
                        format!("container {}: image {} is not stored, and --pull never forbids pulling it: `tfctl pull {}` first", c.name, c.image, c.image),
                    ))
                }
                Err(ImageError::NotFound { .. }) => {
                    store.pull(&source, &opts, &progress).await.map_err(failed)?;
                    store.resolve(&source).map_err(failed)?
                }
                Err(e) => return Err(failed(e)),
            };
            out.insert(c.name.clone(), image);
        }
        Ok(out)
    });
    // Dropping the runtime joins its threads: the process is single-threaded again, as the
    // spawner and the detaching fork need.
    drop(rt);
    result
}

pub(super) fn threads() -> u32 {
    tfctl_runtime::sys::thread_count().unwrap_or(0)
}

/// Loads an app file, under `--name` when given (for `up` and `plan`).
pub(super) fn load_named(file: &Path, name: Option<&str>) -> Result<App, Failure> {
    let mut app = crate::cmd::check::load_app(file)?;
    if let Some(n) = name {
        tfctl_schema::values::check_name("app", n).map_err(|e| Failure::msg(Exit::Usage, format!("--name {n}: {}", e.message)))?;
        app.name = n.to_string();
    }
    Ok(app)
}

/// The app-file settings `tfctl check` accepts but `up` cannot honour yet: refused by name rather
/// than silently ignored (a container would run with less isolation or fewer names than asked).
fn refuse_not_yet_run(app: &App) -> Result<(), Failure> {
    for c in &app.containers {
        let mut missing: Vec<&str> = Vec::new();
        for (used, what) in [
            (c.tty, "tty"),
            (c.replicas > 1, "replicas="),
            (c.after.iter().any(|a| a.restart), "after restart=#true"),
        ] {
            if used {
                missing.push(what);
            }
        }
        if !missing.is_empty() {
            return Err(Failure::msg(
                Exit::Usage,
                format!("container {}: this tfctl checks but does not run {} yet; remove it to run the app", c.name, missing.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Loads and checks the app file for `up`: `--name`, file trust, the CI verbs.
pub(super) fn load_for_up(args: &UpArgs) -> Result<App, Failure> {
    let mut app = load_named(&args.file, args.name.as_deref())?;
    app.select_profiles(&args.profiles).map_err(|e| Failure::msg(Exit::Usage, format!("--profile: {e}")))?;
    refuse_not_yet_run(&app)?;
    app.expand_networks();
    refuse_from_own_hook("up", &app.name)?;
    if !args.trust_file {
        check_trust(&app)?;
    }
    if let Some(c) = &args.exit_code_from {
        if app.container(c).is_none() {
            let names: Vec<&str> = app.containers.iter().map(|c| c.name.as_str()).collect();
            return Err(Failure::msg(Exit::Usage, format!("--exit-code-from {c}: app {} has no such container; its containers: {}", app.name, names.join(", "))));
        }
    }
    Ok(app)
}

/// The record, images and network plan of `app`, whose supervisor is about to start.
pub(super) fn prepare_app(mut app: App, global: &GlobalOpts, registry: &crate::args::RegistryArgs, pull: PullPolicy) -> Result<SupervisorSetupParts, Failure> {
    let config = context::host_config(global)?;
    app.apply_host_defaults(&config);
    let root = context::state_root(global)?;
    let mut rec = record::load(&root, &app.name).map_err(failed)?.unwrap_or_else(|| AppRecord::new(&app.name, &app.file));
    if let Some(s) = &rec.supervisor {
        if s.is_alive() {
            return Err(Failure::msg(
                Exit::Failed,
                format!("app {} is already up (supervisor pid {}): choose another name, or `tfctl down {}` first", app.name, s.pid, app.name),
            ));
        }
        // A supervisor that died left its objects: remove them, then start afresh.
        lifecycle::remove_objects(&root, &mut rec).map_err(failed)?;
    }
    rec.app_file = app.file.clone();
    rec.set_labels(&app);
    rec.set_host_modes(&app);
    let store = Store::open(root.path()).map_err(failed)?;
    let images = images(&app, &store, global, &config, registry, pull)?;
    // Taken now, while tfctl has one thread, and wiped from its environment before anything is
    // forked from it.
    let env_secrets = tfctl_runtime::secrets::from_env::take(&app.secrets).map_err(|e| Failure::msg(Exit::Failed, e.to_string()))?;
    rec.net = Some(lifecycle::plan_network(&root, &app, &config, rec.net.take()).map_err(failed)?);
    record::save(&root, &rec).map_err(failed)?;
    let config_file = Some(std::path::absolute(&global.config).unwrap_or_else(|_| global.config.clone()));
    Ok(SupervisorSetupParts { root, app, config, config_file, images, record: rec, env_secrets })
}

pub(super) struct SupervisorSetupParts {
    root: StateRoot,
    app: App,
    config: tfctl_schema::model::HostConfig,
    config_file: Option<std::path::PathBuf>,
    images: HashMap<String, tfctl_runtime::image::Image>,
    record: AppRecord,
    env_secrets: HashMap<String, tfctl_runtime::secrets::SecretValue>,
}

pub fn up(args: UpArgs, global: &GlobalOpts) -> CmdResult {
    let wait = args.wait.as_deref().map(parse_timeout).transpose()?;
    let app = load_for_up(&args)?;
    if let Some(running) = super::reconcile::running(&app.name, global)? {
        return super::reconcile::up_running(app, &args, wait, global, running);
    }
    let mut parts = prepare_app(app, global, &args.registry, args.pull)?;
    parts.record.trusted_files = args.trust_file;
    if threads() > 1 {
        return Err(Failure::msg(Exit::Failed, "internal error: tfctl has threads before starting the supervisor"));
    }
    if args.detach || wait.is_some() {
        detached(parts, wait, global)
    } else {
        let ci = CiVerbs { exit_code_from: args.exit_code_from.clone(), abort_on_failure: args.abort_on_failure };
        foreground(parts, global, ci)
    }
}

fn setup(parts: SupervisorSetupParts, output: Option<mpsc::Sender<OutputLine>>, progress: mpsc::UnboundedSender<Progress>) -> SupervisorSetup {
    SupervisorSetup {
        root: parts.root,
        app: parts.app,
        config: parts.config,
        config_file: parts.config_file,
        images: parts.images,
        record: parts.record,
        output,
        progress,
        env_secrets: parts.env_secrets,
    }
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Compose's CI verbs for a foreground `up`.
struct CiVerbs {
    /// Stop the app when this container exits, and exit with its status.
    exit_code_from: Option<String>,
    /// Stop the app at the first `failed` event, and exit 3.
    abort_on_failure: bool,
}

fn foreground(parts: SupervisorSetupParts, global: &GlobalOpts, ci: CiVerbs) -> CmdResult {
    let spawner = Arc::new(Spawner::start().map_err(failed)?);
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let names: Vec<String> = parts.app.containers.iter().map(|c| c.name.clone()).collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let quiet = global.quiet;
    let rt = context::runtime();
    let (out_tx, mut out_rx) = mpsc::channel::<OutputLine>(OUTPUT_BACKLOG);
    let (prog_tx, mut prog_rx) = mpsc::unbounded_channel::<Progress>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let outcome = rt.block_on(async move {
        tokio::spawn(async move {
            // Every container's output goes to stdout, each line after its container's name.
            let mut output = Output::for_terminals();
            while let Some(line) = out_rx.recv().await {
                let i = names.iter().position(|n| *n == line.container).unwrap_or(0);
                let prefix = format!("{:width$} |", line.container);
                let head = if colour { format!("\x1b[{}m{prefix}\x1b[0m ", COLOURS[i % COLOURS.len()]) } else { format!("{prefix} ") };
                let _ = output.write(Stream::Stdout, &line.container, &head, &line.text, line.partial);
            }
        });
        // What ended the app when a CI verb did: the container's status, or 3 for a failure.
        let verdict = Arc::new(std::sync::Mutex::new(None::<Failure>));
        let (verdict_w, ci_stop) = (verdict.clone(), stop_tx.clone());
        tokio::spawn(async move {
            while let Some(p) = prog_rx.recv().await {
                if !quiet {
                    print_progress(&p);
                }
                let Progress::Report(r) = &p else { continue };
                let decided = match (r.event, r.container.as_deref()) {
                    (Event::Exited, Some(c)) if ci.exit_code_from.as_deref() == Some(c) => {
                        let code = r.exit_code.unwrap_or(1);
                        Some(if code == 0 { None } else { Some(Failure::silent(Exit::Status(code.clamp(0, 255) as u8))) })
                    }
                    (Event::Failed, Some(c)) if ci.abort_on_failure => {
                        Some(Some(Failure::msg(Exit::ContainerFailed, format!("container {c} failed ({}): --abort-on-failure stopped the app", r.reason))))
                    }
                    _ => None,
                };
                if let Some(outcome) = decided {
                    let mut v = verdict_w.lock().unwrap_or_else(|e| e.into_inner());
                    if v.is_none() && !*ci_stop.borrow() {
                        *v = Some(outcome.unwrap_or(Failure::silent(Exit::Success)));
                        ci_stop.send_replace(true);
                    }
                }
            }
        });
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).expect("signal handler");
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = interrupted.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = sigint.recv() => flag.store(true, std::sync::atomic::Ordering::SeqCst),
                _ = sigterm.recv() => {}
            }
            eprintln!("stopping (Ctrl-C again to kill)");
            stop_tx.send_replace(true);
            // A second Ctrl-C skips the grace period.
            if sigint.recv().await.is_some() {
                std::process::exit(130);
            }
        });
        let reason = lifecycle::supervise(setup(parts, Some(out_tx), prog_tx), spawner, stop_rx).await;
        let verdict = verdict.lock().unwrap_or_else(|e| e.into_inner()).take();
        (reason, interrupted.load(std::sync::atomic::Ordering::SeqCst), verdict)
    });
    match outcome {
        (Err(e), _, _) => Err(failed(e)),
        (Ok(StopReason::Signal), true, _) => Err(Failure::silent(Exit::Interrupted)),
        (Ok(_), _, Some(f)) if f.exit == Exit::Success => Ok(()),
        (Ok(_), _, Some(f)) => Err(f),
        (Ok(_), _, None) => Ok(()),
    }
}

fn print_progress(p: &Progress) {
    match p {
        Progress::Report(r) => match r.event {
            Event::Started | Event::Healthy | Event::Unhealthy | Event::Exited | Event::Failed | Event::Up | Event::Down => eprintln!("{}", r.summary()),
            Event::Stopping => {}
        },
        Progress::Ready => eprintln!("app is ready"),
        Progress::Failed { container, reason } => eprintln!("{container} failed: {reason}"),
    }
}

/// A progress message on the pipe from a detached supervisor.
fn encode(p: &Progress) -> String {
    let v = match p {
        Progress::Report(r) => serde_json::json!({"kind": "report", "report": r}),
        Progress::Ready => serde_json::json!({"kind": "ready"}),
        Progress::Failed { container, reason } => serde_json::json!({"kind": "failed", "container": container, "reason": reason}),
    };
    format!("{v}\n")
}

pub(super) fn detached(parts: SupervisorSetupParts, wait: Option<Duration>, global: &GlobalOpts) -> CmdResult {
    let app_name = parts.app.name.clone();
    let waited_for: Vec<String> = parts.app.containers.iter().filter(|c| !c.sleep).map(|c| c.name.clone()).collect();
    let log_path = record::app_dir(&parts.root, &app_name).join("supervisor.log");
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(failed)?;
    match tfctl_runtime::sys::fork_single_threaded().map_err(failed)? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let code = run_detached_supervisor(parts, w, &log_path);
            std::process::exit(code);
        }
        nix::unistd::ForkResult::Parent { .. } => {
            drop(w);
            report_until(pipe_messages(r), &app_name, waited_for, wait, global)
        }
    }
}

/// The detached supervisor: its own session, stdin from /dev/null, output to its log.
fn run_detached_supervisor(parts: SupervisorSetupParts, report: OwnedFd, log_path: &Path) -> i32 {
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    if let Ok(log) = std::fs::OpenOptions::new().create(true).append(true).open(log_path) {
        let _ = nix::unistd::dup2_stdout(&log);
        let _ = nix::unistd::dup2_stderr(&log);
    }
    let spawner = match Spawner::start() {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let mut f = std::fs::File::from(report);
            let _ = f.write_all(encode(&Progress::Failed { container: String::new(), reason: format!("cannot start tfctl's process starter: {e}") }).as_bytes());
            return 1;
        }
    };
    let rt = context::runtime();
    let (prog_tx, mut prog_rx) = mpsc::unbounded_channel::<Progress>();
    let (_stop_tx, stop_rx) = watch::channel(false);
    let result = rt.block_on(async move {
        let fail_tx = prog_tx.clone();
        let reporter = tokio::spawn(async move {
            let mut pipe = Some(std::fs::File::from(report));
            while let Some(p) = prog_rx.recv().await {
                print_progress(&p);
                if let Some(f) = pipe.as_mut() {
                    if f.write_all(encode(&p).as_bytes()).is_err() {
                        // `up` has returned: keep supervising, stop reporting.
                        pipe = None;
                    }
                }
            }
        });
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        let stop = stop_rx.clone();
        let (tx2, rx2) = watch::channel(false);
        tokio::spawn(async move {
            sigterm.recv().await;
            tx2.send_replace(true);
        });
        let _ = stop;
        let result = lifecycle::supervise(setup(parts, None, prog_tx), spawner, rx2).await;
        // A supervisor that could not bring the app up tells `up` why, not only its log.
        if let Err(e) = &result {
            let _ = fail_tx.send(Progress::Failed { container: String::new(), reason: e.to_string() });
            drop(fail_tx);
            let _ = tokio::time::timeout(Duration::from_secs(1), reporter).await;
        }
        result
    });
    match result {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("supervisor: {e}");
            1
        }
    }
}

/// The supervisor's JSON-lines reports on the pipe from a detached supervisor, as a channel
/// (`None` once the pipe closes).
fn pipe_messages(r: OwnedFd) -> std::sync::mpsc::Receiver<Option<serde_json::Value>> {
    let (tx, rx) = std::sync::mpsc::channel::<Option<serde_json::Value>>();
    std::thread::spawn(move || {
        for line in BufReader::new(std::fs::File::from(r)).lines() {
            let Ok(line) = line else { break };
            if tx.send(serde_json::from_str(&line).ok()).is_err() {
                break;
            }
        }
        let _ = tx.send(None);
    });
    rx
}

/// Reads the supervisor's reports until what `up` waits for: every container started (`-d`),
/// or the app ready (`--wait`), or a failure, or the timeout. A reconcile's reports say first
/// what changes (`plan`) and then which containers start (`applied`).
pub(super) fn report_until(
    rx: std::sync::mpsc::Receiver<Option<serde_json::Value>>,
    app: &str,
    containers: Vec<String>,
    wait: Option<Duration>,
    global: &GlobalOpts,
) -> CmdResult {
    let mut containers = containers;
    let deadline = wait.map(|w| Instant::now() + w);
    let mut started: Vec<String> = Vec::new();
    loop {
        let msg = match deadline {
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(m) => m,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(Failure::msg(
                        Exit::Timeout,
                        format!("app {app} was not ready within --wait's timeout; it keeps running: see `tfctl ps {app}`, stop it with `tfctl down {app}`"),
                    ))
                }
                Err(_) => None,
            },
            None => rx.recv().unwrap_or(None),
        };
        let Some(msg) = msg else {
            return Err(Failure::msg(Exit::Failed, format!("the supervisor of {app} exited before the app was up; see {}", "its supervisor.log under the state root")));
        };
        if msg["ok"] == false {
            return Err(Failure::msg(Exit::Failed, format!("app {app}: {}", msg["error"].as_str().unwrap_or("the supervisor refused the request"))));
        }
        if global.format == Format::Json {
            // Each line says its schema and when `up` read it.
            let mut line = msg.clone();
            if let Some(o) = line.as_object_mut() {
                o.insert("schema".into(), 1.into());
                o.insert("time".into(), humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string().into());
            }
            println!("{line}");
        }
        match msg["kind"].as_str() {
            Some("plan") => {
                if !global.quiet && global.format == Format::Text {
                    for l in super::reconcile::change_lines(&msg, false) {
                        eprintln!("{l}");
                    }
                }
            }
            Some("applied") => {
                containers = msg["starting"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_string)).collect();
                // Their `started` may have come before this.
                if wait.is_none() && containers.iter().all(|c| started.contains(c)) {
                    return Ok(());
                }
            }
            Some("ready") => {
                if !global.quiet && global.format == Format::Text {
                    eprintln!("app {app} is up; stop it with `tfctl down {app}`");
                }
                return Ok(());
            }
            Some("failed") => {
                let container = msg["container"].as_str().unwrap_or("");
                let reason = msg["reason"].as_str().unwrap_or("failed");
                // No container: the supervisor itself could not bring the app up.
                if container.is_empty() {
                    return Err(Failure::msg(Exit::Failed, format!("app {app} was not started: {reason}")));
                }
                let exit = if wait.is_some() { Exit::ContainerFailed } else { Exit::Failed };
                return Err(Failure::msg(exit, format!("container {container} of app {app} failed: {reason}; the app keeps running, `tfctl down {app}` stops it")));
            }
            Some("report") => {
                let r = &msg["report"];
                if !global.quiet && global.format == Format::Text {
                    let who = r["container"].as_str().unwrap_or("app");
                    let text = r["message"].as_str().filter(|m| !m.is_empty()).map(|m| format!(": {m}")).unwrap_or_default();
                    eprintln!("{who}: {}{text}", r["event"].as_str().unwrap_or(""));
                }
                if wait.is_none() && r["event"] == "started" {
                    if let Some(c) = r["container"].as_str() {
                        started.push(c.to_string());
                    }
                    if containers.iter().all(|c| started.contains(c)) {
                        return Ok(());
                    }
                }
            }
            _ => {}
        }
    }
}

fn app_name_of(target: &str, name: &Option<String>) -> Result<String, Failure> {
    if let Some(n) = name {
        return Ok(n.clone());
    }
    let p = Path::new(target);
    if (target.contains('/') || target.ends_with(".kdl")) && p.is_file() {
        return Ok(crate::cmd::check::load_app(p)?.name);
    }
    tfctl_schema::values::check_name("app", target).map_err(|e| Failure::msg(Exit::Usage, format!("{target}: not an app file, and {}", e.message)))?;
    Ok(target.to_string())
}

/// A hook's `up` or `down` of its own app would wait for the supervisor that waits for the hook.
fn refuse_from_own_hook(command: &str, app: &str) -> Result<(), Failure> {
    let in_hook = std::env::var_os("TFCTL_EVENT").is_some() && std::env::var("TFCTL_APP").is_ok_and(|a| a == app);
    if in_hook {
        return Err(Failure::msg(Exit::Failed, format!("`tfctl {command} {app}` cannot run from a hook of app {app}: its supervisor is waiting for the hook; use stop, start or restart")));
    }
    Ok(())
}

/// How long `down` waits for a supervisor that did not answer to be gone (one killed a moment
/// before is still exiting) before it says the supervisor is stuck.
const DYING_PATIENCE: Duration = Duration::from_secs(5);

pub fn down(args: DownArgs, global: &GlobalOpts) -> CmdResult {
    let name = app_name_of(&args.target, &args.name)?;
    refuse_from_own_hook("down", &name)?;
    let Some(root) = context::existing_state_root(global)? else { return Ok(()) };
    if let Some((r, state)) = one_off::load(&root, &name) {
        // A container of `tfctl run` in the foreground: stopped as `stop` does, then removed.
        if let (Some(r), one_off::RunState::Running) = (&r, state) {
            one_off::stop(&root, r, Duration::from_secs(10)).map_err(|e| Failure::msg(Exit::Failed, format!("{name}: {e}")))?;
        }
        if let Some(left) = one_off::load(&root, &name) {
            super::ops::rm_one_off(&root, &name, left, true)?;
        }
        if !global.quiet {
            eprintln!("app {name} is down");
        }
        return Ok(());
    }
    let Some(mut rec) = record::load(&root, &name).map_err(failed)? else {
        if !global.quiet {
            eprintln!("app {name} is not up");
        }
        return Ok(());
    };
    if let Some(s) = rec.supervisor.clone().filter(|s| s.is_alive()) {
        let gone_within = |patience: Duration| {
            let deadline = Instant::now() + patience;
            while s.is_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            !s.is_alive()
        };
        match context::runtime().block_on(lifecycle::request_down(&root, &name)) {
            Ok(()) => {
                gone_within(Duration::from_secs(300));
            }
            // A supervisor that was killed may still be exiting: its socket is closed (or not
            // read) while its process is not gone yet. Once it is, it is cleaned up after below,
            // as any crashed supervisor.
            Err(e) => {
                if !gone_within(DYING_PATIENCE) {
                    return Err(Failure::msg(Exit::Failed, format!("{e}; its process (pid {}) still runs: stop it, then run `tfctl down {name}` again to clean up", s.pid)));
                }
            }
        }
        if s.is_alive() {
            // Its containers may still run: saying the app is down would be a lie.
            return Err(Failure::msg(
                Exit::Failed,
                format!("the supervisor of {name} (pid {}) was asked to stop the app and is still running 5 minutes later; `kill -9 {}` ends it and its containers, then run `tfctl down {name}` again", s.pid, s.pid),
            ));
        }
        rec = record::load(&root, &name).map_err(failed)?.unwrap_or(rec);
    }
    // Whatever a dead supervisor left (or nothing, if it cleaned up) goes now; so do the user's
    // stops `restart "unless-stopped"` would keep at the next `up`, as Docker's `down` does.
    rec.user_stopped.clear();
    lifecycle::remove_objects(&root, &mut rec).map_err(failed)?;
    if args.volumes {
        let _ = std::fs::remove_dir_all(root.path().join("volumes").join(&name));
        std::fs::remove_dir_all(record::app_dir(&root, &name)).map_err(failed)?;
    }
    if !global.quiet {
        eprintln!("app {name} is down");
    }
    Ok(())
}

/// Labels as a JSON object, in file order.
fn labels_json(labels: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(labels.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect())
}

/// ` [host: privileged,pid=host]` after a container's name in `ps`, nothing for a confined one.
fn host_marker(modes: &serde_json::Value) -> String {
    let modes: Vec<&str> = modes.as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect();
    if modes.is_empty() {
        String::new()
    } else {
        format!(" [host: {}]", modes.join(","))
    }
}

pub fn ps(args: PsArgs, global: &GlobalOpts) -> CmdResult {
    let Some(root) = context::existing_state_root(global)? else {
        if global.format == Format::Json {
            output::print_json(&serde_json::json!({"apps": []}));
        }
        return Ok(());
    };
    let records: Vec<AppRecord> = record::all(&root).into_iter().filter(|r| args.app.as_ref().is_none_or(|a| *a == r.name)).collect();
    let rt = context::runtime();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut apps = Vec::new();
    for r in records {
        let live = r.supervisor.as_ref().filter(|s| s.is_alive());
        let status = match live {
            Some(_) => rt.block_on(lifecycle::request_status(&root, &r.name)),
            None => None,
        };
        let containers: Vec<serde_json::Value> = r
            .net
            .as_ref()
            .map(|n| {
                n.containers
                    .iter()
                    .map(|(name, addr)| {
                        let s = status.as_ref().map(|s| s["containers"][name].clone()).unwrap_or(serde_json::Value::Null);
                        serde_json::json!({
                            "name": name,
                            "address": addr.address.to_string(),
                            "state": s.get("state").cloned().unwrap_or_else(|| "down".into()),
                            "health": s.get("health").cloned().unwrap_or(serde_json::Value::Null),
                            "restarts": s.get("restarts").cloned().unwrap_or(0.into()),
                            // Why it failed or stopped, when the supervisor knows (e.g. out of memory).
                            "reason": s.get("reason").cloned().unwrap_or(serde_json::Value::Null),
                            "uptime_seconds": s.get("started_at").and_then(|t| t.as_u64()).filter(|_| s["state"] == "running").map(|t| now.saturating_sub(t)),
                            "ports": r.ports.iter().filter(|p| p.container == *name).collect::<Vec<_>>(),
                            "added_at_run_time": r.added.contains(name),
                            "labels": labels_json(&r.labels_of(name)),
                            // What is not confined from the host (privileged, network=host, ...).
                            "host_modes": r.host_modes_of(name),
                        })
                    })
                    .filter(|c| args.filters.iter().all(|f| f.matches(&c["labels"])))
                    .collect()
            })
            .unwrap_or_default();
        if !args.filters.is_empty() && containers.is_empty() {
            continue;
        }
        apps.push(serde_json::json!({
            "name": r.name,
            "supervisor": live.map(|s| serde_json::json!({"pid": s.pid})),
            "labels": labels_json(&r.labels),
            "containers": containers,
        }));
    }
    // Containers of `tfctl run` in the foreground: an app of one, without a supervisor (and
    // without labels, so a label filter leaves them out).
    for (name, r, state) in one_off::all(&root).into_iter().filter(|(n, ..)| args.app.as_ref().is_none_or(|a| a == n) && args.filters.is_empty()) {
        let running = state == one_off::RunState::Running;
        apps.push(serde_json::json!({
            "name": name,
            "supervisor": null,
            "one_off": true,
            "containers": [{
                "name": name,
                "address": null,
                "state": state.label(),
                "exit_code": match state { one_off::RunState::Exited(code) => Some(code), _ => None },
                "health": null,
                "restarts": 0,
                "uptime_seconds": r.as_ref().filter(|_| running).map(|r| now.saturating_sub(r.started_at)),
                "image": r.as_ref().map(|r| r.image.clone()),
                "labels": r.as_ref().map(|r| r.labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()).unwrap_or_default(),
                "ports": [],
                "added_at_run_time": false,
                "host_modes": r.as_ref().map(|r| r.host_modes.clone()).unwrap_or_default(),
            }],
        }));
    }
    apps.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    match global.format {
        Format::Json => output::print_json(&serde_json::json!({"apps": apps})),
        Format::Text => {
            println!("{:<20} {:<20} {:<10} {:<10} {:<16} {:>8} {:>8}  PORTS", "APP", "CONTAINER", "STATE", "HEALTH", "ADDRESS", "RESTARTS", "UPTIME");
            for a in &apps {
                for c in a["containers"].as_array().into_iter().flatten() {
                    let uptime = c["uptime_seconds"].as_u64().map(|u| tfctl_schema::model::format_duration(Duration::from_secs(u))).unwrap_or_else(|| "-".into());
                    // Docker's notation: 0.0.0.0:8080->80/tcp
                    let ports: Vec<String> = c["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| format!("{}:{}->{}/{}", p["host_ip"].as_str().unwrap_or(""), p["host_port"], p["container_port"], p["proto"].as_str().unwrap_or("")))
                        .collect();
                    println!(
                        "{:<20} {:<20} {:<10} {:<10} {:<16} {:>8} {:>8}  {}",
                        a["name"].as_str().unwrap_or(""),
                        // `run --app` containers are marked, as they are not in the app file, and
                        // host modes are named, as the container is not confined from the host.
                        format!("{}{}{}", c["name"].as_str().unwrap_or(""), if c["added_at_run_time"] == true { " (run)" } else { "" }, host_marker(&c["host_modes"])),
                        match c["exit_code"].as_i64() {
                            Some(code) => format!("exited ({code})"),
                            None => c["state"].as_str().unwrap_or("").to_string(),
                        },
                        c["health"].as_str().unwrap_or("-"),
                        c["address"].as_str().unwrap_or(""),
                        c["restarts"],
                        uptime,
                        ports.join(", ")
                    );
                }
            }
        }
    }
    Ok(())
}

/// `run -p` attached: the one-container app runs under a supervisor in this process; its
/// output is passed through as it is, and when it exits the app goes down and `run` exits with
/// its status.
pub(super) fn run_attached(parts: SupervisorSetupParts) -> CmdResult {
    let spawner = Arc::new(Spawner::start().map_err(failed)?);
    let rt = context::runtime();
    let (out_tx, mut out_rx) = mpsc::channel::<OutputLine>(OUTPUT_BACKLOG);
    let (prog_tx, mut prog_rx) = mpsc::unbounded_channel::<Progress>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let result = rt.block_on(async move {
        let printer = tokio::spawn(async move {
            let mut output = Output::raw();
            while let Some(line) = out_rx.recv().await {
                let _ = output.write(line.stream, "", "", &line.text, line.partial);
            }
        });
        let watcher = tokio::spawn(async move {
            let mut status = None;
            while let Some(p) = prog_rx.recv().await {
                match p {
                    Progress::Report(r) if r.event == Event::Exited => {
                        status = r.exit_code;
                        stop_tx.send_replace(true);
                    }
                    Progress::Report(r) if r.event == Event::Failed && r.reason == "start" => {
                        eprintln!("{}", r.message);
                        status.get_or_insert(125);
                        stop_tx.send_replace(true);
                    }
                    _ => {}
                }
            }
            status
        });
        let done = lifecycle::supervise(setup(parts, Some(out_tx), prog_tx), spawner, stop_rx).await;
        let status = watcher.await.ok().flatten();
        let _ = printer.await;
        (done, status)
    });
    match result {
        (Err(e), _) => Err(Failure::msg(Exit::RunFailed, e.to_string())),
        (Ok(_), Some(0)) => Ok(()),
        (Ok(_), Some(code)) => Err(Failure::silent(Exit::Status(code.clamp(0, 255) as u8))),
        (Ok(_), None) => Err(Failure::msg(Exit::RunFailed, "the container ended without an exit status")),
    }
}
