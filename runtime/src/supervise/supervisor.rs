//! The supervisor's rules: start in dependency order, fire hooks, watch health, apply restart
//! policies, and stop in reverse order. One task per container; they meet only through the
//! shared status map (for `after`) and the event stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tfctl_schema::model::{App, Container, Event, HookStep, OnFail, Probe};
use tokio::sync::{broadcast, watch};

use super::backoff::{Backoff, Decision};
use super::driver::{Driver, ExitStatus};
use super::order;
use super::status::{ContainerStatus, Health, Report, State, StatusMap, SETTLE};
use crate::hooks::env::HookContext;
use crate::hooks::host;

/// What a container's task is told from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Run,
    Stop,
}

struct Inner<D: Driver> {
    /// The app as it is now: a reconcile replaces it ([`Supervisor::set_model`]).
    app: RwLock<Arc<App>>,
    driver: D,
    /// App, root, app file, addresses and ports: what every hook's environment starts from.
    hook_base: RwLock<HookContext>,
    status: watch::Sender<StatusMap>,
    events: broadcast::Sender<Report>,
    commands: Mutex<HashMap<String, watch::Sender<Command>>>,
    /// Bumped whenever the model changes, so health watchers pick up a new check.
    revision: watch::Sender<u64>,
    /// Containers whose task has been started at least once (a `sleep` one only by `start`).
    started: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A running app's supervisor. Cheap to clone; every clone drives the same app.
pub struct Supervisor<D: Driver> {
    inner: Arc<Inner<D>>,
}

impl<D: Driver> Clone for Supervisor<D> {
    fn clone(&self) -> Self {
        Supervisor { inner: self.inner.clone() }
    }
}

impl<D: Driver> Supervisor<D> {
    pub fn new(app: App, driver: D, hook_base: HookContext) -> Self {
        let status: StatusMap =
            app.containers.iter().map(|c| (c.name.clone(), ContainerStatus::waiting(c.health.is_some()))).collect();
        let (status, _) = watch::channel(status);
        let (events, _) = broadcast::channel(1024);
        let commands = app.containers.iter().map(|c| (c.name.clone(), watch::channel(Command::Run).0)).collect();
        Supervisor {
            inner: Arc::new(Inner {
                app: RwLock::new(Arc::new(app)),
                driver,
                hook_base: RwLock::new(hook_base),
                status,
                events,
                commands: Mutex::new(commands),
                revision: watch::channel(0).0,
                started: Default::default(),
            }),
        }
    }

    /// The app as the supervisor runs it now.
    pub fn app(&self) -> Arc<App> {
        self.inner.app()
    }

    /// Replaces the model: containers new in it get a status (they start with [`Self::launch`]),
    /// and hooks, health checks and restart policies of running containers change in place.
    /// Containers gone from it must be stopped first and then [`Self::forget`]ten.
    pub fn set_model(&self, app: App, hook_base: HookContext) {
        {
            let mut commands = lock(&self.inner.commands);
            for c in &app.containers {
                if !commands.contains_key(&c.name) {
                    commands.insert(c.name.clone(), watch::channel(Command::Run).0);
                    let waiting = ContainerStatus::waiting(c.health.is_some());
                    self.inner.status.send_modify(|m| {
                        m.insert(c.name.clone(), waiting);
                    });
                }
            }
        }
        *self.inner.hook_base.write().unwrap_or_else(|e| e.into_inner()) = hook_base;
        *self.inner.app.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(app);
        self.inner.revision.send_modify(|r| *r += 1);
    }

    /// Starts a container added by [`Self::set_model`] (unless it is `sleep`).
    pub fn launch(&self, name: &str) {
        if self.inner.app().container(name).is_some_and(|c| !c.sleep) {
            self.spawn_task(name);
        }
    }

    /// Drops a stopped container that is no longer in the model.
    pub fn forget(&self, name: &str) {
        lock(&self.inner.commands).remove(name);
        if let Ok(mut s) = self.inner.started.lock() {
            s.remove(name);
        }
        self.inner.status.send_modify(|m| {
            m.remove(name);
        });
    }

    fn command(&self, name: &str) -> Result<watch::Sender<Command>, String> {
        lock(&self.inner.commands).get(name).cloned().ok_or_else(|| format!("no container {name}"))
    }

    pub fn driver(&self) -> &D {
        &self.inner.driver
    }

    pub fn status(&self) -> watch::Receiver<StatusMap> {
        self.inner.status.subscribe()
    }

    pub fn events(&self) -> broadcast::Receiver<Report> {
        self.inner.events.subscribe()
    }

    /// Starts every container that is not `sleep`: each waits for its `after` conditions, so
    /// independent ones start in parallel. Returns at once; the tasks run on.
    pub fn start_all(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.inner
            .app()
            .containers
            .iter()
            .filter(|c| !c.sleep && self.command(&c.name).is_ok_and(|t| *t.borrow() == Command::Run))
            .map(|c| self.spawn_task(&c.name))
            .collect()
    }

    /// Keeps a container stopped from the start (a user's `stop` that `restart "unless-stopped"`
    /// honours across supervisors): [`Self::start_all`] passes it by, and only `start` runs it.
    pub fn keep_stopped(&self, name: &str) {
        let Ok(tx) = self.command(name) else { return };
        tx.send_replace(Command::Stop);
        update(&self.inner, name, |s| {
            s.state = State::Stopped;
            s.kept_stopped = true;
        });
    }

    /// The containers in dependency levels: each level's `after` targets stand in earlier ones.
    pub fn levels(&self) -> Vec<Vec<String>> {
        let app = self.inner.app();
        let deps: Vec<_> = app
            .containers
            .iter()
            .map(|c| (c.name.clone(), c.after.iter().map(|a| a.container.clone()).collect()))
            .collect();
        order::levels(&deps)
    }

    /// Stops every container, in reverse dependency order, each level in parallel, and returns
    /// once all have ended.
    pub async fn stop_all(&self) {
        for level in self.levels().into_iter().rev() {
            for name in &level {
                if let Ok(tx) = self.command(name) {
                    tx.send_replace(Command::Stop);
                }
            }
            let mut rx = self.status();
            let _ = rx
                .wait_for(|m| level.iter().all(|n| m.get(n).is_none_or(|s| is_terminal(s.state) || s.state == State::Waiting)))
                .await;
        }
    }

    /// Stops one container (stopping hooks, stop signal, kill after its timeout) and waits for
    /// it; it stays stopped, restart policy included, until `start`.
    pub async fn stop(&self, name: &str) -> Result<(), String> {
        let tx = self.command(name)?;
        tx.send_replace(Command::Stop);
        let mut rx = self.status();
        let _ = rx.wait_for(|m| m.get(name).is_none_or(|s| is_terminal(s.state) || s.state == State::Waiting)).await;
        Ok(())
    }

    /// Starts a stopped, exited or `sleep` container again (its `after` conditions apply).
    pub async fn start(&self, name: &str) -> Result<(), String> {
        let tx = self.command(name)?;
        let app = self.inner.app();
        let status = self.status().borrow().clone();
        let state = status.get(name).map(|s| s.state);
        if !(state.is_some_and(is_terminal) || self.held(&app, name, state)) {
            return Ok(());
        }
        // A container it comes after that is stopped, or held, will not get there by itself:
        // say so rather than wait for it.
        for after in app.container(name).map(|c| c.after.clone()).unwrap_or_default() {
            let Some(dep) = status.get(&after.container) else { continue };
            if dep.state == State::Stopped || self.held(&app, &after.container, Some(dep.state)) {
                return Err(format!(
                    "{name} comes after {}, which is not running: start {} first, or start the whole app",
                    after.container, after.container
                ));
            }
        }
        tx.send_replace(Command::Run);
        let has_health = app.container(name).is_some_and(|c| c.health.is_some());
        update(&self.inner, name, |s| *s = ContainerStatus::waiting(has_health));
        self.spawn_task(name);
        // Return once it runs (or ended), so what follows a `start` finds it running.
        let mut rx = self.status();
        let now = rx
            .wait_for(|m| m.get(name).is_none_or(|s| (s.state == State::Running && s.started_hooks_done) || is_terminal(s.state)))
            .await
            .ok()
            .and_then(|m| m.get(name).cloned());
        // One that could not start (or failed at once) makes the `start` that asked for it
        // fail, with why: the supervisor's log is not where a user looks. A reason on an
        // exited container is a failed start or hook its restart policy will retry.
        match now {
            Some(s) if s.state == State::Failed || (s.state == State::Exited && s.reason.is_some()) => {
                Err(format!("{name}: {}", s.reason.unwrap_or_else(|| "it failed".into())))
            }
            _ => Ok(()),
        }
    }

    /// Waiting and going nowhere by itself: stopped before it started, or `sleep` and never
    /// started.
    fn held(&self, app: &App, name: &str, state: Option<State>) -> bool {
        state == Some(State::Waiting)
            && (self.command(name).is_ok_and(|c| *c.borrow() == Command::Stop)
                || app.container(name).is_some_and(|c| c.sleep) && !self.inner.started.lock().map(|s| s.contains(name)).unwrap_or(true))
    }

    /// Stops and starts a container; its network namespace, and so its address, stays.
    pub async fn restart(&self, name: &str) -> Result<(), String> {
        self.stop(name).await?;
        self.start(name).await
    }

    fn spawn_task(&self, name: &str) -> tokio::task::JoinHandle<()> {
        if let Ok(mut s) = self.inner.started.lock() {
            s.insert(name.to_string());
        }
        let inner = self.inner.clone();
        let name = name.to_string();
        tokio::spawn(async move { run_container(inner, name).await })
    }

    /// Fires the app-level hooks of `event` (`up`, `down`, `failed`).
    pub async fn fire_app_event(&self, event: Event, reason: &str) -> Result<(), String> {
        fire(&self.inner, None, event, reason, None, "").await
    }
}

/// Resolves once the container is asked to stop.
async fn stop_requested(commands: &mut watch::Receiver<Command>) {
    // The guard `wait_for` returns must not live across an await: drop it here.
    let _ = commands.wait_for(|c| *c == Command::Stop).await.map(|_| ());
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<D: Driver> Inner<D> {
    fn app(&self) -> Arc<App> {
        self.app.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The container's definition as it is now (a reconcile may have changed it).
    fn current(&self, name: &str) -> Option<Container> {
        self.app().container(name).cloned()
    }
}

fn is_terminal(state: State) -> bool {
    matches!(state, State::Exited | State::Stopped | State::Failed)
}

fn update(inner: &Inner<impl Driver>, name: &str, f: impl FnOnce(&mut ContainerStatus)) {
    inner.status.send_modify(|m| {
        if let Some(s) = m.get_mut(name) {
            f(s)
        }
    });
}

fn report(inner: &Inner<impl Driver>, container: Option<&str>, event: Event, reason: &str, exit: Option<ExitStatus>, message: String) {
    let r = Report { container: container.map(str::to_string), event, reason: reason.to_string(), exit_code: exit.map(|e| e.code), message };
    let restarts = container.and_then(|c| inner.status.borrow().get(c).map(|s| s.restarts)).unwrap_or(0);
    inner.driver.record_event(&r, restarts);
    let _ = inner.events.send(r);
}

/// Reports `event` and runs its hooks for `container` (or the app), in declaration order.
/// Fails, saying why, when a hook with `on-fail="fail"` failed or timed out.
async fn fire<D: Driver>(
    inner: &Inner<D>,
    container: Option<&Container>,
    event: Event,
    reason: &str,
    exit: Option<ExitStatus>,
    message: &str,
) -> Result<(), String> {
    let name = container.map(|c| c.name.as_str());
    report(inner, name, event, reason, exit, message.to_string());
    // The hooks in force now: a reconcile changes them without restarting the container.
    let app = inner.app();
    let hooks = match container {
        Some(c) => app.container(&c.name).map_or_else(|| c.hooks.clone(), |now| now.hooks.clone()),
        None => app.hooks.clone(),
    };
    let mut ctx = inner.hook_base.read().unwrap_or_else(|e| e.into_inner()).clone();
    ctx.container = name.unwrap_or_default().to_string();
    ctx.event = event.as_str().to_string();
    ctx.reason = reason.to_string();
    ctx.exit_code = exit.map(|e| e.code);
    ctx.signal = exit.map(|e| e.signal_name().unwrap_or_default());
    ctx.ip = name.and_then(|n| ctx.ips.iter().find(|(c, _)| c == n).map(|(_, ip)| *ip));
    let env = ctx.env();
    for hook in hooks.iter().filter(|h| h.event == event) {
        let deadline = Instant::now() + hook.timeout;
        let mut failure = None;
        for step in &hook.steps {
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = match step {
                HookStep::Run(argv) => host::run(argv, &app.dir, &env, left, !ctx.trusted_files).await.map_err(|e| e.to_string()),
                HookStep::Exec(argv) => match name {
                    Some(n) => inner.driver.exec(n, argv, left).await,
                    None => Err("exec hooks need a container".to_string()),
                },
            };
            // What the hook printed goes to whoever follows the app (`up`'s output, by the
            // events) and to the app's logs, each line after the event and container.
            if let Ok(o) = &outcome {
                for line in o.output.lines().filter(|l| !l.is_empty()) {
                    report(inner, name, event, "hook-output", None, format!("hook: {line}"));
                    inner.driver.hook_output(name, event.as_str(), line);
                }
            }
            // That it ran, and how it ended, for `tfctl events`.
            let (status, ran) = match &outcome {
                Ok(o) if o.timed_out => (None, format!("hook timed out after {:?}", hook.timeout)),
                Ok(o) => (o.status, format!("hook ran: {}", step_name(step))),
                Err(e) => (None, format!("hook could not run: {e}")),
            };
            // Only journalled: whoever follows the reports (`up`'s output, the CI verbs) reads
            // a report of `exited` as the container's own exit.
            let restarts = name.and_then(|c| inner.status.borrow().get(c).map(|s| s.restarts)).unwrap_or(0);
            let r = Report { container: name.map(str::to_string), event, reason: "hook-ran".into(), exit_code: status, message: ran };
            inner.driver.record_event(&r, restarts);
            match outcome {
                Ok(o) if o.success() => continue,
                Ok(o) if o.timed_out => failure = Some(format!("timed out after {:?}", hook.timeout)),
                Ok(o) => failure = Some(format!("exited with status {}: {}", o.status.unwrap_or(-1), o.output.trim())),
                Err(e) => failure = Some(e),
            }
            break;
        }
        if let Some(why) = failure {
            let what = format!("{} hook failed: {why}", event.as_str());
            if hook.on_fail == OnFail::Fail {
                return Err(what);
            }
            tracing::warn!(container = name.unwrap_or("-"), "{what}");
            report(inner, name, event, "hook-warning", None, what);
        }
    }
    Ok(())
}

/// A hook step as the journal names it: `run PROGRAM` or `exec PROGRAM`.
fn step_name(step: &HookStep) -> String {
    match step {
        HookStep::Run(argv) => format!("run {}", argv.first().map_or("", String::as_str)),
        HookStep::Exec(argv) => format!("exec {}", argv.first().map_or("", String::as_str)),
    }
}

/// Waits until every `after` condition of `c` holds; false if one never can.
async fn wait_for_dependencies<D: Driver>(inner: &Inner<D>, c: &Container, commands: &mut watch::Receiver<Command>) -> bool {
    let mut status = inner.status.subscribe();
    loop {
        {
            let map = status.borrow_and_update();
            let mut all = true;
            for after in &c.after {
                let Some(s) = map.get(&after.container) else { continue };
                if s.cannot_satisfy(after.until) {
                    return false;
                }
                all &= s.satisfies(after.until);
            }
            if all {
                return true;
            }
        }
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return false },
            _ = stop_requested(commands) => return false,
        }
    }
}

/// Until a container's first healthy probe, tfctl probes it at once, again after this, then
/// after twice as long each time up to the interval, beside the probes at the interval: a
/// service is seen healthy about when it is up, not up to a whole interval later (which `up
/// --wait` and every `after until="healthy"` would wait out). Their failures do not count toward
/// `retries`, so when a container turns unhealthy stays as the app file says.
const EARLY_PROBE: std::time::Duration = std::time::Duration::from_millis(50);

/// Probes the container until the task is aborted, updating its health and firing
/// healthy/unhealthy. Follows the model: a check a reconcile adds, changes or removes takes
/// effect at once, counting afresh. Returns only when a healthy hook with `on-fail="fail"`
/// failed, saying why.
async fn watch_health<D: Driver>(inner: Arc<Inner<D>>, name: String) -> String {
    let mut revision = inner.revision.subscribe();
    let mut check: Option<tfctl_schema::model::Health> = None;
    let mut started = Instant::now();
    let mut failures = 0u32;
    let mut current = Health::Starting;
    // Probes at the interval count toward retries; until the first success, early ones come
    // before and between them (see EARLY_PROBE).
    let mut next_counted = Instant::now();
    let mut early = EARLY_PROBE;
    loop {
        let Some(c) = inner.current(&name) else {
            return std::future::pending().await;
        };
        if c.health != check {
            check = c.health.clone();
            started = Instant::now();
            failures = 0;
            current = Health::Starting;
            // The first counted probe comes an interval after the start, as in Docker.
            next_counted = Instant::now() + check.as_ref().map_or(std::time::Duration::ZERO, |h| h.interval);
            early = EARLY_PROBE;
            let shown = check.as_ref().map(|_| Health::Starting);
            update(&inner, &name, |s| s.health = shown);
        }
        let Some(health) = check.clone() else {
            if revision.changed().await.is_err() {
                return std::future::pending().await;
            }
            continue;
        };
        let counted = Instant::now() >= next_counted;
        let result = match &health.probe {
            Probe::Exec(argv) => inner.driver.exec(&c.name, argv, health.timeout).await.and_then(|o| {
                if o.success() {
                    Ok(())
                } else {
                    Err(format!("exited with status {}", o.status.unwrap_or(-1)))
                }
            }),
            Probe::Tcp(port) => match inner.driver.netns(&c.name) {
                Some(ns) => crate::health::tcp(std::os::fd::AsFd::as_fd(&ns), *port, health.timeout).await.map_err(|e| e.to_string()),
                None => Err("the container has no network namespace".into()),
            },
            Probe::Http(url) => match inner.driver.netns(&c.name) {
                Some(ns) => crate::health::http(std::os::fd::AsFd::as_fd(&ns), url, health.timeout).await.map(drop).map_err(|e| e.to_string()),
                None => Err("the container has no network namespace".into()),
            },
        };
        if counted {
            next_counted = Instant::now() + health.interval;
        }
        let next = match result {
            Ok(()) => {
                failures = 0;
                Health::Healthy
            }
            Err(why) => {
                // Failures during the start period do not count, as in Compose, nor do those
                // of early probes.
                if counted && started.elapsed() >= health.start_period {
                    failures += 1;
                }
                tracing::debug!(container = %c.name, "health probe failed: {why}");
                if failures >= health.retries.max(1) {
                    Health::Unhealthy
                } else {
                    current
                }
            }
        };
        if next != current {
            current = next;
            update(&inner, &c.name, |s| s.health = Some(next));
            match next {
                Health::Healthy => {
                    if let Err(why) = fire(&inner, Some(&c), Event::Healthy, "healthy", None, "").await {
                        return why;
                    }
                }
                Health::Unhealthy => {
                    let _ = fire(&inner, Some(&c), Event::Unhealthy, "unhealthy", None, "").await;
                    let _ = fire(&inner, Some(&c), Event::Failed, "unhealthy", None, "the health check failed").await;
                }
                Health::Starting => {}
            }
        }
        let mut wait = next_counted.saturating_duration_since(Instant::now());
        if current == Health::Starting {
            wait = wait.min(early);
            early = (early * 2).min(health.interval);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = revision.changed() => {}
        }
    }
}

/// A stop signal as an app file or an image's StopSignal writes it (`SIGQUIT`, `QUIT`, `3`).
pub fn signal_number(name: &str) -> Option<i32> {
    name.parse::<i32>().ok().or_else(|| {
        let canonical = tfctl_schema::values::parse_signal(name).ok()?;
        canonical.parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32)
    })
}

/// Stops the container's process as `down` does: stopping hooks, the stop signal, then a kill
/// once `stop-timeout` (which the hooks count against) has passed.
async fn stop_process<D: Driver>(inner: &Inner<D>, c: &Container) -> ExitStatus {
    let deadline = Instant::now() + c.stop_timeout;
    let stopping = fire(inner, Some(c), Event::Stopping, "stopped", None, "");
    let _ = tokio::time::timeout(c.stop_timeout, stopping).await;
    // The app file's, else the image's StopSignal (SIGQUIT for nginx, SIGINT for PostgreSQL),
    // else SIGTERM, as `docker stop` chooses.
    let name = c.stop_signal.clone().or_else(|| inner.driver.image_stop_signal(&c.name));
    let signal = name.and_then(|n| signal_number(&n)).unwrap_or(libc::SIGTERM);
    let _ = inner.driver.signal(&c.name, signal).await;
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, inner.driver.wait(&c.name)).await {
        Ok(exit) => exit,
        Err(_) => {
            inner.driver.kill_all(&c.name).await;
            inner.driver.wait(&c.name).await
        }
    }
}

/// One container's life under the supervisor.
async fn run_container<D: Driver>(inner: Arc<Inner<D>>, name: String) {
    let Some(mut c) = inner.current(&name) else { return };
    let Some(mut commands) = lock(&inner.commands).get(&name).map(|tx| tx.subscribe()) else { return };
    if !wait_for_dependencies(&inner, &c, &mut commands).await {
        if *commands.borrow() == Command::Run {
            update(&inner, &name, |s| {
                s.state = State::Failed;
                s.reason = Some("a container it comes after did not get there".into());
            });
            let _ = fire(&inner, Some(&c), Event::Failed, "dependency", None, "a container it comes after did not get there").await;
        }
        return;
    }
    let mut backoff = Backoff::default();
    loop {
        if let Some(now) = inner.current(&name) {
            c = now;
        }
        update(&inner, &name, |s| {
            s.state = State::Starting;
            s.started_hooks_done = false;
            s.settled = false;
            s.health = c.health.as_ref().map(|_| Health::Starting);
        });
        let began = Instant::now();
        // (how it ended, whether tfctl was asked to stop it, whether `failed` already fired)
        let (exit, requested, failed_fired) = match inner.driver.start(&name).await {
            Err(e) => {
                let _ = fire(&inner, Some(&c), Event::Failed, "start", None, &e).await;
                update(&inner, &name, |s| s.reason = Some(format!("it could not start: {e}")));
                (ExitStatus { code: 125, signal: None }, false, true)
            }
            Ok(()) => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).ok();
                update(&inner, &name, |s| {
                    s.state = State::Running;
                    s.started_at = now;
                });
                // Aborted as soon as the process ends, so a process that exits at once never
                // counts as settled (see SETTLE).
                let settle = tokio::spawn({
                    let (inner, name) = (inner.clone(), name.clone());
                    async move {
                        tokio::time::sleep(SETTLE).await;
                        update(&inner, &name, |s| s.settled = s.state == State::Running);
                    }
                });
                let settle = settle.abort_handle();
                let hooks = fire(&inner, Some(&c), Event::Started, "started", None, "").await;
                update(&inner, &name, |s| s.started_hooks_done = hooks.is_ok());
                let health = tokio::spawn(watch_health(inner.clone(), name.clone()));
                let abort = health.abort_handle();
                let mut health_done = false;
                let outcome = if let Err(why) = hooks {
                    let _ = fire(&inner, Some(&c), Event::Failed, "hook", None, &why).await;
                    let exit = stop_process(&inner, &c).await;
                    let _ = fire(&inner, Some(&c), Event::Exited, "stopped", Some(exit), "").await;
                    update(&inner, &name, |s| s.reason = Some("a started hook failed".into()));
                    (exit, false, true)
                } else {
                    let mut health = health;
                    tokio::select! {
                        exit = inner.driver.wait(&name) => {
                            settle.abort();
                            // Killed at its memory limit: said as such, as `docker inspect`'s
                            // OOMKilled, in the event, its hooks' TFCTL_REASON and `ps`.
                            let oom = inner.driver.oom_kills(&name);
                            if oom > 0 {
                                let why = format!("out of memory: the kernel killed {oom} of its processes at its memory limit");
                                let _ = fire(&inner, Some(&c), Event::Exited, "oom", Some(exit), &why).await;
                                update(&inner, &name, |s| s.reason = Some(why.clone()));
                            } else {
                                let _ = fire(&inner, Some(&c), Event::Exited, "exited", Some(exit), "").await;
                            }
                            (exit, false, false)
                        }
                        _ = stop_requested(&mut commands) => {
                            let exit = stop_process(&inner, &c).await;
                            let _ = fire(&inner, Some(&c), Event::Exited, "stopped", Some(exit), "").await;
                            (exit, true, false)
                        }
                        reason = &mut health => {
                            health_done = true;
                            // A healthy hook with on-fail="fail" failed.
                            let why = reason.unwrap_or_else(|_| "a healthy hook failed".into());
                            let _ = fire(&inner, Some(&c), Event::Failed, "hook", None, &why).await;
                            let exit = stop_process(&inner, &c).await;
                            let _ = fire(&inner, Some(&c), Event::Exited, "stopped", Some(exit), "").await;
                            update(&inner, &name, |s| s.reason = Some("a healthy hook failed".into()));
                            (exit, false, true)
                        }
                    }
                };
                if !health_done {
                    abort.abort();
                }
                // Whatever ended this run, its window must not settle the next.
                settle.abort();
                outcome
            }
        };
        if requested {
            update(&inner, &name, |s| {
                s.state = State::Stopped;
                s.exit = Some(exit);
                s.exit_code = Some(exit.code);
            });
            return;
        }
        // A failed start or hook counts as a failure whatever status the stop produced.
        // The policy in force now: a reconcile may have changed it while the container ran.
        let policy = inner.current(&name).map_or_else(|| c.restart.clone(), |now| now.restart);
        let decision = backoff.on_exit(&policy, exit.success() && !failed_fired, began.elapsed());
        let restarts = backoff.restarts;
        match decision {
            Decision::RestartAfter(delay) => {
                update(&inner, &name, |s| {
                    s.state = State::Exited;
                    s.exit = Some(exit);
                    s.exit_code = Some(exit.code);
                    s.restarts = restarts;
                });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = stop_requested(&mut commands) => {
                        update(&inner, &name, |s| s.state = State::Stopped);
                        return;
                    }
                }
            }
            Decision::Stay => {
                let failed = failed_fired || !exit.success() || !c.one_shot;
                update(&inner, &name, |s| {
                    s.exit = Some(exit);
                    s.exit_code = Some(exit.code);
                    if failed {
                        s.state = State::Failed;
                        s.reason.get_or_insert_with(|| format!("exited with status {}", exit.code));
                    } else {
                        s.state = State::Exited;
                    }
                });
                if failed && !failed_fired {
                    let _ = fire(&inner, Some(&c), Event::Failed, "exited", Some(exit), "").await;
                }
                return;
            }
            Decision::LimitReached => {
                update(&inner, &name, |s| {
                    s.state = State::Failed;
                    s.exit = Some(exit);
                    s.exit_code = Some(exit.code);
                    s.reason = Some("restart limit reached".into());
                });
                let _ = fire(&inner, Some(&c), Event::Failed, "restart-limit", Some(exit), "the restart limit is used up").await;
                return;
            }
        }
    }
}
