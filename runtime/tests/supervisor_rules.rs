//! The supervisor's rules, driven with plain host processes standing in for containers (the
//! driver below runs each container's `command` with /bin/sh): ordering, hooks and their
//! variables, failure events, restart limits, wait outcomes and stopping.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tfctl_runtime::hooks::env::HookContext;
use tfctl_runtime::hooks::host::{self, HostOutcome};
use tfctl_runtime::supervise::{readiness, Driver, ExitStatus, Readiness, State, Supervisor};
use tfctl_schema::model::*;
use tokio::sync::watch;

/// Runs containers as host processes; records every start in order.
struct ProcessDriver {
    app: App,
    procs: Mutex<HashMap<String, (i32, watch::Receiver<Option<ExitStatus>>)>>,
    starts: Mutex<Vec<String>>,
}

impl ProcessDriver {
    fn new(app: &App) -> Self {
        ProcessDriver { app: app.clone(), procs: Mutex::new(HashMap::new()), starts: Mutex::new(Vec::new()) }
    }
}

impl Driver for ProcessDriver {
    async fn start(&self, name: &str) -> Result<(), String> {
        let c = self.app.container(name).unwrap();
        let argv = c.command.clone().unwrap();
        let mut child = tokio::process::Command::new(&argv[0]).args(&argv[1..]).spawn().map_err(|e| e.to_string())?;
        let pid = child.id().unwrap() as i32;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await.unwrap();
            let code = host::status_code(status);
            use std::os::unix::process::ExitStatusExt;
            tx.send_replace(Some(ExitStatus { code, signal: status.signal() }));
        });
        self.procs.lock().unwrap().insert(name.to_string(), (pid, rx));
        self.starts.lock().unwrap().push(name.to_string());
        Ok(())
    }

    async fn wait(&self, name: &str) -> ExitStatus {
        let mut rx = self.procs.lock().unwrap()[name].1.clone();
        let exit = *rx.wait_for(|e| e.is_some()).await.unwrap();
        exit.unwrap()
    }

    async fn signal(&self, name: &str, signal: i32) -> Result<(), String> {
        let pid = self.procs.lock().unwrap()[name].0;
        let sig = nix::sys::signal::Signal::try_from(signal).unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| e.to_string())
    }

    async fn kill_all(&self, name: &str) {
        let _ = self.signal(name, libc::SIGKILL).await;
    }

    async fn exec(&self, _: &str, argv: &[String], timeout: Duration) -> Result<HostOutcome, String> {
        host::run(argv, std::path::Path::new("/"), &[], timeout, true).await.map_err(|e| e.to_string())
    }

    fn netns(&self, _: &str) -> Option<std::os::fd::OwnedFd> {
        None
    }
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

fn container(name: &str, script: &str) -> Container {
    Container { command: Some(sh(script)), stop_timeout: Duration::from_secs(2), ..Container::new(name, "oci:/nowhere") }
}

fn app(dir: &std::path::Path, containers: Vec<Container>) -> App {
    App { containers, ..App::new("rules", dir.join("app.kdl")) }
}

fn hook(event: Event, script: &str) -> Hook {
    Hook { event, on_fail: event.default_on_fail(), timeout: Duration::from_secs(5), steps: vec![HookStep::Run(sh(script))] }
}

fn base(app: &App) -> HookContext {
    HookContext {
        app: app.name.clone(),
        root: PathBuf::from("/var/lib/tfctl-test"),
        app_file: app.file.clone(),
        ips: app.containers.iter().enumerate().map(|(i, c)| (c.name.clone(), Ipv4Addr::new(10, 89, 0, 2 + i as u8))).collect(),
        ..Default::default()
    }
}

async fn wait_outcome(sup: &Supervisor<ProcessDriver>) -> Readiness {
    let mut rx = sup.status();
    let app = sup.app().clone();
    let r = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|m| readiness(&app, m) != Readiness::Pending)).await;
    let m = r.expect("the app settled").unwrap();
    readiness(&app, &m)
}

#[tokio::test]
async fn ordering_hooks_and_a_failing_task() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events");
    let record = format!("echo \"$TFCTL_CONTAINER $TFCTL_EVENT $TFCTL_REASON code=$TFCTL_EXIT_CODE ip=$TFCTL_IP db=$TFCTL_IP_db\" >> {}", log.display());

    let mut db = container("db", "sleep 30");
    db.hooks = vec![hook(Event::Started, &record), hook(Event::Failed, &record), hook(Event::Exited, &record)];
    let mut task = container("migrate", "exit 3");
    task.one_shot = true;
    task.after = vec![After { container: "db".into(), until: Until::Started, restart: false }];
    task.hooks = vec![hook(Event::Failed, &record), hook(Event::Exited, &record)];
    let a = app(dir.path(), vec![db, task]);

    let sup = Supervisor::new(a.clone(), ProcessDriver::new(&a), base(&a));
    sup.start_all();
    let outcome = wait_outcome(&sup).await;
    assert_eq!(outcome, Readiness::Failed { container: "migrate".into(), reason: "exited with status 3".into() });
    assert_eq!(*sup.driver().starts.lock().unwrap(), ["db", "migrate"]);

    sup.stop_all().await;
    assert_eq!(sup.status().borrow()["db"].state, State::Stopped);
    let lines = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert!(lines.contains(&"db started started code= ip=10.89.0.2 db=10.89.0.2"), "{lines:#?}");
    assert!(lines.contains(&"migrate exited exited code=3 ip=10.89.0.3 db=10.89.0.2"), "{lines:#?}");
    assert!(lines.contains(&"migrate failed exited code=3 ip=10.89.0.3 db=10.89.0.2"), "{lines:#?}");
    // A stop tfctl asked for fires exited with reason stopped, and never failed.
    assert!(lines.iter().any(|l| l.starts_with("db exited stopped code=143")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.starts_with("db failed")), "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("db started")).count(), 1);
}

#[tokio::test]
async fn restart_limit_fires_failed_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events");
    let mut flaky = container("flaky", "exit 1");
    flaky.restart = Restart { policy: RestartPolicy::OnFailure, max: Some(2) };
    flaky.hooks = vec![hook(Event::Failed, &format!("echo $TFCTL_REASON >> {}", log.display()))];
    let a = app(dir.path(), vec![flaky]);
    let sup = Supervisor::new(a.clone(), ProcessDriver::new(&a), base(&a));
    sup.start_all();
    let mut rx = sup.status();
    let settled = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|m| m["flaky"].state == State::Failed)).await;
    drop(settled.expect("flaky settled").unwrap());
    let outcome = readiness(&sup.app(), &sup.status().borrow());
    assert_eq!(outcome, Readiness::Failed { container: "flaky".into(), reason: "restart limit reached".into() });
    assert_eq!(sup.driver().starts.lock().unwrap().len(), 3, "one start and two restarts");
    assert_eq!(sup.status().borrow()["flaky"].restarts, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "restart-limit\n");
}

#[tokio::test]
async fn a_failing_started_hook_fails_the_container() {
    let dir = tempfile::tempdir().unwrap();
    let mut web = container("web", "sleep 30");
    web.hooks = vec![hook(Event::Started, "echo no >&2; exit 7")];
    let a = app(dir.path(), vec![web]);
    let sup = Supervisor::new(a.clone(), ProcessDriver::new(&a), base(&a));
    let mut events = sup.events();
    sup.start_all();
    let outcome = wait_outcome(&sup).await;
    assert!(matches!(&outcome, Readiness::Failed { container, .. } if container == "web"), "{outcome:?}");
    let mut failed = None;
    while let Ok(r) = events.try_recv() {
        if r.event == Event::Failed {
            failed = Some(r);
        }
    }
    let failed = failed.expect("a failed event");
    assert_eq!(failed.reason, "hook");
    assert!(failed.message.contains("started hook failed") && failed.message.contains("status 7"), "{}", failed.message);
}

#[tokio::test]
async fn ready_when_long_running_containers_run_and_tasks_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = container("setup", "exit 0");
    setup.one_shot = true;
    let mut web = container("web", "sleep 30");
    web.after = vec![After { container: "setup".into(), until: Until::Completed, restart: false }];
    let mut later = container("later", "exit 9");
    later.sleep = true;
    let a = app(dir.path(), vec![setup, web, later]);
    let sup = Supervisor::new(a.clone(), ProcessDriver::new(&a), base(&a));
    sup.start_all();
    assert_eq!(wait_outcome(&sup).await, Readiness::Ready);
    assert_eq!(*sup.driver().starts.lock().unwrap(), ["setup", "web"], "a sleep container started");
    sup.stop_all().await;
}

#[tokio::test]
async fn a_new_model_changes_hooks_health_and_restart_policy_of_a_running_container() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events");
    let svc = container("svc", "sleep 2; exit 1");
    let a = app(dir.path(), vec![svc.clone()]);
    let sup = Supervisor::new(a.clone(), ProcessDriver::new(&a), base(&a));
    sup.start_all();
    let mut rx = sup.status();
    drop(tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|m| m["svc"].state == State::Running)).await.unwrap().unwrap());
    assert_eq!(sup.status().borrow()["svc"].health, None);

    // While it runs: a health check, an exited hook, and a restart policy.
    let mut changed = svc;
    changed.health = Some(Health { probe: Probe::Exec(sh("true")), interval: Duration::from_millis(100), timeout: Duration::from_secs(2), retries: 1, start_period: Duration::ZERO });
    changed.hooks = vec![hook(Event::Exited, &format!("echo $TFCTL_EXIT_CODE >> {}", log.display()))];
    changed.restart = Restart { policy: RestartPolicy::OnFailure, max: Some(1) };
    let b = app(dir.path(), vec![changed]);
    sup.set_model(b.clone(), base(&b));
    let healthy = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|m| m["svc"].health == Some(tfctl_runtime::supervise::Health::Healthy))).await;
    drop(healthy.expect("the new check ran against the running process").unwrap());
    assert_eq!(sup.driver().starts.lock().unwrap().len(), 1, "not restarted by the change");

    // Its exit now fires the new hook and follows the new policy: one restart.
    let settled = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|m| m["svc"].state == State::Failed)).await;
    drop(settled.expect("svc settled").unwrap());
    assert_eq!(sup.driver().starts.lock().unwrap().len(), 2, "restarted once under on-failure max 1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "1\n1\n");
}

#[tokio::test]
async fn start_of_a_container_whose_dependency_is_stopped_says_so_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let db = container("db", "sleep 30");
    let mut web = container("web", "sleep 30");
    web.after = vec![After { container: "db".into(), until: Until::Started, restart: false }];
    let a = app(dir.path(), vec![db, web]);
    let sup = Supervisor::new(a.clone(), ProcessDriver::new(&a), base(&a));
    sup.start_all();
    assert_eq!(wait_outcome(&sup).await, Readiness::Ready);
    sup.stop("web").await.unwrap();
    sup.stop("db").await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), sup.start("web")).await.expect("no wait").unwrap_err();
    assert!(err.contains("comes after db") && err.contains("start db first"), "{err}");
    // In dependency order, both start.
    for level in sup.levels() {
        for name in level {
            sup.start(&name).await.unwrap();
        }
    }
    assert_eq!(sup.status().borrow()["web"].state, State::Running);
    sup.stop_all().await;
}

/// A service that answers a moment after it starts is healthy then, not a whole interval later
/// (here an hour): tfctl probes early until the first success. Those early probes' failures do
/// not count: with retries 1, the ones before it answered did not make it unhealthy.
#[tokio::test]
async fn a_service_turns_healthy_when_it_answers_not_an_interval_later() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("answering");
    let mut web = container("web", &format!("sleep 0.3; touch {}; exec sleep 30", flag.display()));
    web.health = Some(Health {
        probe: Probe::Exec(sh(&format!("test -e {}", flag.display()))),
        interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(2),
        retries: 1,
        start_period: Duration::ZERO,
    });
    let a = app(dir.path(), vec![web]);
    let sup = Supervisor::new(a.clone(), ProcessDriver::new(&a), base(&a));
    sup.start_all();
    assert_eq!(wait_outcome(&sup).await, Readiness::Ready);
    sup.stop_all().await;
}
