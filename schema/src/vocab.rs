//! The vocabulary of app files and tfctl's config file: every node, where it may appear, its
//! arguments and properties, with a one-line description.
//!
//! This table is the single source of truth for the shape of the language: the loader checks
//! node names, argument counts, value kinds and property names against it, "did you mean"
//! suggestions come from it, and a test checks that `man/tfctl.kdl.5` and `man/tfctl-config.5`
//! document every entry.

/// Where a node may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ctx {
    /// The top level of an app file.
    App,
    /// Inside `container "NAME" { ... }`.
    Container,
    /// Inside `health { ... }`.
    Health,
    /// Inside `on "EVENT" { ... }`, at app or container level.
    Hook,
    /// The top level of tfctl's config file (tfctl-config(5)).
    Config,
}

impl Ctx {
    /// How the man page and error messages name this place.
    pub fn describe(&self) -> &'static str {
        match self {
            Ctx::App => "at the top level of an app file",
            Ctx::Container => "inside a `container` block",
            Ctx::Health => "inside a `health` block",
            Ctx::Hook => "inside an `on` hook block",
            Ctx::Config => "in tfctl's config file",
        }
    }

    /// The section heading (`.SH`) of the man page that documents this place.
    pub fn man_section(&self) -> &'static str {
        match self {
            Ctx::App => "APP NODES",
            Ctx::Container => "CONTAINER NODES",
            Ctx::Health => "HEALTH NODES",
            Ctx::Hook => "HOOK NODES",
            Ctx::Config => "SETTINGS",
        }
    }
}

/// The kind of a KDL value, as the table demands it. Finer checks (ranges, formats) are the
/// loader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// A whole number.
    Int,
    /// A number, whole or not.
    Number,
    /// `#true` or `#false`.
    Bool,
    /// A whole number written as an octal literal (`0o644`).
    Mode,
    /// A string or a number (command arguments, environment values): numbers keep their text.
    Scalar,
    /// A whole number or a string `"N-M"` (ports and port ranges).
    PortOrRange,
    /// A size: a string like `"64M"` or a whole number of bytes.
    Size,
    /// A duration: a string with a unit, like `"10s"`.
    Duration,
}

impl Kind {
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "a whole number",
            Kind::Number => "a number",
            Kind::Bool => "#true or #false",
            Kind::Mode => "an octal mode such as 0o644",
            Kind::Scalar => "a string or a number",
            Kind::PortOrRange => "a port number or a range \"N-M\"",
            Kind::Size => "a size such as \"64M\"",
            Kind::Duration => "a duration such as \"10s\"",
        }
    }
}

/// How many arguments a node takes, and of which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// A bare node: no arguments.
    None,
    /// Exactly these.
    Exactly(&'static [Kind]),
    /// One or more of this kind.
    OneOrMore(Kind),
    /// `min` to `max` of this kind.
    Between(usize, usize, Kind),
}

impl Args {
    pub fn accepts(&self, n: usize) -> bool {
        match self {
            Args::None => n == 0,
            Args::Exactly(k) => n == k.len(),
            Args::OneOrMore(_) => n >= 1,
            Args::Between(lo, hi, _) => (*lo..=*hi).contains(&n),
        }
    }

    pub fn kind(&self, i: usize) -> Option<Kind> {
        match self {
            Args::None => None,
            Args::Exactly(k) => k.get(i).copied(),
            Args::OneOrMore(k) => Some(*k),
            Args::Between(_, hi, k) => (i < *hi).then_some(*k),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Args::None => "no arguments".to_string(),
            Args::Exactly(k) if k.len() == 1 => format!("one argument ({})", k[0].describe()),
            Args::Exactly(k) => format!("{} arguments", k.len()),
            Args::OneOrMore(k) => format!("one or more arguments ({})", k.describe()),
            Args::Between(lo, hi, k) => format!("{lo} to {hi} arguments ({})", k.describe()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: &'static str,
    pub ctx: Ctx,
    /// How the man page shows the arguments (`"NAME"`, `"ARG"...`).
    pub synopsis: &'static str,
    pub args: Args,
    pub props: &'static [PropSpec],
    /// Whether any property name is accepted (`env KEY="VALUE"`).
    pub any_props: bool,
    /// The block this node opens, if it takes one.
    pub children: Option<Ctx>,
    /// Whether the node may appear more than once in its place.
    pub repeatable: bool,
    pub doc: &'static str,
}

impl NodeSpec {
    pub fn prop(&self, name: &str) -> Option<&'static PropSpec> {
        self.props.iter().find(|p| p.name == name)
    }
}

const fn p(name: &'static str, kind: Kind, doc: &'static str) -> PropSpec {
    PropSpec { name, kind, doc }
}

const ON_FAIL: PropSpec = p(
    "on-fail",
    Kind::Str,
    "\"fail\" or \"ignore\": what a failing hook does",
);
const TIMEOUT: PropSpec = p(
    "timeout",
    Kind::Duration,
    "how long the hook may run (default \"30s\")",
);
const PORT: PropSpec = p(
    "port",
    Kind::PortOrRange,
    "a port or a range \"N-M\"; none means every port",
);
const PROTO: PropSpec = p("proto", Kind::Str, "\"tcp\" or \"udp\"; none means both");
const STR: &[Kind] = &[Kind::Str];
const DURATION: &[Kind] = &[Kind::Duration];

/// Every node of the language.
pub static NODES: &[NodeSpec] = &[
    // The top level of an app file.
    NodeSpec {
        name: "app",
        ctx: Ctx::App,
        synopsis: "\"NAME\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The app's name, a DNS label; required, once.",
    },
    NodeSpec {
        name: "network",
        ctx: Ctx::App,
        synopsis: "",
        args: Args::None,
        props: &[p("subnet", Kind::Str, "the app's IPv4 subnet in CIDR notation")],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The app's network; without it a free /24 is taken from the host's subnet pool.",
    },
    NodeSpec {
        name: "egress",
        ctx: Ctx::App,
        synopsis: "\"allow\"|\"deny\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The app-wide default for traffic to the outside world (default \"allow\").",
    },
    NodeSpec {
        name: "secret",
        ctx: Ctx::App,
        synopsis: "\"NAME\"",
        args: Args::Exactly(STR),
        props: &[
            p("from-file", Kind::Str, "read the secret from this host file"),
            p("from-env", Kind::Str, "read the secret from this environment variable"),
            p("generate", Kind::Int, "derive a secret of this many characters from the host key"),
        ],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A secret of the app, with exactly one source.",
    },
    NodeSpec {
        name: "volume",
        ctx: Ctx::App,
        synopsis: "\"NAME\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A named, persistent volume belonging to the app.",
    },
    NodeSpec {
        name: "container",
        ctx: Ctx::App,
        synopsis: "\"NAME\" [replicas=N] { ... }",
        args: Args::Exactly(STR),
        props: &[p("replicas", Kind::Int, "run N instances, NAME-1 to NAME-N, each with its own address; NAME resolves to all of them (default 1)")],
        any_props: false,
        children: Some(Ctx::Container),
        repeatable: true,
        doc: "A container of the app; one or more.",
    },
    NodeSpec {
        name: "on",
        ctx: Ctx::App,
        synopsis: "\"up\"|\"down\"|\"failed\" { run \"ARG\"... }",
        args: Args::Exactly(STR),
        props: &[ON_FAIL, TIMEOUT],
        any_props: false,
        children: Some(Ctx::Hook),
        repeatable: true,
        doc: "An app-level hook: commands run on the host when the app is up, down or failed.",
    },
    NodeSpec {
        name: "label",
        ctx: Ctx::App,
        synopsis: "\"KEY\" \"VALUE\"",
        args: Args::Exactly(&[Kind::Str, Kind::Scalar]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A label of the app, shown by `ps --format json`; a later key wins.",
    },
    // Inside `container`.
    NodeSpec {
        name: "profile",
        ctx: Ctx::Container,
        synopsis: "\"NAME\"...",
        args: Args::OneOrMore(Kind::Str),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Runs the container only when `up --profile` names one of these profiles; without it the container always runs.",
    },
    NodeSpec {
        name: "label",
        ctx: Ctx::Container,
        synopsis: "\"KEY\" \"VALUE\"",
        args: Args::Exactly(&[Kind::Str, Kind::Scalar]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A label, shown by `ps --format json` and matched by `ps --filter label=KEY=VALUE`; a later key wins.",
    },
    NodeSpec {
        name: "alias",
        ctx: Ctx::Container,
        synopsis: "\"NAME\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Another name the app's containers resolve to this container, as its own name.",
    },
    NodeSpec {
        name: "extra-host",
        ctx: Ctx::Container,
        synopsis: "\"NAME\" \"ADDRESS\"",
        args: Args::Exactly(&[Kind::Str, Kind::Str]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A line added to the container's /etc/hosts: NAME resolves to ADDRESS (IPv4 or IPv6).",
    },
    NodeSpec {
        name: "dns",
        ctx: Ctx::Container,
        synopsis: "\"ADDRESS\"...",
        args: Args::OneOrMore(Kind::Str),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Nameservers (IPv4 or IPv6) of the container's /etc/resolv.conf instead of the host's.",
    },
    NodeSpec {
        name: "network",
        ctx: Ctx::Container,
        synopsis: "\"NAME\"|\"none\"|\"host\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Joins a named network: its members reach each other on every port. \"none\" instead gives the container loopback only, on no network; \"host\" puts it in the host's network namespace.",
    },
    NodeSpec {
        name: "pid",
        ctx: Ctx::Container,
        synopsis: "\"host\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "\"host\": the host's PID namespace; the container sees and may signal the host's processes.",
    },
    NodeSpec {
        name: "device",
        ctx: Ctx::Container,
        synopsis: "\"/dev/PATH\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Makes a host device, such as /dev/fuse, available at the same path in the container.",
    },
    NodeSpec {
        name: "log",
        ctx: Ctx::Container,
        synopsis: "",
        args: Args::None,
        props: &[
            p("size", Kind::Size, "the log's size before rotation (default: the host config's log-size)"),
            p("files", Kind::Int, "how many rotated files are kept besides the current one (default 1)"),
        ],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The container's log rotation.",
    },
    NodeSpec {
        name: "image",
        ctx: Ctx::Container,
        synopsis: "\"REF\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The image: a registry reference, or oci:PATH[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]; required.",
    },
    NodeSpec {
        name: "command",
        ctx: Ctx::Container,
        synopsis: "\"ARG\"...",
        args: Args::OneOrMore(Kind::Scalar),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "Replaces the image's Cmd.",
    },
    NodeSpec {
        name: "entrypoint",
        ctx: Ctx::Container,
        synopsis: "\"ARG\"...",
        args: Args::OneOrMore(Kind::Scalar),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "Replaces the image's Entrypoint.",
    },
    NodeSpec {
        name: "workdir",
        ctx: Ctx::Container,
        synopsis: "\"/PATH\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The working directory, an absolute path in the container.",
    },
    NodeSpec {
        name: "user",
        ctx: Ctx::Container,
        synopsis: "\"UID[:GID]\"|\"NAME\"",
        args: Args::Exactly(&[Kind::Scalar]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The user the process runs as: numeric ids or a name from the image's /etc/passwd.",
    },
    NodeSpec {
        name: "hostname",
        ctx: Ctx::Container,
        synopsis: "\"NAME\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The container's hostname (default: the container's name).",
    },
    NodeSpec {
        name: "env",
        ctx: Ctx::Container,
        synopsis: "KEY=\"VALUE\"...",
        args: Args::None,
        props: &[],
        any_props: true,
        children: None,
        repeatable: true,
        doc: "Environment variables, one property each; a later key wins.",
    },
    NodeSpec {
        name: "env-file",
        ctx: Ctx::Container,
        synopsis: "\"PATH\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Environment variables from a file of KEY=VALUE lines (the .env format), read at load.",
    },
    NodeSpec {
        name: "file",
        ctx: Ctx::Container,
        synopsis: "\"/PATH\" [\"CONTENT\"]",
        args: Args::Between(1, 2, Kind::Str),
        props: &[
            p("from", Kind::Str, "copy the content from this host file instead of an inline string"),
            p("mode", Kind::Mode, "the file's mode, an octal literal (default 0o644)"),
            p("owner", Kind::Str, "\"UID:GID\" owning the file (default 0:0)"),
            p("template", Kind::Bool, "render {{ ip.NAME }}, {{ name.NAME }} and {{ secret.NAME }} at start"),
        ],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A pre-boot file written into the container's filesystem before its process starts.",
    },
    NodeSpec {
        name: "secret",
        ctx: Ctx::Container,
        synopsis: "\"NAME\"",
        args: Args::Exactly(STR),
        props: &[
            p("at", Kind::Str, "the file's path in the container (default /run/secrets/NAME)"),
            p("mode", Kind::Mode, "the file's mode, an octal literal (default 0o400)"),
            p("owner", Kind::Str, "\"UID:GID\" owning the file (default: the container's user)"),
            p("env", Kind::Str, "hand the secret over in this environment variable instead of a file"),
        ],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Gives the container one of the app's secrets, as a file on a tmpfs or, if asked, a variable.",
    },
    NodeSpec {
        name: "mount",
        ctx: Ctx::Container,
        synopsis: "\"VOLUME\"|\"./HOST/PATH\"",
        args: Args::Exactly(STR),
        props: &[
            p("at", Kind::Str, "the absolute path in the container; required"),
            p("read-only", Kind::Bool, "mount read-only"),
            p("create", Kind::Bool, "a host path that does not exist is made as an empty folder, as `docker run -v` does"),
        ],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Mounts a named volume, or a host path (starting with ./, ../ or /) as a bind mount.",
    },
    NodeSpec {
        name: "tmpfs",
        ctx: Ctx::Container,
        synopsis: "\"/PATH\"",
        args: Args::Exactly(STR),
        props: &[p("size", Kind::Size, "the tmpfs's size limit (default: half of the host's RAM, the kernel's default)")],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A tmpfs mounted at an absolute path in the container.",
    },
    NodeSpec {
        name: "userns",
        ctx: Ctx::Container,
        synopsis: "\"auto\"|\"host\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "\"auto\": a user namespace of its own, root inside is an unused id on the host; \"host\": the host's ids (default: the host config's `userns`).",
    },
    NodeSpec {
        name: "shm-size",
        ctx: Ctx::Container,
        synopsis: "\"SIZE\"",
        args: Args::Exactly(&[Kind::Size]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The size limit of the container's /dev/shm (default 64M, as Docker).",
    },
    NodeSpec {
        name: "publish",
        ctx: Ctx::Container,
        synopsis: "HOSTPORT",
        args: Args::Exactly(&[Kind::Int]),
        props: &[
            p("to", Kind::Int, "the container's port; required"),
            p("host-ip", Kind::Str, "the host address to listen on (default 0.0.0.0: every network of the host)"),
            p("proto", Kind::Str, "\"tcp\" (default) or \"udp\""),
        ],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Publishes a container port on a host port; 0 takes a free host port.",
    },
    NodeSpec {
        name: "allow",
        ctx: Ctx::Container,
        synopsis: "",
        args: Args::None,
        props: &[p("from", Kind::Str, "a container of the app, \"host\", \"any\" or a CIDR; required"), PORT, PROTO],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Admits inbound connections; everything else is dropped.",
    },
    NodeSpec {
        name: "egress",
        ctx: Ctx::Container,
        synopsis: "\"allow\"|\"deny\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "Overrides the app's egress default for this container.",
    },
    NodeSpec {
        name: "allow-egress",
        ctx: Ctx::Container,
        synopsis: "",
        args: Args::None,
        props: &[p("to", Kind::Str, "a CIDR or \"host\"; required"), PORT, PROTO],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Admits outbound connections to a destination beyond the app's own containers.",
    },
    NodeSpec {
        name: "after",
        ctx: Ctx::Container,
        synopsis: "\"CONTAINER\"",
        args: Args::Exactly(STR),
        props: &[
            p("until", Kind::Str, "\"started\" (default), \"healthy\" or \"completed\""),
            p("restart", Kind::Bool, "restart this container whenever the other one restarts"),
        ],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Starts this container only once another one is started, healthy or completed.",
    },
    NodeSpec {
        name: "health",
        ctx: Ctx::Container,
        synopsis: "{ ... }",
        args: Args::None,
        props: &[],
        any_props: false,
        children: Some(Ctx::Health),
        repeatable: false,
        doc: "The container's health check: exactly one probe and its timing.",
    },
    NodeSpec {
        name: "restart",
        ctx: Ctx::Container,
        synopsis: "\"no\"|\"always\"|\"on-failure\"|\"unless-stopped\"",
        args: Args::Exactly(STR),
        props: &[p("max", Kind::Int, "give up after this many restarts")],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The restart policy (default \"no\").",
    },
    NodeSpec {
        name: "on",
        ctx: Ctx::Container,
        synopsis: "\"EVENT\" { exec \"ARG\"...; run \"ARG\"... }",
        args: Args::Exactly(STR),
        props: &[ON_FAIL, TIMEOUT],
        any_props: false,
        children: Some(Ctx::Hook),
        repeatable: true,
        doc: "A hook on started, healthy, unhealthy, stopping, exited or failed.",
    },
    NodeSpec {
        name: "limits",
        ctx: Ctx::Container,
        synopsis: "",
        args: Args::None,
        props: &[
            p("memory", Kind::Size, "the memory limit"),
            p("cpus", Kind::Number, "CPUs' worth of time, e.g. 0.5"),
            p("pids", Kind::Int, "the most processes (default 4096)"),
        ],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "Resource limits.",
    },
    NodeSpec {
        name: "ulimit",
        ctx: Ctx::Container,
        synopsis: "\"NAME\"",
        args: Args::Exactly(STR),
        props: &[
            p("soft", Kind::Int, "the soft limit; required"),
            p("hard", Kind::Int, "the hard limit (default: the soft limit)"),
        ],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A resource limit (rlimit) such as nofile or nproc.",
    },
    NodeSpec {
        name: "cap-add",
        ctx: Ctx::Container,
        synopsis: "\"NAME\"...",
        args: Args::OneOrMore(Kind::Str),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Capabilities added to the default set (NET_ADMIN or CAP_NET_ADMIN).",
    },
    NodeSpec {
        name: "cap-drop",
        ctx: Ctx::Container,
        synopsis: "\"NAME\"...",
        args: Args::OneOrMore(Kind::Str),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Capabilities removed from the default set.",
    },
    NodeSpec {
        name: "seccomp",
        ctx: Ctx::Container,
        synopsis: "\"default\"|\"unconfined\"|\"PATH.json\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The seccomp profile: Docker's default, none, or a Docker-format JSON file.",
    },
    NodeSpec {
        name: "sysctl",
        ctx: Ctx::Container,
        synopsis: "\"KEY\" \"VALUE\"",
        args: Args::Exactly(&[Kind::Str, Kind::Scalar]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A namespaced kernel parameter (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*).",
    },
    NodeSpec {
        name: "stop-signal",
        ctx: Ctx::Container,
        synopsis: "\"SIGNAL\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The signal that asks the process to stop (default: the image's StopSignal, else SIGTERM).",
    },
    NodeSpec {
        name: "stop-timeout",
        ctx: Ctx::Container,
        synopsis: "\"DURATION\"",
        args: Args::Exactly(DURATION),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "How long to wait after the stop signal before SIGKILL (default 10s).",
    },
    NodeSpec {
        name: "group-add",
        ctx: Ctx::Container,
        synopsis: "\"GROUP\"...",
        args: Args::OneOrMore(Kind::Scalar),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Supplementary groups: names from the image's /etc/group, or numbers.",
    },
    flag("read-only", "Mounts the container's root filesystem read-only."),
    flag("init", "Runs tfctl's minimal PID 1, which forwards signals and reaps zombies."),
    flag("sleep", "Boots the container but starts its process only on `tfctl start`."),
    flag("one-shot", "A task expected to run to completion."),
    flag("privileged", "Every capability tfctl holds, no seccomp filter, /proc and /sys unmasked and /sys writable: root in it is root on the host."),
    flag("tty", "Gives the process a pseudo-terminal as its stdin, stdout and stderr."),
    // Inside `health`.
    NodeSpec {
        name: "exec",
        ctx: Ctx::Health,
        synopsis: "\"ARG\"...",
        args: Args::OneOrMore(Kind::Scalar),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "Probe: a command run in the container; healthy when it exits 0.",
    },
    NodeSpec {
        name: "http",
        ctx: Ctx::Health,
        synopsis: "\"URL\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "Probe: an HTTP GET from the container's network namespace; healthy on 2xx or 3xx.",
    },
    NodeSpec {
        name: "tcp",
        ctx: Ctx::Health,
        synopsis: "PORT",
        args: Args::Exactly(&[Kind::Int]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "Probe: a TCP connection to this port of the container.",
    },
    timing("interval", "Time between probes (default 5s)."),
    timing("timeout", "How long one probe may take (default 3s)."),
    NodeSpec {
        name: "retries",
        ctx: Ctx::Health,
        synopsis: "N",
        args: Args::Exactly(&[Kind::Int]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "Consecutive failures that make the container unhealthy (default 3).",
    },
    timing("start-period", "Failures during this time after start do not count (default 0s)."),
    // Inside `on`.
    NodeSpec {
        name: "exec",
        ctx: Ctx::Hook,
        synopsis: "\"ARG\"...",
        args: Args::OneOrMore(Kind::Scalar),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Runs a command inside the container (started, healthy, unhealthy and stopping hooks).",
    },
    NodeSpec {
        name: "run",
        ctx: Ctx::Hook,
        synopsis: "\"ARG\"...",
        args: Args::OneOrMore(Kind::Scalar),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "Runs a command on the host, in the app file's folder.",
    },
    // tfctl's config file.
    NodeSpec {
        name: "insecure-registry",
        ctx: Ctx::Config,
        synopsis: "\"HOST:PORT\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: true,
        doc: "A registry reached over plain HTTP.",
    },
    NodeSpec {
        name: "subnet-pool",
        ctx: Ctx::Config,
        synopsis: "\"CIDR\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The pool apps' /24 subnets are taken from (default 10.89.0.0/16).",
    },
    config_size("log-size", "A container's log size before rotation (default 10M)."),
    NodeSpec {
        name: "userns",
        ctx: Ctx::Config,
        synopsis: "\"auto\"|\"host\"",
        args: Args::Exactly(STR),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc: "The user namespace of containers whose app file does not say (default \"host\").",
    },
    config_size("max-layer-size", "The most one image layer may unpack to (default 8G)."),
    config_size("max-image-size", "The most the layers of one pull may unpack to together (default 32G)."),
];

/// A host setting that takes one size.
const fn config_size(name: &'static str, doc: &'static str) -> NodeSpec {
    NodeSpec {
        name,
        ctx: Ctx::Config,
        synopsis: "\"SIZE\"",
        args: Args::Exactly(&[Kind::Size]),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc,
    }
}

const fn flag(name: &'static str, doc: &'static str) -> NodeSpec {
    NodeSpec {
        name,
        ctx: Ctx::Container,
        synopsis: "",
        args: Args::None,
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc,
    }
}

const fn timing(name: &'static str, doc: &'static str) -> NodeSpec {
    NodeSpec {
        name,
        ctx: Ctx::Health,
        synopsis: "\"DURATION\"",
        args: Args::Exactly(DURATION),
        props: &[],
        any_props: false,
        children: None,
        repeatable: false,
        doc,
    }
}

/// The spec of `name` in `ctx`.
pub fn lookup(ctx: Ctx, name: &str) -> Option<&'static NodeSpec> {
    NODES.iter().find(|n| n.ctx == ctx && n.name == name)
}

/// Every node allowed in `ctx`.
pub fn nodes_in(ctx: Ctx) -> impl Iterator<Item = &'static NodeSpec> {
    NODES.iter().filter(move |n| n.ctx == ctx)
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| {
            *d <= limit
                || (c.len() >= 3 && word.starts_with(*c))
                || (word.len() >= 3 && c.starts_with(word))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_node_is_listed_twice_in_one_place() {
        for (i, a) in NODES.iter().enumerate() {
            for b in &NODES[i + 1..] {
                assert!(
                    !(a.ctx == b.ctx && a.name == b.name),
                    "{} twice in {:?}",
                    a.name,
                    a.ctx
                );
            }
        }
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let names: Vec<&str> = nodes_in(Ctx::Container).map(|n| n.name).collect();
        assert_eq!(did_you_mean("imgae", names.iter().copied()), Some("image"));
        assert_eq!(
            did_you_mean("comand", names.iter().copied()),
            Some("command")
        );
        assert_eq!(did_you_mean("zzzzzz", names.iter().copied()), None);
    }
}
