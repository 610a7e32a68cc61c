//! `tfctl inspect APP/CONTAINER`: a container's effective configuration as the kernel sees it
//! (tfctl_runtime::app::inspect gathers it); this prints it.

use tfctl_runtime::app::inspect::{self, Inspection};
use tfctl_runtime::app::one_off;

use super::target;
use crate::args::{Format, GlobalOpts, InspectArgs};
use crate::context;
use crate::exit::{CmdResult, Exit, Failure};
use crate::output;

pub fn inspect(args: InspectArgs, global: &GlobalOpts) -> CmdResult {
    let root = super::stats::root(global)?;
    let t = target::resolve(&root, &args.target, args.target_opts.file.as_deref(), true)?;
    let container = t.container.expect("need_container");
    if one_off::exists(&root, &t.app) {
        return Err(Failure::msg(Exit::Failed, format!("{container} was started by `tfctl run` in the foreground, which no supervisor serves: `tfctl run -d` runs one that `inspect` can show")));
    }
    super::stats::require_up(&root, &t.app)?;
    let found = context::runtime()
        .block_on(inspect::request(&root, &t.app, &container))
        .map_err(|e| Failure::msg(Exit::Failed, format!("{}/{container}: {e}", t.app)))?;
    match global.format {
        Format::Json => output::print_json(&found),
        Format::Text => print_text(&found),
    }
    Ok(())
}

fn or_dash(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_text(i: &Inspection) {
    let s = &i.status;
    println!("{}/{}", i.app, i.container);
    println!("  state:        {}{}", or_dash(&s["state"]), s["exit_code"].as_i64().map(|c| format!(" (status {c})")).unwrap_or_default());
    if let Some(r) = s["reason"].as_str() {
        println!("  reason:       {r}");
    }
    println!("  health:       {}", or_dash(&s["health"]));
    println!("  restarts:     {}", i.restarts);
    println!("  image:        {} ({})", or_dash(&i.image["name"]), or_dash(&i.image["manifest_digest"]));
    println!("  address:      {}", i.address.map_or("-".to_string(), |a| a.to_string()));
    // LABELS: shown as the model holds them (`label` in the app file, `run --label`).
    let labels: Vec<String> = i.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("  labels:       {}", if labels.is_empty() { "-".to_string() } else { labels.join(", ") });
    match &i.process {
        None => println!("  process:      not running"),
        Some(p) => {
            println!("  pid:          {} (on the host)", p.pid);
            println!("  command:      {}", p.command.join(" "));
            println!("  user:         uid {} gid {} groups {:?}", p.uid, p.gid, p.groups);
            for (set, caps) in &p.capabilities {
                println!("  caps {set:<11} {} {}", caps.hex, if caps.names.is_empty() { "-".to_string() } else { caps.names.join(",") });
            }
            println!("  seccomp:      {}{}", p.seccomp, p.seccomp_filters.map(|n| format!(" ({n} filters)")).unwrap_or_default());
            println!("  no_new_privs: {}", p.no_new_privs);
            println!("  namespaces:");
            for (name, ns) in &p.namespaces {
                println!("    {name:<8} {}{}", ns.id, if ns.shared_with_host { "  (the host's)" } else { "" });
            }
            println!("  mounts:");
            for m in &p.mounts {
                println!("    {} {} {} {}", m.target, m.fstype, m.source, m.options);
            }
        }
    }
    if let Some(cg) = &i.cgroup {
        let limits: Vec<String> = cg.limits.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  cgroup:       {}", cg.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" "));
        println!("  limits:       {}", limits.join(" "));
        let u = &cg.usage;
        println!("  usage:        memory {} B, {} pids, cpu {:.2} s", u.memory_bytes, u.pids, u.cpu_ns as f64 / 1e9);
    }
    let fw = &i.firewall;
    println!("  firewall:     table {} (loaded: {}), egress {}", or_dash(&fw["table"]), or_dash(&fw["table_loaded"]), or_dash(&fw["egress"]));
    for a in fw["allow"].as_array().into_iter().flatten() {
        println!("    allow {a}");
    }
    for a in fw["allow_egress"].as_array().into_iter().flatten() {
        println!("    allow-egress {a}");
    }
    for p in i.published.as_array().into_iter().flatten() {
        println!("    publish {}:{} -> {}/{}", or_dash(&p["host_ip"]), p["host_port"], p["container_port"], or_dash(&p["proto"]));
    }
    if !i.health_history.is_empty() {
        println!("  health history:");
        for h in &i.health_history {
            println!("    {} {}", h.time, h.health);
        }
    }
}
