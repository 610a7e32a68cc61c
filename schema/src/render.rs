//! Renders the resolved model as an app file, for `tfctl config`: defaults filled in, variables
//! expanded, paths absolute, secrets only by their source. Loading the output again (from the
//! same folder) gives the same model.

use std::fmt::Write;

use crate::model::*;

/// The resolved app as KDL.
pub fn to_kdl(app: &App) -> String {
    let mut w = String::new();
    let _ = writeln!(
        w,
        "// The resolved form of {}: defaults filled in, variables expanded",
        app.file.display()
    );
    let _ = writeln!(
        w,
        "// (`$$` is a literal `$`), paths absolute, secrets shown by their source only."
    );
    let _ = writeln!(w, "app {}", q(&app.name));
    if let Some(net) = app.subnet {
        let _ = writeln!(w, "network subnet={}", q(&net.to_string()));
    }
    let _ = writeln!(w, "egress {}", q(egress(app.egress)));
    for s in &app.secrets {
        let source = match &s.source {
            SecretSource::FromFile(p) => format!("from-file={}", q(&p.to_string_lossy())),
            SecretSource::FromEnv(v) => format!("from-env={}", q(v)),
            SecretSource::Generate(n) => format!("generate={n}"),
        };
        let _ = writeln!(w, "secret {} {source}", q(&s.name));
    }
    for v in &app.volumes {
        let _ = writeln!(w, "volume {}", q(&v.name));
    }
    for (k, v) in &app.labels {
        let _ = writeln!(w, "label {} {}", q(k), q(v));
    }
    for h in &app.hooks {
        hook(&mut w, h, "");
    }
    for c in &app.containers {
        container(&mut w, c);
    }
    w
}

fn container(w: &mut String, c: &Container) {
    let i = "    ";
    if c.replicas == 1 {
        let _ = writeln!(w, "container {} {{", q(&c.name));
    } else {
        let _ = writeln!(w, "container {} replicas={} {{", q(&c.name), c.replicas);
    }
    let _ = writeln!(w, "{i}image {}", q(&c.image));
    if !c.profiles.is_empty() {
        let _ = writeln!(w, "{i}profile{}", args(&c.profiles));
    }
    for (k, v) in &c.labels {
        let _ = writeln!(w, "{i}label {} {}", q(k), q(v));
    }
    if let Some(cmd) = &c.entrypoint {
        let _ = writeln!(w, "{i}entrypoint{}", args(cmd));
    }
    if let Some(cmd) = &c.command {
        let _ = writeln!(w, "{i}command{}", args(cmd));
    }
    if let Some(d) = &c.workdir {
        let _ = writeln!(w, "{i}workdir {}", q(d));
    }
    if let Some(u) = &c.user {
        let _ = writeln!(w, "{i}user {}", q(u));
    }
    let _ = writeln!(w, "{i}hostname {}", q(&c.hostname));
    for (k, v) in &c.env {
        let _ = writeln!(w, "{i}env {}={}", q(k), q(v));
    }
    for f in &c.files {
        let content = match &f.content {
            FileContent::Inline(s) => q(s),
            FileContent::From(p) => format!("from={}", q(&p.to_string_lossy())),
        };
        let _ = write!(w, "{i}file {} {content} mode=0o{:o}", q(&f.path), f.mode);
        if let Some(o) = f.owner {
            let _ = write!(w, " owner=\"{}:{}\"", o.uid, o.gid);
        }
        let _ = writeln!(w, " template=#{}", f.template);
    }
    for s in &c.secrets {
        match &s.target {
            SecretTarget::File { path, mode, owner } => {
                let _ = write!(w, "{i}secret {} at={} mode=0o{mode:o}", q(&s.name), q(path));
                if let Some(o) = owner {
                    let _ = write!(w, " owner=\"{}:{}\"", o.uid, o.gid);
                }
                w.push('\n');
            }
            SecretTarget::Env(var) => {
                let _ = writeln!(w, "{i}secret {} env={}", q(&s.name), q(var));
            }
        }
    }
    for m in &c.mounts {
        let source = match &m.source {
            MountSource::Volume(v) => v.clone(),
            MountSource::Bind(p) => p.to_string_lossy().into_owned(),
        };
        let _ = writeln!(
            w,
            "{i}mount {} at={} read-only=#{}{}",
            q(&source),
            q(&m.target),
            m.read_only,
            if m.create { " create=#true" } else { "" }
        );
    }
    for t in &c.tmpfs {
        match t.size {
            Some(s) => writeln!(w, "{i}tmpfs {} size=\"{s}\"", q(&t.path)),
            None => writeln!(w, "{i}tmpfs {}", q(&t.path)),
        }
        .ok();
    }
    let _ = writeln!(w, "{i}shm-size \"{}\"", c.shm_size);
    if let Some(u) = c.userns {
        let _ = writeln!(w, "{i}userns \"{}\"", u.as_str());
    }
    for p in &c.publish {
        let _ = writeln!(
            w,
            "{i}publish {} to={} host-ip=\"{}\" proto=\"{}\"",
            p.host_port, p.container_port, p.host_ip, p.proto
        );
    }
    match c.network {
        NetworkMode::App => {}
        NetworkMode::None => {
            let _ = writeln!(w, "{i}network \"none\"");
        }
        NetworkMode::Host => {
            let _ = writeln!(w, "{i}network \"host\"");
        }
    }
    for n in &c.networks {
        let _ = writeln!(w, "{i}network {}", q(n));
    }
    for a in &c.aliases {
        let _ = writeln!(w, "{i}alias {}", q(a));
    }
    for h in &c.extra_hosts {
        let _ = writeln!(w, "{i}extra-host {} \"{}\"", q(&h.name), h.addr);
    }
    if !c.dns.is_empty() {
        let dns: Vec<String> = c.dns.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(w, "{i}dns{}", args(&dns));
    }
    if c.host_pid {
        let _ = writeln!(w, "{i}pid \"host\"");
    }
    for d in &c.devices {
        let _ = writeln!(w, "{i}device {}", q(d));
    }
    for a in &c.allow {
        let from = match &a.from {
            Peer::Container(n) => n.clone(),
            Peer::Host => "host".to_string(),
            Peer::Any => "any".to_string(),
            Peer::Cidr(n) => n.to_string(),
        };
        let _ = writeln!(
            w,
            "{i}allow from={}{}",
            q(&from),
            ports_proto(a.ports, a.proto)
        );
    }
    if let Some(e) = c.egress {
        let _ = writeln!(w, "{i}egress {}", q(egress(e)));
    }
    for a in &c.allow_egress {
        let to = match &a.to {
            EgressDest::Host => "host".to_string(),
            EgressDest::Cidr(n) => n.to_string(),
        };
        let _ = writeln!(
            w,
            "{i}allow-egress to={}{}",
            q(&to),
            ports_proto(a.ports, a.proto)
        );
    }
    for a in &c.after {
        let until = match a.until {
            Until::Started => "started",
            Until::Healthy => "healthy",
            Until::Completed => "completed",
        };
        let restart = if a.restart { " restart=#true" } else { "" };
        let _ = writeln!(w, "{i}after {} until=\"{until}\"{restart}", q(&a.container));
    }
    if let Some(h) = &c.health {
        let _ = writeln!(w, "{i}health {{");
        let _ = match &h.probe {
            Probe::Exec(cmd) => writeln!(w, "{i}{i}exec{}", args(cmd)),
            Probe::Http(url) => writeln!(w, "{i}{i}http {}", q(url)),
            Probe::Tcp(port) => writeln!(w, "{i}{i}tcp {port}"),
        };
        let _ = writeln!(w, "{i}{i}interval \"{}\"", format_duration(h.interval));
        let _ = writeln!(w, "{i}{i}timeout \"{}\"", format_duration(h.timeout));
        let _ = writeln!(w, "{i}{i}retries {}", h.retries);
        let _ = writeln!(
            w,
            "{i}{i}start-period \"{}\"",
            format_duration(h.start_period)
        );
        let _ = writeln!(w, "{i}}}");
    }
    let policy = match c.restart.policy {
        RestartPolicy::No => "no",
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::UnlessStopped => "unless-stopped",
    };
    match c.restart.max {
        Some(m) => writeln!(w, "{i}restart \"{policy}\" max={m}"),
        None => writeln!(w, "{i}restart \"{policy}\""),
    }
    .ok();
    for h in &c.hooks {
        hook(w, h, i);
    }
    let l = &c.limits;
    if l.memory.is_some() || l.cpus.is_some() || l.pids.is_some() {
        let _ = write!(w, "{i}limits");
        if let Some(m) = l.memory {
            let _ = write!(w, " memory=\"{m}\"");
        }
        if let Some(cpus) = l.cpus {
            let _ = write!(w, " cpus={cpus:?}");
        }
        if let Some(p) = l.pids {
            let _ = write!(w, " pids={p}");
        }
        w.push('\n');
    }
    if c.log.size.is_some() || c.log.files.is_some() {
        let _ = write!(w, "{i}log");
        if let Some(s) = c.log.size {
            let _ = write!(w, " size=\"{s}\"");
        }
        if let Some(f) = c.log.files {
            let _ = write!(w, " files={f}");
        }
        w.push('\n');
    }
    for u in &c.ulimits {
        let _ = writeln!(
            w,
            "{i}ulimit {} soft={} hard={}",
            q(&u.name),
            u.soft,
            u.hard
        );
    }
    if !c.cap_add.is_empty() {
        let _ = writeln!(w, "{i}cap-add{}", args(&c.cap_add));
    }
    if !c.cap_drop.is_empty() {
        let _ = writeln!(w, "{i}cap-drop{}", args(&c.cap_drop));
    }
    let seccomp = match &c.seccomp {
        Seccomp::Default => "default".to_string(),
        Seccomp::Unconfined => "unconfined".to_string(),
        Seccomp::Profile(p) => p.to_string_lossy().into_owned(),
    };
    let _ = writeln!(w, "{i}seccomp {}", q(&seccomp));
    for (k, v) in &c.sysctls {
        let _ = writeln!(w, "{i}sysctl {} {}", q(k), q(v));
    }
    if let Some(sig) = &c.stop_signal {
        let _ = writeln!(w, "{i}stop-signal {}", q(sig));
    }
    let _ = writeln!(w, "{i}stop-timeout \"{}\"", format_duration(c.stop_timeout));
    if !c.group_add.is_empty() {
        let _ = writeln!(w, "{i}group-add{}", args(&c.group_add));
    }
    for (k, v) in &c.labels {
        let _ = writeln!(w, "{i}label {} {}", q(k), q(v));
    }
    for (on, name) in [
        (c.read_only, "read-only"),
        (c.init, "init"),
        (c.sleep, "sleep"),
        (c.one_shot, "one-shot"),
        (c.privileged, "privileged"),
        (c.tty, "tty"),
    ] {
        if on {
            let _ = writeln!(w, "{i}{name}");
        }
    }
    let _ = writeln!(w, "}}");
}

fn hook(w: &mut String, h: &Hook, indent: &str) {
    let on_fail = match h.on_fail {
        OnFail::Fail => "fail",
        OnFail::Ignore => "ignore",
    };
    let _ = writeln!(
        w,
        "{indent}on \"{}\" on-fail=\"{on_fail}\" timeout=\"{}\" {{",
        h.event.as_str(),
        format_duration(h.timeout)
    );
    for s in &h.steps {
        let _ = match s {
            HookStep::Exec(cmd) => writeln!(w, "{indent}    exec{}", args(cmd)),
            HookStep::Run(cmd) => writeln!(w, "{indent}    run{}", args(cmd)),
        };
    }
    let _ = writeln!(w, "{indent}}}");
}

fn egress(e: Egress) -> &'static str {
    match e {
        Egress::Allow => "allow",
        Egress::Deny => "deny",
    }
}

fn ports_proto(ports: Option<PortRange>, proto: Option<Proto>) -> String {
    let mut s = String::new();
    if let Some(p) = ports {
        s.push_str(&format!(" port=\"{p}\""));
    }
    if let Some(p) = proto {
        s.push_str(&format!(" proto=\"{p}\""));
    }
    s
}

fn args(list: &[String]) -> String {
    list.iter().map(|a| format!(" {}", q(a))).collect()
}

/// A KDL string literal whose loading gives back `s`: escapes for KDL, `$$` for tfctl's
/// variables.
pub fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' => out.push_str("$$"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters KDL does not allow literally in a single-line string.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c as u32, 0x200E..=0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0xFEFF | 0x2028 | 0x2029 | 0x85)
}
