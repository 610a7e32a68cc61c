//! `tfctl info`: what this host gives tfctl (runtime::info), as text or JSON.

use crate::args::{Format, GlobalOpts};
use crate::exit::CmdResult;

pub fn info(global: &GlobalOpts) -> CmdResult {
    let info = tfctl_runtime::info::gather(&global.root);
    if global.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
        return Ok(());
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("tfctl:        {}", info.tfctl_version);
    println!("kernel:       {} ({})", info.kernel.release, info.kernel.arch);
    println!("root:         {}", yes(info.root));
    println!("cgroups:      v{} ({})", info.cgroup.version, info.cgroup.mode);
    println!("controllers:  {}", info.cgroup.controllers.join(" "));
    println!("systemd:      PID 1 {}, D-Bus {}", yes(info.systemd.pid1), yes(info.systemd.dbus));
    let mode = info.state_root.mode.as_deref().map_or_else(|| "not created yet".to_string(), |m| format!("mode {m}"));
    println!("state root:   {} ({mode})", info.state_root.path.display());
    println!("features:");
    let width = info.features.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in &info.features {
        println!("  {:<width$}  {:<3}  {}", f.name, yes(f.available), f.route);
    }
    if info.missing.is_empty() {
        println!("containers:   this host can run them");
    } else {
        println!("containers:   this host cannot run them:");
        for m in &info.missing {
            println!("  - {m}");
        }
    }
    Ok(())
}
