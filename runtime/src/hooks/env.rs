//! The environment a hook sees: only what tfctl hands it, never tfctl's own environment (which
//! may hold secrets from `from-env=`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The standard system path: hooks must not depend on the PATH of whoever ran `tfctl up`.
pub const SYSTEM_PATH: &str = crate::spec::DEFAULT_PATH;

/// Facts about the event a hook runs for.
#[derive(Debug, Clone, Default)]
pub struct HookContext {
    pub app: String,
    /// Empty for app-level hooks.
    pub container: String,
    pub event: String,
    /// Why: `stopped`, `exited`, `restart-limit`, `hook`, `unhealthy`, `start`...
    pub reason: String,
    /// On exit events: shell-style (128+N for signal N).
    pub exit_code: Option<i32>,
    /// On exit events: `SIGKILL`, or empty.
    pub signal: Option<String>,
    /// The hook's own container's address, when it has one.
    pub ip: Option<Ipv4Addr>,
    /// Every container's address, by container name.
    pub ips: Vec<(String, Ipv4Addr)>,
    /// Published host ports: (container, container port, host port).
    pub ports: Vec<(String, u16, u16)>,
    pub root: PathBuf,
    pub app_file: PathBuf,
    /// The host config file the app runs under (tfctl-config(5)), so a hook's tfctl reads the
    /// same one.
    pub config_file: Option<PathBuf>,
    /// `up --trust-file`: the files host hooks run are not checked for their owners (they are
    /// still run by descriptor). Not part of the hook's environment.
    pub trusted_files: bool,
}

/// `web-front` → `web_front`: a container name as it appears in a variable name (case kept).
pub fn var_suffix(name: &str) -> String {
    name.replace('-', "_")
}

/// The running tfctl's path, read once: what hooks get as `$TFCTL` and what a generated systemd
/// unit runs. A binary replaced under a running supervisor (a package upgrade) shows as
/// `PATH (deleted)`: the path itself names the new tfctl.
pub fn tfctl_path() -> Option<&'static str> {
    static PATH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().ok()?.display().to_string();
        Some(exe.strip_suffix(" (deleted)").map(str::to_string).unwrap_or(exe))
    })
    .as_deref()
}

impl HookContext {
    /// The whole environment of a host hook, in a stable order.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_string(), SYSTEM_PATH.to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("TFCTL_APP".to_string(), self.app.clone()),
            ("TFCTL_CONTAINER".to_string(), self.container.clone()),
            ("TFCTL_EVENT".to_string(), self.event.clone()),
            ("TFCTL_REASON".to_string(), self.reason.clone()),
            ("TFCTL_ROOT".to_string(), self.root.display().to_string()),
            ("TFCTL_APP_FILE".to_string(), self.app_file.display().to_string()),
        ];
        if let Some(config) = &self.config_file {
            env.push(("TFCTL_CONFIG".to_string(), config.display().to_string()));
        }
        // The tfctl running the app, for hooks that use it on their own app (`"$TFCTL" run
        // --app ...`), as make passes itself in $(MAKE).
        if let Some(exe) = tfctl_path() {
            env.push(("TFCTL".to_string(), exe.to_string()));
        }
        if let Some(code) = self.exit_code {
            env.push(("TFCTL_EXIT_CODE".to_string(), code.to_string()));
            env.push(("TFCTL_SIGNAL".to_string(), self.signal.clone().unwrap_or_default()));
        }
        if let Some(ip) = self.ip {
            env.push(("TFCTL_IP".to_string(), ip.to_string()));
        }
        for (name, ip) in &self.ips {
            env.push((format!("TFCTL_IP_{}", var_suffix(name)), ip.to_string()));
        }
        for (name, port, host_port) in &self.ports {
            env.push((format!("TFCTL_PORT_{}_{port}", var_suffix(name)), host_port.to_string()));
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_case_and_dashes_become_underscores() {
        let ctx = HookContext {
            app: "shop".into(),
            container: "web-front".into(),
            event: "exited".into(),
            reason: "exited".into(),
            exit_code: Some(137),
            signal: Some("SIGKILL".into()),
            ip: Some(Ipv4Addr::new(10, 89, 0, 3)),
            ips: vec![("db".into(), Ipv4Addr::new(10, 89, 0, 2)), ("web-front".into(), Ipv4Addr::new(10, 89, 0, 3))],
            ports: vec![("web-front".into(), 80, 8080)],
            ..Default::default()
        };
        let env = ctx.env();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("TFCTL_IP_db"), Some("10.89.0.2"));
        assert_eq!(get("TFCTL_IP_web_front"), Some("10.89.0.3"));
        assert_eq!(get("TFCTL_PORT_web_front_80"), Some("8080"));
        assert_eq!(get("TFCTL_EXIT_CODE"), Some("137"));
        assert_eq!(get("TFCTL_SIGNAL"), Some("SIGKILL"));
        assert_eq!(get("PATH"), Some(SYSTEM_PATH));
        assert_eq!(env.iter().filter(|(k, _)| k == "PATH").count(), 1);
    }
}
