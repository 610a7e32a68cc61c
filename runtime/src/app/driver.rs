//! The supervisor's driver for real containers: each start prepares the container (folders,
//! cgroup, compiled Spec, pre-boot files, secrets), wires its network namespace once, and asks
//! the spawner for the process; output goes to the container's log.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use tfctl_schema::model::{App, Container, SecretTarget};

use super::etc;
use crate::cgroup::ContainerCgroup;
use crate::container::{self, Inputs, Writes};
use crate::files::TemplateContext;
use crate::hooks::host::HostOutcome;
use crate::image::Image;
use crate::logs::{LogWriter, Splitter, Stream};
use crate::net::{AppNet, NetRecord};
use crate::secrets::SecretValue;
use crate::spawn::{FileInit, Spawner, StartFds, StartPlan};
use crate::state::StateRoot;
use crate::supervise::{Driver, ExitStatus};

/// A record of container output (a line, or a piece of a long one), for the foreground view.
#[derive(Debug, Clone)]
pub struct OutputLine {
    pub container: String,
    pub stream: Stream,
    /// The container's bytes, without the newline.
    pub text: Vec<u8>,
    /// The line goes on in the next record of this container's stream.
    pub partial: bool,
}

/// How many records the foreground view may lag behind: past that, the container waits for
/// it (as a container writing to a terminal waits), so the view holds at most this many
/// records of at most [`crate::logs::MAX_RECORD`] bytes.
pub const OUTPUT_BACKLOG: usize = 64;

/// What every container of the app shares, for the supervisor's life.
pub struct AppContext {
    pub root: StateRoot,
    pub spawner: Arc<Spawner>,
    pub log_size: u64,
    /// Where output records also go (the foreground `up`); `None` when detached. Bounded by
    /// [`OUTPUT_BACKLOG`].
    pub output: Option<mpsc::Sender<OutputLine>>,
}

/// Who and where an exec runs, beyond the container's own settings.
#[derive(Debug, Clone, Default)]
pub struct ExecAs {
    /// `KEY=VALUE` added to the container's environment.
    pub env: Vec<String>,
    /// `-u`: a user as `user` in an app file takes it.
    pub user: Option<String>,
    /// `-w`: an absolute path in the container.
    pub workdir: Option<String>,
    /// `-t`: a pty in the container's devpts; its master goes to `pty_master` once started.
    pub tty: bool,
}

impl ExecAs {
    /// Makes `plan` (the container's own, made to join it by [`StartPlan::exec_in`]) run as
    /// this says: as `-u`'s user (with the capabilities `cap_add`/`cap_drop` give that uid), in
    /// `-w`, with `-e` and `-t`. `target` is the container's init.
    pub fn apply(&self, plan: &mut StartPlan, target: &OwnedFd, cap_add: &[String], cap_drop: &[String]) -> Result<(), String> {
        if let Some(spec) = &self.user {
            super::ops::exec_as_user(target, spec, cap_add, cap_drop, plan).map_err(|e| format!("-u {spec}: {e}"))?;
        }
        if let Some(dir) = &self.workdir {
            if !dir.starts_with('/') {
                return Err(format!("-w {dir}: give an absolute path in the container"));
            }
            plan.process.cwd = dir.clone();
        }
        plan.process.env.extend(self.env.iter().cloned());
        plan.pty = self.tty;
        plan.controlling_tty = self.tty;
        Ok(())
    }
}

/// What a reconcile can change: the app, its images, its network record, its secrets.
#[derive(Clone)]
pub struct Model {
    pub app: App,
    /// The image of each container, by container name.
    pub images: HashMap<String, Image>,
    pub net: Option<NetRecord>,
    /// Every secret the app defines, read or derived once.
    pub secrets: HashMap<String, SecretValue>,
}

#[derive(Default)]
struct Slot {
    netns: Option<OwnedFd>,
    pidfd: Option<OwnedFd>,
    exit: Option<watch::Receiver<Option<ExitStatus>>>,
    cgroup: Option<Box<dyn ContainerCgroup>>,
    plan: Option<StartPlan>,
    /// Processes the kernel killed at the memory limit during the last run, read as it ended.
    oom_kills: u64,
}

pub struct HostDriver {
    ctx: Arc<AppContext>,
    model: std::sync::RwLock<Arc<Model>>,
    slots: Mutex<HashMap<String, Slot>>,
    /// Where every event goes as it happens, for `tfctl events`.
    journal: super::events::Journal,
}

/// The names the app's containers resolve: every container on the app's network (not a
/// `network "none"` or `"host"` one), then every `alias` of one that has an address.
fn peers(m: &Model) -> Vec<(String, std::net::Ipv4Addr)> {
    let Some(net) = m.net.as_ref() else { return Vec::new() };
    let on_net = |name: &str| m.app.container(name).is_none_or(|c| c.network == tfctl_schema::model::NetworkMode::App);
    let mut out: Vec<(String, std::net::Ipv4Addr)> = net.containers.iter().filter(|(k, _)| on_net(k)).map(|(k, v)| (k.clone(), v.address)).collect();
    for c in &m.app.containers {
        if let Some(addr) = net.containers.get(&c.name).filter(|_| on_net(&c.name)) {
            out.extend(c.aliases.iter().map(|a| (a.clone(), addr.address)));
        }
    }
    out
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

impl HostDriver {
    pub fn new(ctx: AppContext, model: Model) -> HostDriver {
        let journal = super::events::Journal::new(&ctx.root, &model.app.name);
        HostDriver { ctx: Arc::new(ctx), model: std::sync::RwLock::new(Arc::new(model)), slots: Mutex::new(HashMap::new()), journal }
    }

    pub fn context(&self) -> &AppContext {
        &self.ctx
    }

    /// The app's event journal.
    pub fn journal(&self) -> &super::events::Journal {
        &self.journal
    }

    /// The model containers are started from now.
    pub fn model(&self) -> Arc<Model> {
        self.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the model (a reconcile): later starts use it.
    pub fn set_model(&self, model: Model) {
        *self.model.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(model);
    }

    fn container(&self, name: &str) -> Result<Container, String> {
        let m = self.model();
        m.app.container(name).cloned().ok_or_else(|| format!("no container {name} in app {}", m.app.name))
    }

    fn peers(&self) -> Vec<(String, std::net::Ipv4Addr)> {
        peers(&self.model())
    }

    /// Removes everything of a container that left the app: its cgroup, its network namespace
    /// and host veth. Its folders are the caller's.
    pub fn forget(&self, name: &str) {
        self.cleanup(name);
        let slot = self.slots.lock().ok().and_then(|mut s| s.remove(name));
        drop(slot);
        if let Some(addr) = self.model().net.as_ref().and_then(|n| n.containers.get(name)) {
            let _ = crate::net::links::detach_container(addr);
        }
    }

    /// A pidfd for every running container's init, by name.
    pub fn running(&self) -> Vec<(String, OwnedFd)> {
        let Ok(slots) = self.slots.lock() else { return Vec::new() };
        slots.iter().filter_map(|(n, s)| Some((n.clone(), s.pidfd.as_ref()?.try_clone().ok()?))).collect()
    }

    /// The /etc/hosts a container of the current model gets.
    pub fn hosts_file(&self, name: &str) -> Option<String> {
        let m = self.model();
        let c = m.app.container(name)?;
        let peers = peers(&m);
        let own = peers.iter().find(|(n, _)| *n == c.name).map(|(_, ip)| *ip);
        Some(etc::hosts(&m.app.name, &c.hostname, own, &peers, &c.extra_hosts))
    }

    /// The container's network namespace, made and wired on first use.
    fn wired_netns(&self, name: &str) -> Result<OwnedFd, String> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.entry(name.to_string()).or_default();
        if slot.netns.is_none() {
            let m = self.model();
            // `network "host"`: the supervisor's own namespace, the host's: no veth, no address.
            if m.app.container(name).is_some_and(|c| c.network == tfctl_schema::model::NetworkMode::Host) {
                let ns = std::fs::File::open("/proc/self/ns/net").map_err(|e| format!("cannot open the host's network namespace: {e}"))?;
                slot.netns = Some(ns.into());
                return slot.netns.as_ref().expect("set above").try_clone().map_err(|e| e.to_string());
            }
            let ns = super::netns::new_netns().map_err(|e| format!("cannot create a network namespace: {e}"))?;
            // `network none`: loopback only, on no network.
            let on_none = m.app.container(name).is_some_and(|c| c.network == tfctl_schema::model::NetworkMode::None);
            if let (Some(net), false) = (&m.net, on_none) {
                AppNet::attach_container(net, name, std::os::fd::AsFd::as_fd(&ns)).map_err(|e| e.to_string())?;
            }
            slot.netns = Some(ns);
        }
        slot.netns.as_ref().expect("set above").try_clone().map_err(|e| e.to_string())
    }

    fn inputs(&self, c: &Container, netns: OwnedFd) -> Inputs {
        let m = self.model();
        let peers = self.peers();
        let templates = TemplateContext {
            ips: peers.iter().cloned().collect(),
            names: m.app.containers.iter().map(|c| (c.name.clone(), c.name.clone())).collect(),
            secrets: m.secrets.clone(),
        };
        let mut secret_files = Vec::new();
        let mut extra_env = Vec::new();
        for s in &c.secrets {
            let Some(value) = m.secrets.get(&s.name) else { continue };
            match &s.target {
                SecretTarget::File { path, mode, owner } => {
                    let init = FileInit {
                        path: path.clone(),
                        data: value.expose().to_vec(),
                        mode: *mode,
                        uid: owner.map_or(0, |o| o.uid),
                        gid: owner.map_or(0, |o| o.gid),
                    };
                    secret_files.push((init, owner.is_some()));
                }
                SecretTarget::Env(var) => extra_env.push(format!("{var}={}", String::from_utf8_lossy(value.expose()))),
            }
        }
        let rootfs_files = vec![
            FileInit { path: "/etc/hosts".into(), data: self.hosts_file(&c.name).unwrap_or_default().into_bytes(), mode: 0o644, uid: 0, gid: 0 },
            FileInit { path: "/etc/resolv.conf".into(), data: etc::resolv_conf(&c.dns).into_bytes(), mode: 0o644, uid: 0, gid: 0 },
        ];
        Inputs { templates, secret_files, extra_env, netns: Some(netns), rootfs_files }
    }

    /// Copies a container's output into its log, record by record, and to the foreground view.
    /// Bytes are copied as they are (a log is bytes, not always text), and the pipe is read to
    /// its end whatever happens to the log or the view: a reader that gave up would kill the
    /// container's next write with SIGPIPE.
    fn pump(&self, name: &str, stream: Stream, fd: OwnedFd, log: Arc<Mutex<LogWriter>>) {
        let output = self.ctx.output.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else { return };
            let mut split = Splitter::new();
            let mut at_end = false;
            while !at_end {
                match pipe.read(split.space()).await {
                    Ok(0) => at_end = true,
                    Ok(n) => split.commit(n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!("cannot read the output of container {name}: {e}");
                        at_end = true;
                    }
                }
                let mut records = Vec::new();
                while let Some((text, partial)) = split.next_record() {
                    records.push((text.to_vec(), partial));
                }
                if at_end {
                    records.extend(split.finish().map(|text| (text.to_vec(), true)));
                }
                for (text, partial) in records {
                    if let Ok(mut w) = log.lock() {
                        let _ = w.record(stream, &text, partial);
                    }
                    if let Some(out) = &output {
                        // A view that has gone (its receiver dropped) only stops the view.
                        let _ = out.send(OutputLine { container: name.clone(), stream, text, partial }).await;
                    }
                }
            }
        });
    }

    fn log_writer(&self, name: &str) -> std::io::Result<Arc<Mutex<LogWriter>>> {
        let m = self.model();
        let dir = self.ctx.root.dir(&format!("apps/{}/logs", m.app.name))?;
        // The container's own `log size=`, else the host config's; `files=`, else one.
        let c = m.app.container(name);
        let size = c.and_then(|c| c.log.size).unwrap_or(self.ctx.log_size);
        let keep = c.and_then(|c| c.log.files).unwrap_or(1);
        Ok(Arc::new(Mutex::new(LogWriter::open(&dir.join(format!("{name}.log")), size, keep)?)))
    }

    /// Removes what a container's run left: its cgroup (with anything still in it).
    pub fn cleanup(&self, name: &str) {
        let cgroup = self.slots.lock().ok().and_then(|mut s| s.get_mut(name).and_then(|slot| slot.cgroup.take()));
        if let Some(cg) = cgroup {
            let _ = cg.remove();
        }
    }

    /// A pidfd of the running container's init (`cp` opens its root through it).
    pub fn pidfd(&self, name: &str) -> Option<OwnedFd> {
        let slots = self.slots.lock().ok()?;
        slots.get(name)?.pidfd.as_ref()?.try_clone().ok()
    }

    /// Kills and removes every container's cgroup and forgets the namespaces.
    pub fn cleanup_all(&self) {
        let names: Vec<String> = self.slots.lock().map(|s| s.keys().cloned().collect()).unwrap_or_default();
        for n in names {
            self.cleanup(&n);
        }
        if let Ok(mut s) = self.slots.lock() {
            s.clear();
        }
    }

    /// Runs `argv` in the running container `name` with its confinement, capturing output.
    pub async fn exec_captured(&self, name: &str, argv: &[String], timeout: Duration, stdio: Option<(OwnedFd, OwnedFd, OwnedFd)>) -> Result<HostOutcome, String> {
        self.exec_in(name, argv, &ExecAs::default(), timeout, stdio, None).await.map_err(|(_, e)| e)
    }

    /// Runs `argv` in the running container `name` as `how` says, handing the pty master (with
    /// `how.tty`) to `pty_master` as soon as the process runs. A failure to start says the
    /// status `docker exec` would exit with (125, 126, 127) and why.
    pub async fn exec_in(
        &self,
        name: &str,
        argv: &[String],
        how: &ExecAs,
        timeout: Duration,
        stdio: Option<(OwnedFd, OwnedFd, OwnedFd)>,
        pty_master: Option<tokio::sync::oneshot::Sender<OwnedFd>>,
    ) -> Result<HostOutcome, (i32, String)> {
        let fail = |e: String| (125, e);
        let (mut plan, target, attach) = {
            let slots = self.slots.lock().map_err(|_| fail("state poisoned".to_string()))?;
            let not_running = || fail(format!("container {name} is not running"));
            let slot = slots.get(name).ok_or_else(not_running)?;
            let plan = slot.plan.as_ref().ok_or_else(not_running)?.exec_in(argv.to_vec(), None);
            let target = slot.pidfd.as_ref().ok_or_else(not_running)?.try_clone().map_err(|e| fail(e.to_string()))?;
            let attach = match &slot.cgroup {
                Some(cg) => cg.attach_files().map_err(|e| fail(e.to_string()))?.fds,
                None => Vec::new(),
            };
            (plan, target, attach)
        };
        let (cap_add, cap_drop) = match &how.user {
            Some(_) => self.container(name).map(|c| (c.cap_add, c.cap_drop)).map_err(fail)?,
            None => Default::default(),
        };
        how.apply(&mut plan, &target, &cap_add, &cap_drop).map_err(fail)?;
        let mut fds = StartFds { target: Some(target), cgroup_procs: attach, ..StartFds::default() };
        let mut capture = None;
        match stdio {
            Some((i, o, e)) => {
                fds.stdin = Some(i);
                fds.stdout = Some(o);
                fds.stderr = Some(e);
            }
            None => {
                let (r, w) = pipe().map_err(|e| fail(e.to_string()))?;
                fds.stdin = Some(OwnedFd::from(std::fs::File::open("/dev/null").map_err(|e| fail(e.to_string()))?));
                fds.stderr = Some(w.try_clone().map_err(|e| fail(e.to_string()))?);
                fds.stdout = Some(w);
                capture = Some(r);
            }
        }
        let mut child = self.ctx.spawner.launch_async(&plan, fds).await.map_err(|e| (e.run_status(), e.to_string()))?;
        if let (Some(master), Some(to)) = (child.take_pty(), pty_master) {
            let _ = to.send(master);
        }
        let (_, pidfd, waiter) = child.into_parts();
        let read = async move {
            let mut out = Vec::new();
            if let Some(r) = capture {
                if let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(r) {
                    // The first 64 KiB are kept; the rest is read and dropped, so a chatty
                    // process never waits on a full pipe until its timeout.
                    let _ = (&mut rx).take(64 * 1024).read_to_end(&mut out).await;
                    let _ = tokio::io::copy(&mut rx, &mut tokio::io::sink()).await;
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        match tokio::time::timeout(timeout, async { tokio::join!(waiter.wait_async(), read) }).await {
            Ok((status, output)) => {
                let status = status.map_err(|e| fail(e.to_string()))?;
                Ok(HostOutcome { status: Some(status.code()), timed_out: false, output })
            }
            Err(_) => {
                let _ = crate::sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
                Ok(HostOutcome { status: None, timed_out: true, output: String::new() })
            }
        }
    }
}

/// The app-level log of its hooks' output under the app's logs, beside the containers' (a
/// name no container can have: `tfctl logs APP` shows it as `_hooks`).
pub const HOOKS_LOG: &str = "_hooks";

impl Driver for HostDriver {
    fn record_event(&self, report: &crate::supervise::Report, restarts: u32) {
        self.journal.report(report, restarts);
    }

    fn hook_output(&self, container: Option<&str>, event: &str, line: &str) {
        let text = format!("{} {event}: {line}", container.unwrap_or("app"));
        match self.log_writer(HOOKS_LOG) {
            Ok(w) => {
                if let Ok(mut w) = w.lock() {
                    let _ = w.record(Stream::Stdout, text.as_bytes(), false);
                }
            }
            Err(e) => tracing::warn!("cannot write the hooks' log: {e}"),
        }
    }

    async fn start(&self, name: &str) -> Result<(), String> {
        let c = self.container(name)?;
        let model = self.model();
        let image = model.images.get(name).ok_or_else(|| format!("no image for container {name}"))?;
        self.cleanup(name);
        let netns = self.wired_netns(name)?;
        let inputs = self.inputs(&c, netns);
        let mut prepared = container::prepare(&self.ctx.root, &model.app.name, &c, image, Writes::Kept, inputs).map_err(|e| e.to_string())?;
        let log = self.log_writer(name).map_err(|e| format!("cannot open the log of {name}: {e}"))?;
        let (out_r, out_w) = pipe().map_err(|e| e.to_string())?;
        let (err_r, err_w) = pipe().map_err(|e| e.to_string())?;
        prepared.fds.stdin = Some(OwnedFd::from(std::fs::File::open("/dev/null").map_err(|e| e.to_string())?));
        prepared.fds.stdout = Some(out_w);
        prepared.fds.stderr = Some(err_w);
        let plan = prepared.plan.clone();
        let started = self.ctx.spawner.launch_async(&prepared.plan, prepared.fds).await;
        let child = match started {
            Ok(child) => child,
            Err(e) => {
                let _ = prepared.cgroup.remove();
                return Err(e.to_string());
            }
        };
        self.pump(name, Stream::Stdout, out_r, log.clone());
        self.pump(name, Stream::Stderr, err_r, log);
        let (_, pidfd, waiter) = child.into_parts();
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let exit = waiter.wait_async().await.map(ExitStatus::from).unwrap_or(ExitStatus { code: 137, signal: Some(libc::SIGKILL) });
            tx.send_replace(Some(exit));
        });
        let mut slots = self.slots.lock().map_err(|_| "state poisoned".to_string())?;
        let slot = slots.entry(name.to_string()).or_default();
        slot.pidfd = Some(pidfd);
        slot.exit = Some(rx);
        slot.cgroup = Some(prepared.cgroup);
        slot.plan = Some(plan);
        Ok(())
    }

    async fn wait(&self, name: &str) -> ExitStatus {
        let rx = self.slots.lock().ok().and_then(|s| s.get(name).and_then(|slot| slot.exit.clone()));
        let Some(mut rx) = rx else { return ExitStatus { code: 125, signal: None } };
        let exit = match rx.wait_for(|e| e.is_some()).await {
            Ok(e) => e.expect("waited for Some"),
            Err(_) => ExitStatus { code: 137, signal: Some(libc::SIGKILL) },
        };
        // Read before the cgroup goes: whether the kernel killed it at its memory limit.
        if let Ok(mut slots) = self.slots.lock() {
            if let Some(slot) = slots.get_mut(name) {
                slot.oom_kills = slot.cgroup.as_ref().and_then(|cg| cg.stats().ok()).and_then(|s| s.oom_kills).unwrap_or(0);
            }
        }
        // The process is gone: nothing may stay in its cgroup.
        self.cleanup(name);
        exit
    }

    async fn signal(&self, name: &str, signal: i32) -> Result<(), String> {
        let slots = self.slots.lock().map_err(|_| "state poisoned".to_string())?;
        let fd = slots.get(name).and_then(|s| s.pidfd.as_ref()).ok_or_else(|| format!("container {name} is not running"))?;
        crate::sys::pidfd_send_signal(fd.as_raw_fd(), signal).map_err(|e| std::io::Error::from_raw_os_error(e).to_string())
    }

    async fn kill_all(&self, name: &str) {
        let slots = self.slots.lock().ok();
        if let Some(cg) = slots.as_ref().and_then(|s| s.get(name)).and_then(|s| s.cgroup.as_ref()) {
            let _ = cg.kill();
        }
    }

    async fn exec(&self, container: &str, argv: &[String], timeout: Duration) -> Result<HostOutcome, String> {
        self.exec_captured(container, argv, timeout, None).await
    }

    fn netns(&self, container: &str) -> Option<OwnedFd> {
        let slots = self.slots.lock().ok()?;
        slots.get(container)?.netns.as_ref()?.try_clone().ok()
    }

    fn oom_kills(&self, container: &str) -> u64 {
        self.slots.lock().ok().and_then(|s| s.get(container).map(|slot| slot.oom_kills)).unwrap_or(0)
    }

    fn image_stop_signal(&self, container: &str) -> Option<String> {
        let model = self.model();
        let config = model.images.get(container)?.config.config().clone()?;
        config.stop_signal().clone()
    }
}
