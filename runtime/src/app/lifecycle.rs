//! An app's life on the host: plan its network, run its supervisor until it is told to stop,
//! and remove every object its record names (also when the supervisor died without doing so).

use std::collections::HashMap;
use std::sync::Arc;

use tfctl_schema::model::{self, App, HostConfig};
use tokio::sync::{mpsc, watch};

use super::client::{self, ClientError};
use super::driver::{AppContext, HostDriver, Model, OutputLine};
use super::reconcile;
use super::record::{self, AppRecord};
use crate::control::ControlServer;
use crate::image::Image;
use crate::net::{self, firewall, AppId, AppNet, NetRecord};
use crate::secrets::{self, HostKey, SecretValue};
use crate::spawn::Spawner;
use crate::state::files::{read_json, write_json, Lock};
use crate::state::identity::ProcessIdentity;
use crate::state::StateRoot;
use crate::supervise::{readiness, Readiness, Report, StatusMap, Supervisor};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("network: {0}")]
    Net(#[from] net::NetError),
    #[error("secret: {0}")]
    Secret(#[from] secrets::SecretError),
    #[error(transparent)]
    Port(#[from] net::ports::PortError),
    #[error("app {app} is already supervised by process {pid}: run `tfctl down {app}` first")]
    Running { app: String, pid: i32 },
    #[error("container {container}: {source}")]
    Cgroup { container: String, source: crate::cgroup::CgroupError },
}

fn ipnet(n: model::Ipv4Net) -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(n.addr, n.prefix).expect("validated prefix")
}

/// The app's network, planned (no side effect): the recorded one when its subnet still fits,
/// else a new subnet; every container gets its fixed address.
pub fn plan_network(root: &StateRoot, app: &App, config: &HostConfig, previous: Option<NetRecord>) -> Result<NetRecord, LifecycleError> {
    let id = AppId::derive(root.path(), &app.name);
    let wanted = app.subnet.map(ipnet);
    let mut rec = match previous {
        Some(p) if wanted.is_none_or(|w| w.trunc() == p.subnet) => p,
        _ => {
            let taken: Vec<ipnet::Ipv4Net> = record::all(root)
                .into_iter()
                .filter(|r| r.name != app.name)
                .filter_map(|r| r.net.map(|n| n.subnet))
                .collect();
            let subnet = net::subnet::allocate(wanted, ipnet(config.subnet_pool), &taken)?;
            NetRecord::plan(id, subnet)?
        }
    };
    for c in &app.containers {
        rec.assign(&c.name)?;
    }
    Ok(rec)
}

fn proto(p: model::Proto) -> firewall::Proto {
    match p {
        model::Proto::Tcp => firewall::Proto::Tcp,
        model::Proto::Udp => firewall::Proto::Udp,
    }
}

fn ports(p: Option<model::PortRange>) -> Option<firewall::PortRange> {
    p.map(|r| firewall::PortRange { first: r.start, last: r.end })
}

/// A free host port for `publish 0`.
fn free_port(p: model::Proto) -> u16 {
    match p {
        model::Proto::Tcp => std::net::TcpListener::bind("0.0.0.0:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0),
        model::Proto::Udp => std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.local_addr()).map(|a| a.port()).unwrap_or(0),
    }
}

/// The firewall intent of the app model. A `publish 0` keeps the host port chosen before
/// (`previous`), so a reconcile does not move it.
pub fn firewall_spec(app: &App, previous: &[super::ops::PublishedPort]) -> firewall::FirewallSpec {
    // A `network "host"` container is not on the app's network: no rules of its own.
    let containers = app
        .containers
        .iter()
        .filter(|c| c.network != model::NetworkMode::Host)
        .map(|c| firewall::ContainerRules {
            name: c.name.clone(),
            allow: c
                .allow
                .iter()
                .map(|a| firewall::Allow {
                    from: match &a.from {
                        model::Peer::Container(n) => firewall::Source::Container(n.clone()),
                        model::Peer::Host => firewall::Source::Host,
                        model::Peer::Any => firewall::Source::Any,
                        model::Peer::Cidr(n) => firewall::Source::Cidr(ipnet(*n)),
                    },
                    ports: ports(a.ports),
                    proto: a.proto.map(proto),
                })
                .collect(),
            egress: match c.egress_or(app.egress) {
                model::Egress::Allow => firewall::Egress::Allow,
                model::Egress::Deny => firewall::Egress::Deny,
            },
            allow_egress: c
                .allow_egress
                .iter()
                .map(|a| firewall::AllowEgress {
                    to: match &a.to {
                        model::EgressDest::Host => firewall::Destination::Host,
                        model::EgressDest::Cidr(n) => firewall::Destination::Cidr(ipnet(*n)),
                    },
                    ports: ports(a.ports),
                    proto: a.proto.map(proto),
                })
                .collect(),
            publish: c
                .publish
                .iter()
                .map(|p| firewall::Publish {
                    host_ip: p.host_ip,
                    host_port: match p.host_port {
                        0 => previous
                            .iter()
                            .find(|q| q.container == c.name && q.container_port == p.container_port && q.host_ip == p.host_ip && q.proto == p.proto.to_string())
                            .map_or_else(|| free_port(p.proto), |q| q.host_port),
                        port => port,
                    },
                    container_port: p.container_port,
                    proto: proto(p.proto),
                })
                .collect(),
        })
        .collect();
    firewall::FirewallSpec { containers }
}

fn host_record_path(root: &StateRoot) -> std::path::PathBuf {
    root.path().join("host.json")
}

/// Host-wide settings are shared by every app of the root: changed under the root's host lock.
fn with_host_record<T>(root: &StateRoot, f: impl FnOnce(&mut net::host::HostRecord) -> Result<T, net::NetError>) -> Result<T, LifecycleError> {
    let lock_path = root.path().join("host.lock");
    let _lock = loop {
        if let Some(l) = Lock::try_exclusive(&lock_path)? {
            break l;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let path = host_record_path(root);
    let mut rec: net::host::HostRecord = read_json(&path)?.unwrap_or_default();
    let out = f(&mut rec);
    write_json(&path, &rec)?;
    Ok(out?)
}

/// Removes every host object `rec` names, whoever made them: the network, the cgroups. Safe to
/// repeat. Processes are never signalled by pid here: killing a cgroup reaches exactly the
/// container's processes.
pub fn remove_objects(root: &StateRoot, rec: &mut AppRecord) -> Result<(), LifecycleError> {
    // The host ids of its `userns "auto"` containers are free again.
    crate::userns::release(&crate::userns::app_prefix(root.path(), &rec.name));
    if let Ok(driver) = crate::container::cgroup_driver(root, &rec.name, false) {
        for name in rec.cgroups.drain(..) {
            let _ = driver.open(&name).remove();
        }
    }
    if let Some(net) = &rec.net {
        if rec.net_up {
            net::teardown(net)?;
            let id = net.app_id.clone();
            with_host_record(root, |h| h.release(&id))?;
            rec.net_up = false;
        }
    }
    // The app's containers go (their writable layers, their addresses), and its subnet is free
    // for another app: `ps` lists none of them any more, and the next `up` plans its network
    // afresh. The record stays, with the volumes and generated secrets that belong to it.
    rec.net = None;
    rec.ports.clear();
    let dir = record::app_dir(root, &rec.name);
    let _ = std::fs::remove_dir_all(dir.join("containers"));
    let _ = std::fs::remove_dir_all(dir.join("run"));
    rec.supervisor = None;
    record::save(root, rec)?;
    Ok(())
}

/// What a supervisor reports to whoever started it.
#[derive(Debug, Clone)]
pub enum Progress {
    Report(Report),
    Ready,
    Failed { container: String, reason: String },
}

/// Everything a supervisor needs, resolved before it starts.
pub struct SupervisorSetup {
    pub root: StateRoot,
    pub app: App,
    pub config: HostConfig,
    /// Where `config` came from (the file may not exist: then every setting is its default).
    pub config_file: Option<std::path::PathBuf>,
    pub images: HashMap<String, Image>,
    pub record: AppRecord,
    /// Output records of the containers, for a foreground view. Made with a capacity of
    /// [`super::driver::OUTPUT_BACKLOG`]: a view that lags that far makes the containers wait.
    pub output: Option<mpsc::Sender<OutputLine>>,
    pub progress: mpsc::UnboundedSender<Progress>,
    /// The values of from-env secrets, taken (and wiped from the environment) before the
    /// supervisor started.
    pub env_secrets: HashMap<String, SecretValue>,
}

/// Why the supervisor stopped the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `tfctl down` asked.
    Down,
    /// A signal (the foreground `up`'s Ctrl-C or SIGTERM).
    Signal,
}

/// How long the loop gives `down`'s one-line reply before it goes on stopping the app.
const REPLY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the app until `stop` says otherwise (or `down` arrives on the control socket), then
/// stops it and removes everything but its record and volumes. Holds the app's lock throughout.
pub async fn supervise(setup: SupervisorSetup, spawner: Arc<Spawner>, mut stop: watch::Receiver<bool>) -> Result<StopReason, LifecycleError> {
    let SupervisorSetup { root, app, config, config_file, images, mut record, output, progress, mut env_secrets } = setup;
    let app_dir = root.dir(&format!("apps/{}", app.name))?;
    let _lock = Lock::try_exclusive(&app_dir.join("lock"))?
        .ok_or_else(|| LifecycleError::Running { app: app.name.clone(), pid: record.supervisor.as_ref().map_or(0, |s| s.pid) })?;
    record.supervisor = Some(ProcessIdentity::current());
    // A new run's logs start empty: `logs` shows this run, not the last one's before it (they
    // stay readable after `down` until then).
    let _ = std::fs::remove_dir_all(app_dir.join("logs"));
    // Containers a previous supervisor added at run time went with it.
    record.added.clear();
    record::save(&root, &record)?;

    // Where the containers' cgroups go is settled before anything starts, and a limit that
    // cannot be held there is said once, naming the controller and the setting.
    let cgroups = crate::container::cgroup_driver(&root, &app.name, true)
        .map_err(|source| LifecycleError::Cgroup { container: app.name.clone(), source })?;
    for c in &app.containers {
        cgroups
            .check(&crate::cgroup::CgroupLimits::from_model(&c.limits))
            .map_err(|source| LifecycleError::Cgroup { container: c.name.clone(), source })?;
    }

    // Published ports first: one that anything holds fails `up` before a link, rule or
    // container exists; the reservations are held until the supervisor ends.
    let spec = firewall_spec(&app, &record.ports);
    let mut held_ports = Vec::new();
    super::ops::reserve_published(&super::ops::published(&spec), &mut held_ports)?;

    let net = record.net.clone().expect("up plans the network first");
    with_host_record(&root, |h| h.acquire(root.path(), &net.app_id))?;
    record.net_up = true;
    record::save(&root, &record)?;
    AppNet::create(&net)?;
    record.ports = super::ops::published(&spec);
    record::save(&root, &record)?;
    firewall::apply(&net, &spec)?;
    for warning in firewall::foreign_drop_policies().unwrap_or_default() {
        tracing::warn!("{warning}");
    }

    let key = HostKey::load_or_create(root.path())?;
    let values = reconcile::secret_values(&app, record.secret_generation, &key, &mut env_secrets, &HashMap::new())?;
    record.cgroups = app.containers.iter().map(|c| crate::container::cgroup_name(&root, &app.name, &c.name)).collect();
    record::save(&root, &record)?;

    let hook_base = reconcile::hook_base(&root, config_file.as_deref(), &app, &net, &record.ports, record.trusted_files);
    let ctx = AppContext { root: root.clone(), spawner, log_size: config.log_size, output };
    let model = Model { app: app.clone(), images, net: Some(net.clone()), secrets: values };
    let prints = reconcile::fingerprints(&key, &model).map_err(|e| LifecycleError::Io(std::io::Error::other(e)))?;
    let sup = Supervisor::new(app.clone(), HostDriver::new(ctx, model), hook_base);
    for c in app.containers.iter().filter(|c| c.restart.policy == model::RestartPolicy::UnlessStopped && record.user_stopped.contains(&c.name)) {
        sup.keep_stopped(&c.name);
    }
    let live = Arc::new(tokio::sync::Mutex::new(reconcile::Live { root: root.clone(), config_file, record, key, prints, held_ports }));

    let run_dir = root.dir(&format!("apps/{}/run", app.name))?;
    let mut control = ControlServer::bind(&run_dir)?;

    // Under a `Type=notify` unit (`tfctl systemd`), systemd hears what `up --wait` would.
    let notifier = crate::service::notify::Notifier::from_env().map(Arc::new);
    let mut events = sup.events();
    let fwd = progress.clone();
    let notify_status = notifier.clone();
    tokio::spawn(async move {
        while let Ok(r) = events.recv().await {
            if let Some(n) = &notify_status {
                n.status(&r.summary());
            }
            if fwd.send(Progress::Report(r)).is_err() {
                break;
            }
        }
    });
    sup.start_all();

    // WATCHDOG=1 is sent from this loop itself: a ping proves that the loop still answers.
    let mut watchdog = notifier.as_ref().and_then(|n| n.watchdog_interval()).map(tokio::time::interval);
    let mut status = sup.status();
    let mut announced = false;
    let reason = loop {
        tokio::select! {
            _ = tick(&mut watchdog) => {
                if let Some(n) = &notifier {
                    n.watchdog();
                }
            }
            changed = status.changed() => {
                if changed.is_err() { break StopReason::Signal; }
                let r = readiness(&sup.app(), &status.borrow_and_update());
                if !announced {
                    match r {
                        // App hooks run beside the control loop, so a hook can use tfctl on
                        // its own app while it runs.
                        Readiness::Ready => {
                            announced = true;
                            let (sup, progress, notifier) = (sup.clone(), progress.clone(), notifier.clone());
                            tokio::spawn(async move {
                                let _ = sup.fire_app_event(model::Event::Up, "ready").await;
                                let _ = progress.send(Progress::Ready);
                                if let Some(n) = notifier {
                                    let count = sup.app().containers.len();
                                    n.ready(&format!("app {} is ready ({count} container{})", sup.app().name, if count == 1 { "" } else { "s" }));
                                }
                            });
                        }
                        Readiness::Failed { container, reason } => {
                            announced = true;
                            let sup = sup.clone();
                            let why = reason.clone();
                            tokio::spawn(async move { sup.fire_app_event(model::Event::Failed, &why).await });
                            let _ = progress.send(Progress::Failed { container, reason });
                        }
                        Readiness::Pending => {}
                    }
                }
            }
            _ = stop.wait_for(|s| *s) => break StopReason::Signal,
            // Only whole requests arrive here (see control.rs), and every reply that may wait
            // on its client is sent beside the loop: no client can hold the loop up.
            Some(request) = control.next_request() => {
                let crate::control::Request { mut conn, body: req } = request;
                match req["op"].as_str() {
                    Some("down") => {
                        let _ = tokio::time::timeout(REPLY_DEADLINE, conn.send(&serde_json::json!({"ok": true}))).await;
                        break StopReason::Down;
                    }
                    Some("exec") => {
                        // Served beside the control loop: an exec may run as long as it likes.
                        let sup = sup.clone();
                        let fds = conn.take_fds();
                        tokio::spawn(async move { serve_exec(&sup, conn, fds, &req).await });
                    }
                    Some(op @ ("stop" | "start" | "restart" | "reset")) => {
                        let (sup, op, root, live) = (sup.clone(), op.to_string(), root.clone(), live.clone());
                        // The whole app: in dependency order, so each finds what it comes after.
                        let names: Vec<String> = match req["container"].as_str() {
                            Some(c) => vec![c.to_string()],
                            None if op == "stop" => sup.levels().into_iter().rev().flatten().collect(),
                            None => sup.levels().into_iter().flatten().collect(),
                        };
                        tokio::spawn(async move {
                            let mut errors = Vec::new();
                            for n in &names {
                                let done = match op.as_str() {
                                    "stop" => sup.stop(n).await,
                                    "start" => sup.start(n).await,
                                    "reset" => reset(&sup, &root, n).await,
                                    _ => sup.restart(n).await,
                                };
                                if let Err(e) = done {
                                    errors.push(e);
                                }
                            }
                            remember_user_stops(&live, &op, &names).await;
                            let reply = if errors.is_empty() {
                                serde_json::json!({"ok": true})
                            } else {
                                serde_json::json!({"ok": false, "error": errors.join("; ")})
                            };
                            let _ = conn.send(&reply).await;
                        });
                    }
                    Some(op) if super::serve_reconcile::serves(op) => {
                        let (sup, live) = (sup.clone(), live.clone());
                        tokio::spawn(async move { super::serve_reconcile::serve(&sup, &live, conn, &req).await });
                    }
                    Some(op) if super::ops::serves(op) => {
                        let sup = sup.clone();
                        tokio::spawn(async move { super::ops::serve(&sup, conn, &req).await });
                    }
                    Some("ps") => {
                        let map: StatusMap = sup.status().borrow().clone();
                        tokio::spawn(async move { conn.send(&serde_json::json!({"ok": true, "pid": std::process::id(), "containers": map})).await });
                    }
                    _ => {
                        tokio::spawn(async move { conn.send(&serde_json::json!({"ok": false, "error": "unknown request"})).await });
                    }
                }
            }
        }
    };

    if let Some(n) = &notifier {
        n.stopping();
    }
    sup.stop_all().await;
    let _ = sup.fire_app_event(model::Event::Down, "stopped").await;
    sup.driver().cleanup_all();
    drop(control);
    // A reconcile in progress ends with the stop above; its state is the record to clean up.
    let mut record = match tokio::time::timeout(std::time::Duration::from_secs(10), live.lock()).await {
        Ok(l) => l.record.clone(),
        Err(_) => record::load(&root, &app.name)?.ok_or_else(|| std::io::Error::other("the app's record is gone"))?,
    };
    remove_objects(&root, &mut record)?;
    Ok(reason)
}

/// The next tick of `interval`; never without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => drop(i.tick().await),
        None => std::future::pending().await,
    }
}

async fn serve_exec(sup: &Supervisor<HostDriver>, mut conn: crate::control::Connection, fds: Vec<std::os::fd::OwnedFd>, req: &serde_json::Value) {
    use std::os::fd::AsFd;
    let strings = |v: &serde_json::Value| -> Vec<String> { v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect() };
    let container = req["container"].as_str().unwrap_or_default();
    let argv = strings(&req["argv"]);
    let how = super::driver::ExecAs {
        env: strings(&req["env"]),
        user: req["user"].as_str().map(str::to_string),
        workdir: req["workdir"].as_str().map(str::to_string),
        tty: req["tty"] == true,
    };
    // The client's pipes, which it relays: stdout and stderr, after stdin if it passes input
    // (else the process gets /dev/null). Anything else might be its terminal or a file the
    // process could keep: refused (a client older than this supervisor sent those).
    let stdio = if how.tty {
        None
    } else {
        let mut fds = fds.into_iter();
        let given = match (fds.next(), fds.next(), fds.next()) {
            (Some(i), Some(o), Some(e)) => Some((Ok(i), o, e)),
            (Some(o), Some(e), None) => Some((std::fs::File::open("/dev/null").map(Into::into), o, e)),
            _ => None,
        };
        match given {
            Some((Ok(i), o, e)) if [&i, &o, &e].into_iter().all(is_pipe_or_null) => Some((i, o, e)),
            Some((Err(e), _, _)) => {
                let _ = conn.send(&serde_json::json!({"ok": false, "status": 125, "error": format!("opening /dev/null: {e}")})).await;
                return;
            }
            _ => {
                let error = "exec needs the pipes tfctl relays as stdout and stderr: use a tfctl as new as this app's supervisor";
                let _ = conn.send(&serde_json::json!({"ok": false, "status": 125, "error": error})).await;
                return;
            }
        }
    };
    let forever = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    let (master_tx, mut master_rx) = tokio::sync::oneshot::channel();
    let exec = sup.driver().exec_in(container, &argv, &how, forever, stdio, how.tty.then_some(master_tx));
    tokio::pin!(exec);
    // With a pty, its master goes back first (none if the start failed), then the status. A
    // process that ends at once may finish the exec before the master is picked up here: it
    // is in the channel then, and still goes back.
    let done = if how.tty {
        let (master, done) = tokio::select! {
            biased;
            master = &mut master_rx => (master.ok(), None),
            done = &mut exec => (master_rx.try_recv().ok(), Some(done)),
        };
        let sent: Vec<_> = master.iter().map(|m| m.as_fd()).collect();
        let _ = conn.send_fds(&sent).await;
        match done {
            Some(d) => d,
            None => exec.await,
        }
    } else {
        exec.await
    };
    let reply = match done {
        Ok(outcome) => serde_json::json!({"ok": true, "status": outcome.status.unwrap_or(137)}),
        Err((status, error)) => serde_json::json!({"ok": false, "status": status, "error": error}),
    };
    let _ = conn.send(&reply).await;
}

/// Runs `argv` in a container of a live app, with `stdio` (the ends of pipes the caller relays,
/// [`crate::relay`]; none with a pty). Returns the exit status, or the status and message of a
/// failure to start.
pub async fn request_exec(
    root: &StateRoot,
    app: &str,
    container: &str,
    argv: &[String],
    how: &super::driver::ExecAs,
    stdio: Option<crate::relay::ProcessStdio>,
    on_pty: impl FnOnce(std::os::fd::OwnedFd),
) -> Result<i32, (i32, String)> {
    use std::os::fd::AsFd;
    let dir = record::app_dir(root, app).join("run");
    let fds: Vec<_> = stdio.iter().flat_map(|s| s.stdin.iter().chain([&s.stdout, &s.stderr])).map(|f| f.as_fd()).collect();
    let conn = crate::control::Connection::connect_with_fds(&dir, &fds).await;
    // Ours close now: the process alone holds its ends.
    drop(fds);
    drop(stdio);
    let mut conn = conn.map_err(|e| (125, format!("cannot reach the supervisor of {app}: {e}")))?;
    conn.send(&serde_json::json!({"op": "exec", "container": container, "argv": argv, "env": how.env, "user": how.user, "workdir": how.workdir, "tty": how.tty}))
        .await
        .map_err(|e| (125, e.to_string()))?;
    if how.tty {
        let master = conn.recv_fds().await.map_err(|e| (125, format!("no answer from the supervisor of {app}: {e}")))?;
        if let Some(m) = master.into_iter().next() {
            on_pty(m);
        }
    }
    let reply: serde_json::Value = conn
        .recv()
        .await
        .map_err(|e| (125, e.to_string()))?
        .ok_or_else(|| (125, format!("the supervisor of {app} closed the connection")))?;
    let status = reply["status"].as_i64().unwrap_or(125) as i32;
    if reply["ok"] == true {
        Ok(status)
    } else {
        Err((status, reply["error"].as_str().unwrap_or("exec failed").to_string()))
    }
}

/// A pipe, or /dev/null (the character device 1:3).
fn is_pipe_or_null(fd: &std::os::fd::OwnedFd) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::Fifo => true,
        rustix::fs::FileType::CharacterDevice => (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)) == (1, 3),
        _ => false,
    })
}

/// Notes in the record which containers a user's `stop` stopped and a `start` (or `restart`)
/// has not started since, for `restart "unless-stopped"` at a later `up`.
async fn remember_user_stops(live: &tokio::sync::Mutex<reconcile::Live>, op: &str, names: &[String]) {
    let mut live = live.lock().await;
    let before = live.record.user_stopped.clone();
    for n in names {
        if op == "stop" {
            live.record.user_stopped.insert(n.clone());
        } else {
            live.record.user_stopped.remove(n);
        }
    }
    if live.record.user_stopped != before {
        if let Err(e) = record::save(&live.root, &live.record) {
            tracing::warn!("app {}: cannot note the stopped containers in its record: {e}", live.record.name);
        }
    }
}

/// `restart --reset`: every change to the container's filesystem since it was created goes
/// (its upper layer is discarded while it is stopped); the start writes its pre-boot files and
/// secrets again. Its namespace, and so its address and published ports, stay.
async fn reset(sup: &Supervisor<HostDriver>, root: &StateRoot, name: &str) -> Result<(), String> {
    sup.stop(name).await?;
    crate::container::ContainerDirs::new(root, &sup.app().name, name).discard_changes()?;
    sup.start(name).await
}

/// Asks a live supervisor to `stop`, `start`, `restart` or `reset` one container (or all),
/// and waits until it is done.
pub async fn request_op(root: &StateRoot, app: &str, op: &str, container: Option<&str>) -> Result<(), ClientError> {
    client::call_waiting(root, app, &serde_json::json!({"op": op, "container": container}), client::Wait::Work).await.map(drop)
}

/// Asks a live supervisor to stop its app. It answers before it stops: the caller waits for it
/// to exit.
pub async fn request_down(root: &StateRoot, app: &str) -> Result<(), ClientError> {
    client::call(root, app, &serde_json::json!({"op": "down"})).await.map(drop)
}

/// Asks a live supervisor for its containers' status.
pub async fn request_status(root: &StateRoot, app: &str) -> Option<serde_json::Value> {
    client::call(root, app, &serde_json::json!({"op": "ps"})).await.ok()
}
