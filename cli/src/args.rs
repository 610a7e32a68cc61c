//! The command line, as clap definitions. The man pages and shell completions are generated from
//! these, so every doc comment here is user-facing text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run containerised applications on one Linux host from a declarative KDL app file.
///
/// tfctl reads an app file, pulls its images, builds each container's root filesystem, writes
/// its pre-boot files and secrets, isolates it (namespaces, pivot_root, seccomp, capabilities,
/// cgroups), wires its network and nftables firewall, starts it and runs its hooks. There is no
/// daemon: each running app has one supervisor process, started by `tfctl up`.
///
/// Exit status: 0 success; 1 an operation failed; 2 invalid usage or app file; 3 a container
/// failed, became unhealthy, or a one-shot exited non-zero during --wait; 4 a wait timed out;
/// 5 `plan --detailed-exitcode` found changes; 130 interrupted. `run` (attached) and `exec` exit
/// with the container process's status (128+N for signal N); their own failures after the
/// arguments are accepted exit 125, a command that cannot be executed 126, one not found 127.
///
/// Whoever can edit an app file is root on the host: hooks run as root. tfctl is IPv4-only for
/// now.
#[derive(Debug, Parser)]
#[command(name = "tfctl", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses a command line already guessed to be `run`, without building every other
    /// subcommand's arguments first (clap builds the whole tree before parsing: a cost each
    /// container start would pay). Only a successful parse is taken: help, versions and errors
    /// come from the full tree, so they read the same as ever.
    pub fn try_parse_run() -> Option<Cli> {
        let RunOnly { global, command: RunOnlyCommand::Run(run) } = RunOnly::try_parse().ok()?;
        Some(Cli { global, command: Command::Run(run) })
    }
}

// `Cli` with `run` as its only subcommand (the same argument definitions).
#[derive(Parser)]
#[command(name = "tfctl", version, propagate_version = true, max_term_width = 100)]
struct RunOnly {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: RunOnlyCommand,
}

#[derive(Subcommand)]
enum RunOnlyCommand {
    Run(RunArgs),
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Directory holding all of tfctl's state: images, containers, volumes, records.
    #[arg(long, global = true, env = "TFCTL_ROOT", default_value = "/var/lib/tfctl", value_name = "DIR")]
    pub root: PathBuf,

    /// Host settings file (tfctl-config(5)); optional.
    #[arg(long, global = true, env = "TFCTL_CONFIG", default_value = "/etc/tfctl/config.kdl", value_name = "FILE")]
    pub config: PathBuf,

    /// Say more about what tfctl does.
    #[arg(long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print only errors (and the data a command was asked for).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Output format of commands that print data; JSON carries "schema": 1, streams are JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

// One value per process, parsed once: `run`'s many flags make it large, which costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an app file; exit 0 when it is valid, 2 with diagnostics when not.
    ///
    /// A container with host modes (`privileged`, `network "host"`, `pid "host"`, `device`) is
    /// valid, but each such container gets a warning line on stderr naming its modes, also with
    /// `--quiet`; the exit status does not change.
    /// JSON (--format json): one document on stdout instead of the report on stderr, for CI to
    /// annotate: {"schema": 1, "file", "valid", "app", "containers" (how many), "diagnostics":
    /// [{"file", "line", "column" (1-based, in characters), "code" (e.g. tfctl::unknown-node),
    /// "message", "label", "help"}]}; the exit status is the same.
    Check(FileArg),
    /// Print the resolved app model: defaults filled in, variables expanded, paths absolute.
    ///
    /// JSON (--format json): {"schema": 1, "app": the model, as tfctl.kdl(5) names its fields}.
    Config(FileArg),
    /// Convert Docker Compose files into an app file.
    ///
    /// The files are merged in order as `docker compose -f A -f B` merges them, with Compose's
    /// interpolation (`${X:-y}`, `${X:?msg}`, the project's `.env`), `extends`, `include`,
    /// anchors and `x-` extensions. Each service becomes a container on `network`s named after
    /// its Compose networks, so that containers sharing one reach each other on every port (a
    /// service that `expose`s ports is reached on those only, by `allow` rules), and nothing
    /// else reaches them. Whatever has no
    /// tfctl equivalent (`build`, a network driver, `deploy.placement`, ...) is printed as a
    /// warning naming the service and key, and kept as a comment in the app file.
    ///
    /// The mapping, Compose key → app file (tfctl.kdl(5)):
    ///
    /// `name`, `-p` → `app` (a DNS label: `_` and `.` become `-`). Each service → `container`
    /// of the same name, made a DNS label the same way (a warning says when a name changes).
    ///
    /// `image` → `image`, the reference copied as written. `build` → a warning; a service with
    /// only `build` runs `<project>-<service>`, the image Compose would build.
    ///
    /// `command`, `entrypoint` → `command`, `entrypoint` (a string is split into words as
    /// Compose splits it). `working_dir` → `workdir`; `user`, `hostname` → `user`, `hostname`.
    ///
    /// `environment` → `env` (a variable without a value is taken from the environment of
    /// `convert`); `env_file` → `env-file` (a missing optional file is left out).
    ///
    /// `ports` → `publish` per port (ranges expanded; no host port: `publish 0`; `::1` becomes
    /// 127.0.0.1, since tfctl is IPv4-only; with replicas, a fixed host port becomes 0). `expose`
    /// → the ports of the `allow` rules.
    ///
    /// `volumes` → `mount`: a named volume (declared with `volume`), a bind (`create=#true`
    /// unless `bind.create_host_path: false`, as Docker creates a missing folder), an anonymous
    /// volume as the volume `<service>-data`, `type: tmpfs` and `tmpfs` → `tmpfs` with `size=`.
    ///
    /// `secrets` → the app's `secret` (`file` → `from-file=`, `environment` → `from-env=`) and
    /// the container's `secret` with `at=`, `mode=` and `owner=`. `configs` → `file` with
    /// `from=` or the content, mode 0444 unless given.
    ///
    /// `healthcheck` → `health { exec ... }` (CMD-SHELL and strings run with /bin/sh -c), with
    /// Compose's timing defaults (30s interval and timeout). `depends_on` → `after`, with
    /// `until="healthy"` for service_healthy and `"completed"` for
    /// service_completed_successfully.
    ///
    /// `restart`, `deploy.restart_policy` → `restart` (on-failure:N as max=N).
    /// `depends_on.restart: true` → `after restart=#true`. `mem_limit`, `cpus`, `pids_limit`, `deploy.resources.limits` → `limits`.
    /// `ulimits` → `ulimit`; `cap_add`, `cap_drop` → `cap-add`, `cap-drop`; `read_only`,
    /// `init` → `read-only`, `init`; `stop_signal`, `stop_grace_period` → `stop-signal`,
    /// `stop-timeout`; `sysctls` → `sysctl`; `shm_size` → `shm-size`; `security_opt`
    /// seccomp → `seccomp`.
    ///
    /// `networks` → `network NAME` per Compose network (`default` for a service without
    /// `networks`). A service that `expose`s ports joins none of them: each service sharing a
    /// Compose network with it gets `allow` rules to its `expose`d and published ports, and it
    /// gets `allow from=` on theirs. An `internal` network alone gives `egress "deny"`.
    /// Network `aliases` → `alias` (an alias that is another container's name, or another
    /// service's alias, is left out with a warning: tfctl's aliases hold on every network).
    /// `network_mode: none`, `host` → `network "none"`, `"host"`.
    ///
    /// `profiles` → `profile`; `labels`, `deploy.labels` → `label`; `extra_hosts` →
    /// `extra-host` (not `host-gateway`); `dns` → `dns`; `privileged` → `privileged`;
    /// `pid: host` → `pid "host"`; `devices` → `device` (at the same path only); `tty` → `tty`;
    /// `group_add` → `group-add`; `scale`, `deploy.replicas` → `container replicas=`;
    /// `logging` (json-file, local) `max-size`, `max-file` → `log size= files=` (Docker's
    /// file count less the current one).
    ///
    /// Not yet in the app file, kept as warnings and comments: `dns_search`, `dns_opt`,
    /// `links` and `annotations`. Without an equivalent: `container_name`, network drivers and
    /// IPAM, external volumes and networks, `deploy.placement`, reservations, `network_mode`
    /// and `pid` of another container, `ipc`, log drivers other than json-file and local, and
    /// the rest of the Compose Specification's keys; `version`, `stdin_open`, `platform`,
    /// `pull_policy` and `develop` are only comments.
    Convert(ConvertArgs),
    /// Start an app, or bring a running one in line with its file.
    ///
    /// Of a running app, a container that failed is started again even when the file did not
    /// change it (`plan` says so).
    ///
    /// In the foreground, each container's output is shown after its name; on a terminal,
    /// control characters in it are escaped, as `tfctl logs` shows them.
    /// On a cgroup v2 host the containers' cgroups go, in this order: below the unit's own
    /// cgroup when `up` runs as the unit `tfctl systemd` writes (`Delegate=yes`); in a transient
    /// scope, `tfctl.slice/tfctl-<id>.scope`, that tfctl asks systemd for over D-Bus when systemd
    /// is PID 1; else in `/tfctl` under the cgroup root, or `tfctl` below tfctl's own cgroup when
    /// the root cannot be written. The place is kept in the app's state folder, so `exec`,
    /// `down` and `rm` from any shell find it. tfctl moves only itself (into a `supervisor` leaf
    /// of a unit or scope), never the processes beside it. A limit whose controller the place
    /// cannot have is refused before any container starts, naming the controller and the
    /// setting. cgroup v1 and hybrid hosts: below tfctl's cgroup in each hierarchy.
    ///
    /// JSON (--format json, with -d or --wait): the supervisor's reports as JSON lines on
    /// stdout, each with "schema": 1, "time" (RFC 3339, when `up` read it) and "kind": "plan"
    /// (a reconcile's changes), "applied" ({"starting"}), "report" ({"report": {"container",
    /// "event", "reason", "exit_code", "message"}}), "ready", or "failed" ({"container",
    /// "reason"}).
    Up(UpArgs),
    /// Stop an app and remove its containers, network and firewall rules.
    ///
    /// `ps` no longer lists its containers, and its subnet is free for another app; its named
    /// volumes, generated secrets and last logs stay (the next `up` starts new logs).
    Down(DownArgs),
    /// Show what `up` would change, per container, with the reason.
    ///
    /// JSON (--format json): {"schema": 1, "app", "changed", "changes": [{"container", "action"
    /// ("keep"|"update"|"recreate"|"create"|"remove"), "reasons"}], "app_level", "note"}.
    Plan(PlanArgs),
    /// List apps and their containers.
    ///
    /// A container with host modes (`privileged`, `network=host`, `pid=host`, `device=PATH`)
    /// has them after its name, `web [host: privileged]`, and in `host_modes` of
    /// `--format json` (an empty list for a confined container).
    /// JSON (--format json): {"schema": 1, "apps": [{"name", "supervisor": {"pid"} or null,
    /// "one_off" (a foreground `run`), "containers": [{"name", "address", "state", "health",
    /// "restarts", "reason", "uptime_seconds", "host_modes", "ports": [{"container", "host_ip", "host_port",
    /// "container_port", "proto"}], "added_at_run_time"; a foreground `run`'s also "exit_code",
    /// "image", "labels"}]}]}.
    Ps(PsArgs),
    /// Show a container's output.
    ///
    /// Written to a terminal, control characters other than tab, and bytes that are not UTF-8,
    /// show as \xNN, as journalctl shows them: a container cannot retitle the terminal, clear
    /// it, colour it or write over earlier lines. Written to a file or a pipe, the output is the
    /// container's bytes as they came, as `docker logs` gives them. A line longer than 16 KiB
    /// is logged in pieces, shown joined again (--tail counts pieces).
    ///
    /// JSON (--format json): one line per record, {"schema": 1, "time" (RFC 3339), "container",
    /// "stream" ("stdout"|"stderr"), "text" (bytes that are not UTF-8 become U+FFFD), "partial"
    /// (the line goes on in the next record)}.
    Logs(LogsArgs),
    /// Run a command inside a running container, with its full confinement.
    ///
    /// Without -t the process's stdout and stderr, and with -i its stdin, are pipes tfctl relays
    /// to and from its own (without -i it reads /dev/null); with -t they are a pty of the
    /// container's, proxied to tfctl's terminal. The process never gets tfctl's own descriptors:
    /// once it exits, tfctl passes on what it wrote and closes the pipes, so whatever it left
    /// running reads end-of-file and gets EPIPE, not the terminal nor a file tfctl's output was
    /// redirected to. tfctl exits with the process's status (126: it cannot be executed, 127:
    /// not found, 125: tfctl failed).
    Exec(ExecArgs),
    /// Copy files or directories between the host and a container.
    Cp(CpArgs),
    /// Start stopped or `sleep` containers, in dependency order.
    Start(TargetsArgs),
    /// Stop containers, keeping their address and filesystem.
    Stop(TargetsArgs),
    /// Restart a container, keeping its address.
    Restart(RestartArgs),
    /// Send a signal to a container's process.
    Kill(KillArgs),
    /// Remove stopped containers.
    Rm(RmArgs),
    /// Show a container's published ports.
    ///
    /// JSON (--format json): {"schema": 1, "ports": [{"container", "host_ip", "host_port",
    /// "container_port", "proto"}]}.
    Port(PortArgs),
    /// Run a one-off container from an image, as `docker run` does.
    ///
    /// Attached (without -d or -p), the container is an app of one named after it (--name, else
    /// run-<6 hex>) with no supervisor: `ps` lists it, `exec`, `stop`, `kill`, `down` and `rm
    /// --force` reach it by name, and the signals tfctl receives (HUP, INT, QUIT, TERM, USR1,
    /// USR2) are passed to it. A PID 1 without handlers ignores SIGINT: the third ^C kills it.
    /// tfctl exits with the container's status once it has cleaned up; without --rm the
    /// container's folder stays, listed as exited, until `tfctl rm`. With --rm, what the
    /// container writes to its root filesystem stays in memory, at most half of the host's RAM
    /// (a write past it fails with "No space left on device"); /dev/shm holds 64M unless
    /// --shm-size says otherwise. Without -t its stdout and
    /// stderr, and with -i its stdin, are pipes tfctl relays (without -i it reads /dev/null),
    /// never tfctl's own descriptors; output is passed through as it comes, control characters
    /// included, as `docker run` passes it.
    ///
    /// The flags Docker users type daily mean what they mean in Docker: --tmpfs, --mount,
    /// --cpus (1.5: a CFS quota of 150000 per 100000 µs), --pids-limit, --ulimit, --sysctl,
    /// --add-host, --dns, --label, --stop-signal, --stop-timeout (what `tfctl stop` does),
    /// --group-add, --privileged. Unlike Docker's, an attached container without -p has no
    /// network but loopback (as --network none); with -p or -d it gets an app network of its own.
    /// Attached, /etc/hosts and /etc/resolv.conf are the image's unless --add-host or --dns ask
    /// for lines.
    /// --entrypoint "" clears the image's Entrypoint and Cmd: the command given runs as it is.
    /// A value that does not parse exits 2, naming the flag and showing how to write it.
    Run(RunArgs),
    /// Pull images, or every image of an app file.
    ///
    /// JSON (--format json): progress as JSON lines, each {"schema": 1, "time", "event"} and
    /// its fields: "resolved" {"image", "manifest", "layers"}, "layer-cached" / "layer-started" /
    /// "layer-downloaded" {"digest", "size"}, "layer-progress" {"digest", "done", "size"},
    /// "layer-unpacked" {"digest"}, "done" {"image", "manifest", "downloaded"}. `up` prints the
    /// same lines for the images it pulls.
    Pull(PullArgs),
    /// List, inspect and remove stored images.
    ///
    /// JSON (--format json): `images` and `images ls`: {"schema": 1, "images": [{"name",
    /// "digest", "size", "layers"}]}; `images prune`: {"schema": 1, "removed", "blobs",
    /// "layers", "bytes"}; `images inspect` (always JSON): {"schema": 1, "name", "manifest",
    /// "config_digest", "config"}.
    Images(ImagesArgs),
    /// List, inspect and remove an app's named volumes.
    ///
    /// JSON: `volumes ls --format json`: {"schema": 1, "volumes": [{"app", "name", "path",
    /// "used_by"}]}; `volumes inspect` (always JSON): {"schema": 1, "app", "name", "path",
    /// "used_by"}.
    #[command(subcommand)]
    Volumes(VolumesCommand),
    /// Store credentials for a registry.
    Login(LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(LogoutArgs),
    /// Print a systemd unit that runs an app.
    ///
    /// The unit runs `tfctl up` in the foreground and delegates its cgroup (`Delegate=yes`):
    /// the app's containers get their cgroups below the unit's, so `systemctl stop` stops every
    /// process of the app and leaves no cgroup behind.
    Systemd(SystemdArgs),
    /// Export a container's filesystem as a tar archive (`export kubernetes`: an app file as
    /// Kubernetes manifests).
    Export(ExportArgs),
    /// Show a container's effective configuration, as the kernel sees it.
    ///
    /// Read from the kernel, not echoed from the app file: the user, capabilities (effective,
    /// permitted, inheritable, bounding, ambient), seccomp mode and no_new_privs from
    /// /proc/PID/status of the container's init; its namespaces from /proc/PID/ns (each marked
    /// shared with the host when PID 1 is in the same one); its mounts from /proc/PID/mountinfo;
    /// its command line; its cgroup's limits and usage from the cgroup's files. From the
    /// supervisor: the image's digests, state, restart count, address, the firewall rules tfctl
    /// applied for it and its published ports, its labels and its definition; its health history
    /// from the app's event journal. A container that does not run has no process or cgroup part.
    ///
    /// JSON (--format json): one document, {"schema": 1, "app", "container", "status": {"state",
    /// "health", "restarts", "exit_code", "started_at", "reason"}, "restarts", "image": {"name",
    /// "manifest_digest", "config_digest"}, "address", "labels": {KEY: VALUE}, "firewall":
    /// {"allow", "egress", "allow_egress", "publish", "table", "table_loaded"}, "published": [{"container", "host_ip",
    /// "host_port", "container_port", "proto"}], "process": {"pid", "command", "uid", "gid",
    /// "groups", "capabilities": {"effective": {"hex", "names"}, ...}, "seccomp":
    /// "disabled"|"strict"|"filter", "seccomp_filters", "no_new_privs", "namespaces": {"net":
    /// {"id", "shared_with_host"}, ...}, "mounts": [{"target", "fstype", "source", "options",
    /// "fs_options"}]} or null, "cgroup": {"paths", "limits": {"memory", "cpu", "pids"}, "usage"
    /// (as in `tfctl stats`)} or null, "health_history": [{"time", "health"}], "definition"}.
    Inspect(InspectArgs),
    /// Show what happened to an app's containers, from its event journal.
    ///
    /// Events: started, restarted (a container started again, with its restart count), healthy,
    /// unhealthy, exited (with its status: 128+N after signal N), oom (killed at its memory
    /// limit), failed (with why), hook (a hook ran: its event and status), up, down,
    /// reconciled (a new app file was applied, with what changed). The supervisor writes each as
    /// it happens to apps/APP/events.jsonl under the state root, so they can be read after the
    /// fact and after `down`; past 1 MiB the journal is rotated, keeping one previous journal.
    /// With --follow, events are printed as they come until the app's supervisor exits.
    ///
    /// JSON (--format json): one line per event, {"schema": 1, "time" (RFC 3339), "app",
    /// "container" (null for the app's own), "event", "reason", "status", "message", "restarts"}.
    Events(EventsArgs),
    /// Show the resource usage of an app's running containers.
    ///
    /// Per container: CPU (percent of one CPU over the sampling interval, and seconds used),
    /// memory (and its limit), processes, network I/O of its network namespace (loopback left
    /// out) and block I/O. Figures come from the container's cgroup; where this host's cgroups
    /// do not account for one (on cgroup v1 a container has a memory or cpu cgroup only with
    /// that limit) they are the sum over its live processes in /proc, and "*_source" says
    /// "procs". Live (refreshed every second) unless --no-stream.
    ///
    /// JSON (--format json): one line per sample, {"schema": 1, "time", "containers": [{"app",
    /// "container", "cpu_percent", "cpu_ns", "cpu_source", "memory_bytes", "memory_source",
    /// "memory_limit_bytes", "pids", "net_rx_bytes", "net_tx_bytes", "block_read_bytes",
    /// "block_write_bytes", "block_source", "oom_kills"}]}.
    Stats(StatsArgs),
    /// Show the processes of a running container.
    ///
    /// Every process in the container's cgroup, with its pid on the host and in the container,
    /// its parent, user, state, memory, CPU time and command line.
    ///
    /// JSON (--format json): {"schema": 1, "app", "container", "processes": [{"pid",
    /// "container_pid", "ppid", "uid", "gid", "state", "threads", "rss_bytes", "cpu_ns",
    /// "command"}]}.
    Top(TopArgs),
    /// The OCI runtime command line (runc's), for Docker's and containerd's `--runtime`.
    Oci(crate::cmd::oci::OciArgs),
    /// Show what this host gives tfctl: kernel, cgroups, the features tfctl uses and the route it
    /// takes for each, the state root. With --format json, one document with "schema": 1.
    Info,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print tfctl's version.
    ///
    /// JSON (--format json): {"schema": 1, "version", "os", "arch"}.
    Version,
    /// Write the man pages into DIR (used to generate man/).
    #[command(name = "generate-man", hide = true)]
    GenerateMan {
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A Compose file (the same as -f FILE).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A Compose file; repeat to merge several, later ones overriding. Without any: those of
    /// COMPOSE_FILE, else compose.yaml (or docker-compose.yml) of the current folder and its
    /// override file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Write the app file here instead of standard output; relative host paths are written
    /// from its folder.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The Compose project name (default: `name:` of the files, COMPOSE_PROJECT_NAME, or the
    /// first file's folder name); it becomes the app's name.
    #[arg(short = 'p', long, value_name = "NAME")]
    pub project_name: Option<String>,
    /// Fail with exit 2, writing nothing, when anything does not convert exactly.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct FileArg {
    /// The app file.
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull only images that are not stored; a stored tag keeps its digest.
    Missing,
    /// Pull every image, updating tags.
    Always,
    /// Never contact a registry; fail when an image is missing.
    Never,
}

#[derive(Debug, Args, Default)]
pub struct RegistryArgs {
    /// Allow plain HTTP to this registry (HOST:PORT); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The app file.
    pub file: PathBuf,
    /// Detach: leave the app running under its supervisor and return once it is started.
    #[arg(short, long)]
    pub detach: bool,
    /// Detach and wait until every container is ready (healthy, or without a health check
    /// running for a second; one-shots exited 0); exit 3 when one fails, 4 when TIMEOUT
    /// (default 5m) passes.
    #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, require_equals = true, default_missing_value = "5m")]
    pub wait: Option<String>,
    /// Run the app under this name instead of the file's, so one file can run twice.
    #[arg(long)]
    pub name: Option<String>,
    /// Also run the containers of this profile (repeatable). Containers without a `profile`
    /// always run; those with one run only when it is named here.
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// When to pull images.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Replace a running app of the same name that came from a different app file.
    #[arg(long)]
    pub replace: bool,
    /// Accept app files, .env files, from= files and the programs host hooks run although they
    /// (or a folder above them) are owned by someone other than root or the caller, or writable
    /// by others. Without it, each is refused, as OpenSSH's StrictModes does (a root-owned
    /// sticky folder such as /tmp is fine), and a host hook runs the very file that was checked
    /// when it fires, by descriptor ($0 of a hook script is /dev/fd/N).
    #[arg(long)]
    pub trust_file: bool,
    /// Stop the app when this container exits and exit with its status (foreground only).
    #[arg(long, value_name = "CONTAINER", conflicts_with_all = ["detach", "wait"])]
    pub exit_code_from: Option<String>,
    /// Stop the app at the first failed event and exit 3 (foreground only).
    #[arg(long, conflicts_with_all = ["detach", "wait"])]
    pub abort_on_failure: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The app file, or the name of a running app.
    pub target: String,
    /// Also remove the app's volumes and record (generated secrets, logs).
    #[arg(long)]
    pub volumes: bool,
    /// The app's name, when it was started with `up --name`.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The app file.
    pub file: PathBuf,
    /// Exit 0 when nothing would change and 5 when something would.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// The app's name, when it runs under `up --name`.
    #[arg(long)]
    pub name: Option<String>,
    /// When to pull images to learn their digests.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Only this app.
    pub app: Option<String>,
    /// Only containers matching: `label=KEY` (the label is set) or `label=KEY=VALUE`; a
    /// container has its own labels and its app's. Repeatable: every filter must match.
    #[arg(long = "filter", value_name = "FILTER", value_parser = PsFilter::parse)]
    pub filters: Vec<PsFilter>,
}

/// A `ps --filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsFilter {
    /// `label=KEY` or `label=KEY=VALUE`.
    Label { key: String, value: Option<String> },
}

impl PsFilter {
    fn parse(s: &str) -> Result<PsFilter, PsFilterError> {
        match s.split_once('=') {
            Some(("label", rest)) if !rest.is_empty() && !rest.starts_with('=') => Ok(match rest.split_once('=') {
                Some((k, v)) => PsFilter::Label { key: k.to_string(), value: Some(v.to_string()) },
                None => PsFilter::Label { key: rest.to_string(), value: None },
            }),
            _ => Err(PsFilterError(s.to_string())),
        }
    }

    /// Whether a container with `labels` (a JSON object, as `ps --format json` shows) passes.
    pub fn matches(&self, labels: &serde_json::Value) -> bool {
        match self {
            PsFilter::Label { key, value } => match (labels.get(key), value) {
                (Some(_), None) => true,
                (Some(v), Some(want)) => v.as_str() == Some(want.as_str()),
                (None, _) => false,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a filter tfctl knows: write label=KEY or label=KEY=VALUE")]
pub struct PsFilterError(String);

#[derive(Debug, Args)]
pub struct TargetOpts {
    /// Resolve a bare container name in this app file's app.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// APP, APP/CONTAINER, or a container name.
    pub target: String,
    /// Keep printing new output.
    #[arg(short, long)]
    pub follow: bool,
    /// Only output since this long ago (e.g. 10m) or this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only the last N lines of each container.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    pub timestamps: bool,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// APP/CONTAINER, or a container name.
    pub target: String,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this app (else every app under the state root); APP/CONTAINER for one container.
    pub target: Option<String>,
    /// Only events since this long ago (e.g. 10m) or this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Keep printing events as they happen, until the app's supervisor exits.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this app's containers.
    pub app: Option<String>,
    /// Print one sample and exit (it still takes a second, to measure CPU use).
    #[arg(long)]
    pub no_stream: bool,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// APP/CONTAINER, or a container name.
    pub target: String,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// APP/CONTAINER, or a container name.
    pub target: String,
    /// The command and its arguments, after the target as `docker exec` takes them (`--` before
    /// it is optional); tfctl's own options go before the target.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// Pass tfctl's stdin to the process (without, it reads /dev/null).
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as this user (name or UID[:GID]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// LOCAL or APP/CONTAINER:/PATH.
    pub source: String,
    /// LOCAL or APP/CONTAINER:/PATH.
    pub destination: String,
    /// Keep ownership and permissions as they are in the source.
    #[arg(short, long)]
    pub archive: bool,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct TargetsArgs {
    /// APP, APP/CONTAINER, or a container name.
    #[arg(required = true)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// APP/CONTAINER, or a container name.
    pub target: String,
    /// Discard every change to the container's filesystem and write its pre-boot files and
    /// secrets again, keeping its address and published ports.
    #[arg(long)]
    pub reset: bool,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// APP/CONTAINER, or a container name.
    pub target: String,
    /// The signal to send.
    #[arg(short, long, default_value = "SIGKILL")]
    pub signal: String,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// APP/CONTAINER, or a container name.
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Stop the container first if it runs.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// APP/CONTAINER, or a container name.
    pub target: String,
    /// Only this container port (PORT or PORT/udp).
    pub port: Option<String>,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background under a supervisor.
    #[arg(short, long)]
    pub detach: bool,
    /// Pass tfctl's stdin to the process (without, it reads /dev/null).
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to take it from tfctl's environment).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Mount a volume or host path: NAME:/PATH[:ro] or ./PATH:/PATH[:ro].
    #[arg(short, long, value_name = "SRC:/PATH[:ro]")]
    pub volume: Vec<String>,
    /// Copy a host file into the container before it starts: LOCAL:/PATH.
    #[arg(long, value_name = "LOCAL:/PATH")]
    pub copy: Vec<String>,
    /// Publish a port: [IP:]HOSTPORT:PORT[/udp].
    #[arg(short, long, value_name = "[IP:]HOSTPORT:PORT[/udp]")]
    pub publish: Vec<String>,
    /// Memory limit (e.g. 256M).
    #[arg(short, long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Size limit of /dev/shm (e.g. 128M; default 64M).
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// User namespace: "auto" maps the container's ids onto a range of host ids no one else
    /// uses (root inside is not root on the host); "host" uses the host's ids. Default: the
    /// host config's `userns`.
    #[arg(long, value_name = "MODE", value_parser = ["auto", "host"])]
    pub userns: Option<String>,
    /// Run as this user (name or UID[:GID]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Override the image's entrypoint; `--entrypoint ""` clears it and the image's Cmd, so
    /// the command given runs as it is, as in Docker.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Mount a tmpfs: /PATH[:size=SIZE] (e.g. /run:size=64m); repeatable.
    #[arg(long, value_name = "/PATH[:size=SIZE]")]
    pub tmpfs: Vec<String>,
    /// Mount as Docker writes it: type=bind|volume|tmpfs,source=SRC,target=/PATH[,readonly]
    /// [,tmpfs-size=SIZE]; repeatable.
    #[arg(long, value_name = "type=TYPE,source=SRC,target=/PATH[,readonly]")]
    pub mount: Vec<String>,
    /// The most processes the container may have (-1: no limit; default 4096).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,
    /// CPUs' worth of time (e.g. 1.5: a CFS quota of 150000 per 100000 µs).
    #[arg(long, value_name = "NUMBER", allow_negative_numbers = true)]
    pub cpus: Option<String>,
    /// A resource limit: NAME=SOFT[:HARD] (e.g. nofile=1024:2048); repeatable.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// A namespaced sysctl: KEY=VALUE (e.g. net.ipv4.ip_forward=1); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// The network: "none" for loopback only (the default without -p or -d, where a container
    /// gets its own app network).
    #[arg(long, value_name = "none")]
    pub network: Option<String>,
    /// A line of the container's /etc/hosts: NAME:IP; repeatable.
    #[arg(long, value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// A nameserver of the container's /etc/resolv.conf, instead of the host's; repeatable.
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Metadata: KEY=VALUE (shown by `ps --format json` of an attached container); repeatable.
    #[arg(short = 'l', long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// The signal `stop` sends (default: the image's StopSignal, else SIGTERM).
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits after the stop signal before SIGKILL (default 10).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub stop_timeout: Option<String>,
    /// A supplementary group: a name from the image's /etc/group, or a number; repeatable.
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Give the container every capability tfctl holds, no seccomp filter, and /proc and /sys
    /// unmasked and writable: root in it is root on the host. tfctl warns on stderr. Unlike
    /// Docker, tfctl does not add the host's devices to the container's /dev.
    #[arg(long)]
    pub privileged: bool,
    /// The container's name (default run-<6 hex>).
    #[arg(long)]
    pub name: Option<String>,
    /// Add the container to this running app.
    #[arg(long)]
    pub app: Option<String>,
    /// With --app: admit connections from NAME|host|any|CIDR[:PORT[-PORT][/tcp|udp]].
    #[arg(long, value_name = "PEER[:PORTS]", requires = "app")]
    pub allow_from: Vec<String>,
    /// Add a capability.
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability.
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Security options: seccomp=unconfined or seccomp=PROFILE.json.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Run tfctl's minimal init as PID 1.
    #[arg(long)]
    pub init: bool,
    /// The container's hostname.
    #[arg(long)]
    pub hostname: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The image.
    pub image: String,
    /// The command and its arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image references, or app files (an argument containing `/` or ending in `.kdl` that
    /// names an existing file).
    #[arg(required = true, value_name = "REF|FILE")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: Option<ImagesCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// List stored images (the default).
    Ls,
    /// Remove a stored image.
    Rm {
        /// The image reference.
        reference: String,
        /// Remove it even if a container uses it.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove every image and layer no container or tag uses.
    Prune,
    /// Print an image's config as JSON.
    Inspect {
        /// The image reference.
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum VolumesCommand {
    /// List volumes.
    Ls {
        /// Only this app's volumes.
        app: Option<String>,
    },
    /// Show a volume's details.
    Inspect {
        /// APP/VOLUME.
        volume: String,
    },
    /// Remove a volume no container uses.
    Rm {
        /// APP/VOLUME.
        volume: String,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (HOST[:PORT]); default Docker Hub.
    pub server: Option<String>,
    /// The user name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (HOST[:PORT]); default Docker Hub.
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct SystemdArgs {
    /// The app file.
    pub file: PathBuf,
    /// The unit's name (default tfctl-APP.service; `.service` is added when missing).
    #[arg(long, value_name = "UNIT")]
    pub name: Option<String>,
    /// Write the unit to /etc/systemd/system (and its environment file to /etc/tfctl, when the
    /// app file needs one and it does not exist) and have systemd reload and enable it, instead
    /// of printing it.
    #[arg(long)]
    pub install: bool,
    /// With --install: start the unit too, and wait until the app is ready.
    #[arg(long, requires = "install")]
    pub now: bool,
    /// The tfctl binary the unit runs (default: this one; one in a cargo target folder only
    /// when named here).
    #[arg(long, value_name = "PATH")]
    pub tfctl: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub kind: Option<ExportKind>,
    /// APP/CONTAINER, or a container name (a container named `kubernetes` needs its APP/).
    #[arg(required = true)]
    pub target: Option<String>,
    /// Write the archive here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub target_opts: TargetOpts,
}

#[derive(Debug, Subcommand)]
pub enum ExportKind {
    /// Write an app file as Kubernetes manifests.
    ///
    /// Reads FILE as `tfctl check` does and writes one object per file into DIR, numbered in
    /// the order to apply them (`kubectl apply -f DIR`), or a multi-document YAML stream to
    /// standard output (`-o -`, the default). Every object is labelled
    /// app.kubernetes.io/part-of=APP. Whatever has no Kubernetes equivalent is a warning on
    /// standard error naming the app file's node, and the same text as a comment above the
    /// object it concerns: nothing is dropped silently. The host files `file from=` names are
    /// read; secrets never are.
    ///
    /// The mapping:
    ///
    /// container: a Deployment of one replica named after it; a StatefulSet when it (or an init
    /// container of its pod) mounts a named volume, each volume a volumeClaimTemplate of 1Gi in
    /// the default storage class; a Job for a one-shot (restart "no": backoffLimit 0; sleep:
    /// suspended; a named volume it mounts is a PersistentVolumeClaim APP-VOLUME of its own).
    /// A one-shot others wait on with `after until="completed"` is an init container of each of
    /// their pods instead, with no Service of its own (it then runs once per pod start of each).
    /// sleep: zero replicas. image: as written; a local image (oci:, oci-archive:,
    /// docker-archive:) becomes a placeholder NAME:TAG and a warning. entrypoint and command:
    /// command and args. env, workdir, hostname: env, workingDir, the pod's hostname.
    ///
    /// Services: each container gets a headless Service under its own name, so `db:5432`
    /// resolves to the pod and every port answers as on tfctl's app network (the ports listed
    /// are those of its allow, publish and health nodes). A publish adds a Service
    /// CONTAINER-published of type NodePort (the host port as node port when it lies in
    /// 30000-32767, else Kubernetes picks one) or LoadBalancer (--publish-as), listening on the
    /// host port.
    ///
    /// Secrets: a Secret per app secret, under its name, its key "value" left empty, with a
    /// warning saying how to fill it (kubectl create secret generic NAME --from-file|
    /// --from-literal). Never the value: tfctl reads from-file and from-env secrets only when
    /// the app starts, and derives generated ones from this host's key, which a cluster does
    /// not have; a random value of the same length in their place works the same for a new
    /// deployment. A container's secret is that Secret's key mounted at its path with its mode
    /// (subPath), or an env var from it.
    ///
    /// Files: a ConfigMap CONTAINER-files holding the container's pre-boot files (binary ones in
    /// binaryData), each mounted at its path with its mode. In a template, {{ ip.NAME }} and
    /// {{ name.NAME }} become NAME (the Service name); a template with {{ secret.NAME }} goes
    /// into a Secret CONTAINER-templates with the placeholders left in, and a warning.
    ///
    /// Network: NetworkPolicies. APP-default-deny denies all ingress and egress of the app's
    /// pods; APP-egress-app lets them reach each other and cluster DNS (kube-dns in
    /// kube-system). Each allow is a policy CONTAINER-allow-N (from a container: its pods; from
    /// "any": every source; from a CIDR: an ipBlock), each with its ports and protocols;
    /// publish admits the container ports from anywhere (CONTAINER-published); egress "allow"
    /// and each allow-egress CIDR are CONTAINER-egress rules (link-local 169.254.0.0/16 kept
    /// closed unless a CIDR inside it opens it).
    ///
    /// Health and hooks: health is a readinessProbe (exec, httpGet, tcpSocket; interval,
    /// timeout and retries as period, timeout and failureThreshold, rounded up to whole
    /// seconds; start-period as initialDelaySeconds): tfctl does not restart an unhealthy
    /// container, and a failing readiness probe does not either. exec steps of "started" hooks
    /// are postStart, of "stopping" hooks preStop (several steps joined in one `sh -c`).
    ///
    /// Confinement and limits: securityContext with allowPrivilegeEscalation false (tfctl's
    /// no_new_privs), capabilities add/drop, runAsUser/runAsGroup from a numeric user,
    /// readOnlyRootFilesystem from read-only, seccompProfile RuntimeDefault (default),
    /// Unconfined, or Localhost tfctl/APP/FILE for a profile of the app's own (copy it to
    /// /var/lib/kubelet/seccomp/ on each node). limits memory and cpus are resource limits;
    /// sysctls the pod's; tmpfs and shm-size memory-backed emptyDirs; userns "auto" hostUsers
    /// false; init shareProcessNamespace; stop-timeout terminationGracePeriodSeconds. A bind
    /// mount is a hostPath volume, with a warning.
    ///
    /// Not exported (each a warning): host `run` steps of hooks and app hooks; hooks on
    /// healthy, unhealthy, exited and failed; on-fail="ignore" of started hooks; `after`
    /// ordering until started or healthy (pods start at once); restart max=; per-file and
    /// per-secret owners (files are root's); ulimits; limits pids=; stop-signal; publish
    /// host-ip=; allow from="host" and allow-egress to="host" (a policy cannot name the node).
    /// A restart policy other than "always" is a comment: Kubernetes restarts a Deployment's
    /// container whenever it exits.
    Kubernetes(ExportKubernetesArgs),
}

#[derive(Debug, Args)]
pub struct ExportKubernetesArgs {
    /// The app file.
    pub file: PathBuf,
    /// Put every object into this namespace (default: kubectl's current one).
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// A folder to write one file per object into, or `-` for a YAML stream on standard output.
    #[arg(short, long, value_name = "DIR|-", default_value = "-")]
    pub output: PathBuf,
    /// The Service type of published ports.
    #[arg(long, value_enum, default_value_t = PublishAs::NodePort)]
    pub publish_as: PublishAs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PublishAs {
    /// A port on every node.
    NodePort,
    /// A cloud load balancer.
    LoadBalancer,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    fn exec_args(line: &[&str]) -> super::ExecArgs {
        use clap::Parser;
        let cli = super::Cli::try_parse_from(std::iter::once("tfctl").chain(line.iter().copied())).expect("parses");
        match cli.command {
            super::Command::Exec(a) => a,
            other => panic!("not exec: {other:?}"),
        }
    }

    /// `docker exec C cat x` takes the command right after the target; options before the
    /// target are tfctl's, everything after it (options included) is the command's, and a `--`
    /// right after the target still works.
    #[test]
    fn exec_takes_the_command_after_the_target_with_or_without_dashes() {
        let a = exec_args(&["exec", "app/c", "cat", "x"]);
        assert_eq!((a.target.as_str(), a.command), ("app/c", vec!["cat".to_string(), "x".into()]));
        let a = exec_args(&["exec", "-it", "-u", "0", "app/c", "ls", "-l", "--all"]);
        assert!(a.interactive && a.tty);
        assert_eq!(a.user.as_deref(), Some("0"));
        assert_eq!(a.command, ["ls", "-l", "--all"]);
        let a = exec_args(&["exec", "-w", "/tmp", "app/c", "--", "sh", "-c", "echo -- -t"]);
        assert_eq!(a.workdir.as_deref(), Some("/tmp"));
        assert!(!a.tty);
        assert_eq!(a.command, ["sh", "-c", "echo -- -t"]);
        // A `--` inside the command is the command's.
        let a = exec_args(&["exec", "c", "echo", "--", "x"]);
        assert_eq!(a.command, ["echo", "--", "x"]);
        use clap::Parser;
        assert!(super::Cli::try_parse_from(["tfctl", "exec", "app/c"]).is_err(), "a command is required");
    }
}
