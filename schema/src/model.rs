//! The resolved app model: what an app file means once it is parsed, validated, variables
//! expanded, defaults filled in and relative paths made absolute.
//!
//! Nothing here knows KDL: the runtime and the CLI work from these types only. Secrets appear
//! only as their source, never as their value.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// One app: everything one app file describes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct App {
    pub name: String,
    /// The app file, absolute.
    pub file: PathBuf,
    /// The folder relative paths in the file were resolved against (the app file's folder).
    pub dir: PathBuf,
    /// `network subnet=`: `None` takes a free /24 from the host's subnet pool.
    pub subnet: Option<Ipv4Net>,
    /// `egress`: the app-wide default for traffic to the outside world.
    pub egress: Egress,
    pub secrets: Vec<SecretDef>,
    pub volumes: Vec<VolumeDef>,
    pub containers: Vec<Container>,
    /// App-level host hooks (`on "up"|"down"|"failed"`).
    pub hooks: Vec<Hook>,
    /// `label "KEY" "VALUE"` at the top level: the app's labels, in file order, keys unique (a
    /// later one wins in the place of the first).
    pub labels: Vec<(String, String)>,
}

impl App {
    /// Fills in what the host config decides for containers whose app file does not say
    /// (`userns`).
    pub fn apply_host_defaults(&mut self, config: &HostConfig) {
        for c in &mut self.containers {
            c.userns.get_or_insert(config.userns);
        }
    }

    /// An app with every setting at its default and nothing in it: what an app file with only
    /// `app "NAME"` means. `dir` is `file`'s folder.
    pub fn new(name: &str, file: PathBuf) -> App {
        App {
            name: name.to_string(),
            dir: file.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/")),
            file,
            subnet: None,
            egress: Egress::Allow,
            secrets: Vec::new(),
            volumes: Vec::new(),
            containers: Vec::new(),
            hooks: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Keeps the containers `up --profile` runs: those without a profile and those with one of
    /// `profiles`. `allow` rules naming a container left out are dropped (there is nothing to
    /// admit); an `after` naming one is an error, since the container would wait forever.
    pub fn select_profiles(&mut self, profiles: &[String]) -> Result<(), ProfileError> {
        if let Some(p) = profiles
            .iter()
            .find(|p| !self.containers.iter().any(|c| c.profiles.contains(p)))
        {
            let mut known: Vec<&str> = self
                .containers
                .iter()
                .flat_map(|c| c.profiles.iter().map(String::as_str))
                .collect();
            known.sort_unstable();
            known.dedup();
            return Err(ProfileError::Unknown { profile: p.clone(), known: known.join(", ") });
        }
        let (kept, left): (Vec<Container>, Vec<Container>) =
            std::mem::take(&mut self.containers).into_iter().partition(|c| c.in_profiles(profiles));
        let is_left = |n: &str| left.iter().any(|c| c.name == n);
        for c in &kept {
            if let Some(a) = c.after.iter().find(|a| is_left(&a.container)) {
                let target = left.iter().find(|l| l.name == a.container).map(|l| l.profiles.join(", "));
                return Err(ProfileError::AfterLeftOut {
                    container: c.name.clone(),
                    after: a.container.clone(),
                    profiles: target.unwrap_or_default(),
                });
            }
        }
        self.containers = kept;
        for c in &mut self.containers {
            c.allow.retain(|a| !matches!(&a.from, Peer::Container(n) if is_left(n)));
        }
        Ok(())
    }

    /// Turns each named `network` into the `allow` rules it stands for: every member admits
    /// every other member on every port and protocol. Done at `up`, after the profiles, so that
    /// `config` shows the file as written.
    pub fn expand_networks(&mut self) {
        let members: Vec<(String, Vec<String>)> =
            self.containers.iter().map(|c| (c.name.clone(), c.networks.clone())).collect();
        for c in &mut self.containers {
            for (peer, nets) in &members {
                let shares = *peer != c.name && c.networks.iter().any(|n| nets.contains(n));
                let from = Peer::Container(peer.clone());
                if shares && !c.allow.iter().any(|a| a.from == from && a.ports.is_none() && a.proto.is_none()) {
                    c.allow.push(Allow { from, ports: None, proto: None });
                }
            }
        }
    }

    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    pub fn secret(&self, name: &str) -> Option<&SecretDef> {
        self.secrets.iter().find(|s| s.name == name)
    }
}

/// Why `up --profile` cannot select the containers it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("no container has profile `{profile}` (the app's profiles: {known}); check its spelling")]
    Unknown { profile: String, known: String },
    #[error("container `{container}` runs after `{after}`, which runs only with --profile {profiles}: add that profile, or give `{after}` no profile")]
    AfterLeftOut { container: String, after: String, profiles: String },
}

/// An IPv4 network in CIDR notation, e.g. `10.89.7.0/24`. The address is kept as written
/// (`10.0.0.1/8` stays so); [`Ipv4Net::network`] gives the masked base address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then_some(Self { addr, prefix })
    }

    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let shorter = if self.prefix <= other.prefix {
            self
        } else {
            other
        };
        let longer = if self.prefix <= other.prefix {
            other
        } else {
            self
        };
        shorter.contains(longer.network())
    }

    /// Number of addresses in the network (2^(32-prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a CIDR did not parse; the message is written to follow "invalid CIDR: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{0}` has no `/PREFIX`: write it as ADDRESS/PREFIX, e.g. 10.89.7.0/24")]
    NoPrefix(String),
    #[error("`{0}` is not an IPv4 address (tfctl is IPv4-only for now)")]
    BadAddress(String),
    #[error("prefix `{0}` is not a number from 0 to 32")]
    BadPrefix(String),
}

impl FromStr for Ipv4Net {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::NoPrefix(s.to_string()))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| CidrError::BadAddress(addr.to_string()))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| CidrError::BadPrefix(prefix.to_string()))?;
        Ok(Ipv4Net { addr, prefix })
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Egress {
    Allow,
    Deny,
}

/// A secret the app defines (`secret "NAME" from-file=|from-env=|generate=`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretDef {
    pub name: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretSource {
    /// Read from a host file at start (absolute path).
    FromFile(PathBuf),
    /// Read from the environment of `tfctl up` (the variable's name).
    FromEnv(String),
    /// Derived from the host key: this many characters.
    Generate(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeDef {
    pub name: String,
}

/// One container of the app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Container {
    pub name: String,
    /// The image reference as written, local source paths made absolute
    /// (`oci:/abs/path:tag`); parsed by `reference`.
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub workdir: Option<String>,
    /// `UID[:GID]` or a user name from the image's /etc/passwd.
    pub user: Option<String>,
    /// Defaults to the container's name.
    pub hostname: String,
    /// In order: `env-file` entries first, then `env` nodes; a later key wins.
    pub env: Vec<(String, String)>,
    pub files: Vec<PreBootFile>,
    pub secrets: Vec<SecretUse>,
    pub mounts: Vec<Mount>,
    pub tmpfs: Vec<Tmpfs>,
    /// The size limit of the container's /dev/shm, in bytes.
    pub shm_size: u64,
    /// `userns`: the container's own user namespace, or the host's; `None` takes the host
    /// config's default.
    pub userns: Option<Userns>,
    pub publish: Vec<Publish>,
    pub allow: Vec<Allow>,
    /// `None`: the app's default.
    pub egress: Option<Egress>,
    pub allow_egress: Vec<AllowEgress>,
    pub after: Vec<After>,
    pub health: Option<Health>,
    pub restart: Restart,
    pub hooks: Vec<Hook>,
    pub limits: Limits,
    pub ulimits: Vec<Ulimit>,
    /// Capability names, canonical (`CAP_NET_ADMIN`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub seccomp: Seccomp,
    pub sysctls: Vec<(String, String)>,
    /// Canonical signal name (`SIGTERM`).
    /// `None`: the image's StopSignal, else SIGTERM.
    pub stop_signal: Option<String>,
    #[serde(serialize_with = "ser_duration")]
    pub stop_timeout: Duration,
    pub read_only: bool,
    pub init: bool,
    pub sleep: bool,
    /// A task expected to run to completion (`one-shot`, or the target of an
    /// `after ... until="completed"`).
    pub one_shot: bool,
    /// `profile`: the container runs only when `up --profile` names one of these; empty: it
    /// always runs.
    pub profiles: Vec<String>,
    /// Supplementary groups beyond the user's own (`group-add`, `run --group-add`): names the
    /// image's /etc/group defines, or numbers.
    pub group_add: Vec<String>,
    /// `label "KEY" "VALUE"`, `run --label KEY=VALUE`, in file order, keys unique (a later one
    /// wins in the place of the first): metadata for people and tools; the container never sees it.
    pub labels: Vec<(String, String)>,
    /// `alias`: more names the app's containers resolve to this container's address.
    pub aliases: Vec<String>,
    /// `extra-host "NAME" "ADDRESS"`, `run --add-host NAME:IP`: lines added to the container's
    /// /etc/hosts, after tfctl's own.
    pub extra_hosts: Vec<ExtraHost>,
    /// `dns`, `run --dns IP`: the nameservers of the container's resolv.conf; empty: the host's.
    pub dns: Vec<IpAddr>,
    /// Which network the container is on: the app's (default), none, or the host's.
    pub network: NetworkMode,
    /// `network "NAME"`: the named networks the container joins; members of one network reach
    /// each other on every port, as `allow from=` each other would.
    pub networks: Vec<String>,
    /// `pid "host"`: the host's PID namespace: the container sees every process of the host.
    pub host_pid: bool,
    /// `privileged`, `run --privileged`: every capability tfctl holds, no seccomp filter, no
    /// masked or read-only paths under /proc and /sys, /sys writable.
    pub privileged: bool,
    /// `device "/dev/PATH"`: host devices made available in the container.
    pub devices: Vec<String>,
    /// `tty`: the process gets a pseudo-terminal as its stdin, stdout and stderr.
    pub tty: bool,
    /// `container "NAME" replicas=N`: N instances NAME-1..NAME-N, each with its own address.
    pub replicas: u32,
    /// `log`: the container's log rotation; unset parts take the host config's.
    pub log: LogOptions,
}

/// Which network a container is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// The app's network (a one-off `run` without `-p` or `-d`: loopback only).
    #[default]
    App,
    /// `network "none"`, `run --network none`: a network namespace with loopback only, on no
    /// network.
    None,
    /// `network "host"`: the host's network namespace instead of the app's network.
    Host,
}

/// `shm-size` when the app file does not say (Docker's: 64 MiB).
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// `stop-timeout` when the app file does not say (Docker's).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Container {
    /// A container with every setting at its default: what an app file with only
    /// `container "NAME" { image "IMAGE" }` means.
    pub fn new(name: &str, image: &str) -> Container {
        Container {
            name: name.to_string(),
            image: image.to_string(),
            command: None,
            entrypoint: None,
            workdir: None,
            user: None,
            hostname: name.to_string(),
            env: Vec::new(),
            files: Vec::new(),
            secrets: Vec::new(),
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            shm_size: DEFAULT_SHM_SIZE,
            userns: None,
            publish: Vec::new(),
            allow: Vec::new(),
            egress: None,
            allow_egress: Vec::new(),
            after: Vec::new(),
            health: None,
            restart: Restart { policy: RestartPolicy::No, max: None },
            hooks: Vec::new(),
            limits: Limits::default(),
            ulimits: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            seccomp: Seccomp::Default,
            sysctls: Vec::new(),
            stop_signal: None,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            read_only: false,
            init: false,
            sleep: false,
            one_shot: false,
            profiles: Vec::new(),
            group_add: Vec::new(),
            labels: Vec::new(),
            aliases: Vec::new(),
            extra_hosts: Vec::new(),
            dns: Vec::new(),
            network: NetworkMode::App,
            networks: Vec::new(),
            host_pid: false,
            privileged: false,
            devices: Vec::new(),
            tty: false,
            replicas: 1,
            log: LogOptions::default(),
        }
    }

    /// Whether the container runs when `up` is given `profiles`: one without a profile always
    /// does, one with profiles when one of them is named.
    pub fn in_profiles(&self, profiles: &[String]) -> bool {
        self.profiles.is_empty() || self.profiles.iter().any(|p| profiles.contains(p))
    }

    /// The names of the container's instances: `NAME` alone, or `NAME-1`..`NAME-N` with
    /// `replicas=N` above 1.
    pub fn instance_names(&self) -> Vec<String> {
        if self.replicas <= 1 {
            vec![self.name.clone()]
        } else {
            (1..=self.replicas).map(|i| format!("{}-{i}", self.name)).collect()
        }
    }

    /// Whether the container gives up an isolation the default keeps: `ps`, `inspect` and
    /// `check` name each of these modes.
    pub fn host_modes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.privileged {
            out.push("privileged".to_string());
        }
        if self.network == NetworkMode::Host {
            out.push("network=host".to_string());
        }
        if self.host_pid {
            out.push("pid=host".to_string());
        }
        out.extend(self.devices.iter().map(|d| format!("device={d}")));
        out
    }

    /// The egress policy in force: the container's own, else the app's.
    pub fn egress_or(&self, app_default: Egress) -> Egress {
        self.egress.unwrap_or(app_default)
    }
}

/// A file written into the container's filesystem before its process starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreBootFile {
    /// Absolute path inside the container.
    pub path: String,
    pub content: FileContent,
    /// `{{ ip.NAME }}`, `{{ name.NAME }}`, `{{ secret.NAME }}` are rendered at start.
    pub template: bool,
    pub mode: u32,
    pub owner: Option<Owner>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileContent {
    Inline(String),
    /// A host file, absolute, read at start.
    From(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// A secret a container receives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretUse {
    pub name: String,
    pub target: SecretTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretTarget {
    /// A file on the secrets tmpfs. `owner: None` means the container's user.
    File {
        path: String,
        mode: u32,
        owner: Option<Owner>,
    },
    /// An environment variable: only when the app file asks (`env="VAR"`).
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mount {
    pub source: MountSource,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
    /// A bind source that does not exist is made (an empty folder) when the container starts;
    /// without it, a missing source is an error.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub create: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountSource {
    /// A named volume of the app.
    Volume(String),
    /// A host path, absolute.
    Bind(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tmpfs {
    pub path: String,
    /// Bytes; `None` is the kernel's default (half of RAM).
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Publish {
    /// 0: take a free host port at start.
    pub host_port: u16,
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    pub proto: Proto,
}

/// An inclusive port range; a single port has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Who may connect in (`allow from=`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    Container(String),
    Host,
    Any,
    Cidr(Ipv4Net),
}

/// `allow`: inbound connections admitted to a container.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allow {
    pub from: Peer,
    /// `None`: every port.
    pub ports: Option<PortRange>,
    /// `None`: tcp and udp.
    pub proto: Option<Proto>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EgressDest {
    Host,
    Cidr(Ipv4Net),
}

/// `allow-egress`: outbound destinations admitted beyond the app's peers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllowEgress {
    pub to: EgressDest,
    pub ports: Option<PortRange>,
    pub proto: Option<Proto>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Until {
    Started,
    Healthy,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct After {
    pub container: String,
    pub until: Until,
    /// `restart=#true`: when `container` restarts, this one is restarted after it.
    pub restart: bool,
}

/// `extra-host "NAME" "ADDRESS"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtraHost {
    pub name: String,
    pub addr: IpAddr,
}

/// `log size= files=`: how the container's log rotates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogOptions {
    /// Bytes before rotation; `None`: the host config's `log-size`.
    pub size: Option<u64>,
    /// Rotated files kept besides the current one; `None`: the runtime's default.
    pub files: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub probe: Probe,
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub retries: u32,
    #[serde(serialize_with = "ser_duration")]
    pub start_period: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    Exec(Vec<String>),
    Http(String),
    Tcp(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    OnFailure,
    /// As `always`, but a container stopped by `tfctl stop` stays stopped across `up` and the
    /// supervisor's restarts.
    UnlessStopped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restart {
    pub policy: RestartPolicy,
    /// `None`: no limit.
    pub max: Option<u32>,
}

/// Events hooks fire on. Container events and app events share the type; validation keeps each
/// where it belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    Started,
    Healthy,
    Unhealthy,
    Stopping,
    Exited,
    Failed,
    Up,
    Down,
}

impl Event {
    pub fn as_str(&self) -> &'static str {
        match self {
            Event::Started => "started",
            Event::Healthy => "healthy",
            Event::Unhealthy => "unhealthy",
            Event::Stopping => "stopping",
            Event::Exited => "exited",
            Event::Failed => "failed",
            Event::Up => "up",
            Event::Down => "down",
        }
    }

    /// Whether `exec` (inside the container) may run on this event: only while it runs.
    pub fn allows_exec(&self) -> bool {
        matches!(
            self,
            Event::Started | Event::Healthy | Event::Unhealthy | Event::Stopping
        )
    }

    /// `on-fail` when the file does not say: started and healthy hooks gate readiness.
    pub fn default_on_fail(&self) -> OnFail {
        match self {
            Event::Started | Event::Healthy => OnFail::Fail,
            _ => OnFail::Ignore,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFail {
    Fail,
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hook {
    pub event: Event,
    pub on_fail: OnFail,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub steps: Vec<HookStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookStep {
    /// Inside the container, fully confined.
    Exec(Vec<String>),
    /// On the host, in the app file's folder.
    Run(Vec<String>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    /// `None`: the runtime's default (4096).
    pub pids: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ulimit {
    /// The name as written (`nofile`); `RLIMIT_` + uppercase is the resource.
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seccomp {
    Default,
    Unconfined,
    /// A Docker-format JSON profile, absolute path.
    Profile(PathBuf),
}

/// Whose user ids a container's processes and files have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Userns {
    /// The host's: uid 0 in the container is root on the host (Docker's default).
    #[default]
    Host,
    /// A user namespace of its own, mapped to a range of host ids no one else uses: root in the
    /// container is an unprivileged id on the host.
    Auto,
}

impl Userns {
    pub fn as_str(self) -> &'static str {
        match self {
            Userns::Host => "host",
            Userns::Auto => "auto",
        }
    }
}

/// Host settings from tfctl's config file (tfctl-config(5)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostConfig {
    /// `HOST:PORT` entries, `localhost` normalised.
    pub insecure_registries: Vec<String>,
    pub subnet_pool: Ipv4Net,
    /// Bytes per container log before rotation.
    pub log_size: u64,
    /// The most bytes one image layer may unpack to (`max-layer-size`).
    pub max_layer_size: u64,
    /// The most bytes the layers one pull unpacks may take together (`max-image-size`).
    pub max_image_size: u64,
    /// The user namespace of containers whose app file does not say (`userns`).
    pub userns: Userns,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            insecure_registries: Vec::new(),
            subnet_pool: Ipv4Net {
                addr: Ipv4Addr::new(10, 89, 0, 0),
                prefix: 16,
            },
            log_size: 10 * 1024 * 1024,
            max_layer_size: 8 << 30,
            max_image_size: 32 << 30,
            userns: Userns::Host,
        }
    }
}

/// Renders a duration the way app files write them: `1m30s`, `500ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    let mut out = String::new();
    for (v, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
        }
    }
    out
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_overlaps() {
        let a: Ipv4Net = "10.89.0.0/16".parse().unwrap();
        let b: Ipv4Net = "10.89.7.0/24".parse().unwrap();
        let c: Ipv4Net = "10.90.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(b.size(), 256);
        assert!(matches!(
            "10.0.0.0".parse::<Ipv4Net>(),
            Err(CidrError::NoPrefix(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Ipv4Net>(),
            Err(CidrError::BadPrefix(_))
        ));
        assert!(matches!(
            "fe80::/64".parse::<Ipv4Net>(),
            Err(CidrError::BadAddress(_))
        ));
        assert_eq!("0.0.0.0/0".parse::<Ipv4Net>().unwrap().mask(), 0);
    }

    #[test]
    fn durations_render_as_written() {
        assert_eq!(format_duration(Duration::from_millis(90_000)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(3600 + 1)), "1h1s");
    }
}
