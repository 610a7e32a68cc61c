//! Which Compose keys exist, and what becomes of those tfctl has no node for: the one place that
//! decides it, so that a key tfctl learns (profiles, labels, aliases, ...) moves from here to a
//! real node in `convert` and nowhere else.

/// The keys of a service in the Compose Specification's own schema
/// (compose-spec/compose-spec, schema/compose-spec.json, `definitions.service.properties`).
pub const SERVICE_KEYS: &[&str] = &[
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset",
    "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules", "devices", "dns",
    "dns_opt", "dns_search", "domainname", "entrypoint", "env_file", "environment", "expose",
    "extends", "external_links", "extra_hosts", "gpus", "group_add", "healthcheck", "hostname",
    "image", "init", "ipc", "isolation", "label_file", "labels", "links", "logging", "mac_address",
    "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "models", "network_mode",
    "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
    "post_start", "pre_stop", "privileged", "profiles", "provider", "pull_policy",
    "pull_refresh_after", "read_only", "restart", "runtime", "scale", "secrets", "security_opt",
    "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls",
    "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes",
    "volumes_from", "working_dir",
];

/// The top-level keys of a Compose file in the same schema.
pub const TOP_KEYS: &[&str] =
    &["configs", "include", "models", "name", "networks", "secrets", "services", "version", "volumes"];

/// What the converter says about a key it does not turn into a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// tfctl is getting a node for it; until then a warning and a comment keep it in view.
    Pending,
    /// tfctl has no equivalent: the reason, in the user's terms.
    Unsupported(&'static str),
    /// Nothing changes for the app: kept only as a comment (`version`, `stdin_open`).
    Ignored(&'static str),
}

/// Service keys (and a few sub-keys, written `deploy.replicas`) without a tfctl node.
pub const UNMAPPED: &[(&str, Fate)] = &[
    ("dns_search", Fate::Pending),
    ("dns_opt", Fate::Pending),
    ("links", Fate::Pending),
    ("network_mode", Fate::Unsupported("a container is on the app's networks, on none or on the host's; not on another container's")),
    ("logging.driver", Fate::Unsupported("tfctl keeps each container's log itself, read with `tfctl logs`")),
    ("annotations", Fate::Pending),
    ("build", Fate::Unsupported("tfctl does not build images: build it, then push it to a registry or save it as an OCI archive and name that")),
    ("container_name", Fate::Unsupported("container names come from the service names")),
    ("networks.ipv4_address", Fate::Unsupported("tfctl chooses each container's address")),
    ("networks.ipv6_address", Fate::Unsupported("tfctl is IPv4-only")),
    ("network.driver", Fate::Unsupported("an app has one routed network; reachability is written as allow rules")),
    ("network.driver_opts", Fate::Unsupported("an app has one routed network")),
    ("network.ipam", Fate::Unsupported("an app has one subnet, set with `network subnet=`")),
    ("network.enable_ipv6", Fate::Unsupported("tfctl is IPv4-only")),
    ("network.external", Fate::Unsupported("containers outside the app are not on its network")),
    ("volume.external", Fate::Unsupported("the app's volumes are its own; bind the data's folder instead")),
    ("volume.driver", Fate::Unsupported("volumes are folders of tfctl's state root")),
    ("volume.driver_opts", Fate::Unsupported("volumes are folders of tfctl's state root")),
    ("secret.external", Fate::Unsupported("define the secret with a file, an environment variable or generate=")),
    ("config.external", Fate::Unsupported("write the config's content into the file")),
    ("deploy.placement", Fate::Unsupported("tfctl runs on one host")),
    ("deploy.mode", Fate::Unsupported("tfctl runs on one host")),
    ("deploy.update_config", Fate::Unsupported("rolling updates are Swarm's")),
    ("deploy.rollback_config", Fate::Unsupported("rolling updates are Swarm's")),
    ("deploy.endpoint_mode", Fate::Unsupported("tfctl has no service load balancer")),
    ("deploy.resources.reservations", Fate::Unsupported("tfctl sets limits, not reservations")),
    ("mem_reservation", Fate::Unsupported("tfctl sets limits, not reservations")),
    ("memswap_limit", Fate::Unsupported("tfctl has no swap limit")),
    ("mem_swappiness", Fate::Unsupported("tfctl has no swappiness setting")),
    ("cpu_shares", Fate::Unsupported("tfctl limits CPUs with `limits cpus=`")),
    ("cpu_quota", Fate::Unsupported("tfctl limits CPUs with `limits cpus=`")),
    ("cpu_period", Fate::Unsupported("tfctl limits CPUs with `limits cpus=`")),
    ("cpuset", Fate::Unsupported("tfctl does not pin CPUs")),
    ("security_opt", Fate::Unsupported("only seccomp profiles have a tfctl equivalent")),
    ("userns_mode", Fate::Unsupported("tfctl's user namespaces are `userns \"auto\"` or `\"host\"`")),
    ("pid", Fate::Unsupported("a container has its own PID namespace or the host's (`pid \"host\"`), not another container's")),
    ("ipc", Fate::Unsupported("each container has its own IPC namespace")),
    ("cgroup_parent", Fate::Unsupported("tfctl places the cgroups itself")),
    ("volumes_from", Fate::Unsupported("name the volumes in each container instead")),
    ("external_links", Fate::Unsupported("containers outside the app are not on its network")),
    ("healthcheck.start_interval", Fate::Unsupported("tfctl probes at one interval")),
    ("develop", Fate::Ignored("watch mode is a development tool")),
    ("pull_policy", Fate::Ignored("tfctl up --pull chooses it")),
    ("platform", Fate::Ignored("tfctl pulls the host's platform")),
    ("stdin_open", Fate::Ignored("containers of an app have no stdin")),
    ("version", Fate::Ignored("obsolete in Compose too")),
];

/// What becomes of an unmapped key; `None` for keys the converter maps itself.
pub fn fate(key: &str) -> Option<Fate> {
    UNMAPPED.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

/// The comment and warning text for a key and its value.
pub fn describe(fate: Fate, value: &str) -> String {
    match fate {
        Fate::Pending => format!("{value} (not yet supported)"),
        Fate::Unsupported(why) => format!("{value} (no tfctl equivalent: {why})"),
        Fate::Ignored(why) => format!("{value} (ignored: {why})"),
    }
}
