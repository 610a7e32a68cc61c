//! `tfctl oci`: the OCI runtime command line (runc's spelling), so that containerd's shim, and
//! Docker through it, can run containers with tfctl: `dockerd --add-runtime tfctl=SCRIPT`
//! where SCRIPT is `#!/bin/sh` + `exec tfctl oci "$@"`. The work is in `tfctl_runtime::oci`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use tfctl_runtime::oci::{self, create::CreateOpts, exec::ExecOpts, OciError, Root};
use tfctl_runtime::spawn::Spawner;

use crate::args::{Format, GlobalOpts};
use crate::exit::{CmdResult, Exit, Failure};

/// The OCI runtime command line, as runc spells it (for Docker's `--add-runtime`).
///
/// Containers live in `<--root>/oci/<ID>/` (containerd passes runc's own --root, e.g.
/// /run/docker/runtime-runc/moby). `create` leaves the container's process set up and waiting;
/// `start` lets it execute. To use it from Docker, make an executable script holding
/// `exec tfctl oci "$@"` and start dockerd with `--add-runtime tfctl=/path/to/script`, then
/// `docker run --runtime tfctl IMAGE`.
#[derive(Debug, Args)]
#[command(version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.1"))]
pub struct OciArgs {
    /// Write errors to this file too (as runc does; containerd reads it when a call fails).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of --log: text lines, or JSON lines as containerd reads them.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Accepted for runc compatibility; tfctl places cgroups itself (cgroupsPath is not used).
    #[arg(long)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Create a container from a bundle: its process set up, waiting for `start`.
    Create(CreateArgs),
    /// Let a created container's process execute.
    Start { id: String },
    /// Print the container's state (the runtime spec's JSON document).
    State { id: String },
    /// Send a signal (default TERM) to the container's process.
    Kill {
        /// Signal every process in the container's cgroup.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Remove a stopped container (a running one with --force, which kills it).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container, wait for it and delete it; exits with its status.
    Run(CreateArgs),
    /// Run another process in a running container.
    Exec(ExecArgs),
    /// List the containers.
    List {
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List the container's processes (pids; with --format json, a JSON array).
    Ps { id: String },
    /// Print the runtime spec's features document.
    Features,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle folder (holding config.json and the root folder).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Write the container process's pid here.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to, when process.terminal is true.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility: tfctl always uses pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility: tfctl passes no descriptor beyond stdio.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A runtime-spec `process` object (JSON) describing the process.
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a terminal (sent to --console-socket).
    #[arg(short, long)]
    pub tty: bool,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Accepted for runc compatibility: tfctl passes no descriptor beyond stdio.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
    /// The command and its arguments, without --process.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl OciArgs {
    /// Whether the verb starts processes (then `main` starts the spawner first).
    pub fn needs_spawner(&self) -> bool {
        matches!(self.verb, Verb::Create(_) | Verb::Run(_) | Verb::Exec(_))
    }
}

pub fn oci(args: OciArgs, global: &GlobalOpts, spawner: Option<Spawner>) -> CmdResult {
    let root = Root(global.root.join("oci"));
    let result = verb(args.verb, &root, global.format, spawner);
    if let (Err(Some(e)), Some(log)) = (&result, &args.log) {
        write_log(log, args.log_format, &e.to_string());
    }
    result.map_err(|e| match e {
        Some(e) => Failure::new(Exit::Failed, miette::Report::msg(e.to_string())),
        None => Failure::silent(Exit::Failed),
    })
    .and_then(|code| if code == 0 { Ok(()) } else { Err(Failure::silent(Exit::Status(code.clamp(0, 255) as u8))) })
}

fn verb(verb: Verb, root: &Root, format: Format, spawner: Option<Spawner>) -> Result<i32, Option<OciError>> {
    let spawner = || spawner.expect("main starts the spawner for create, run and exec");
    match verb {
        Verb::Create(a) => {
            let opts = CreateOpts { bundle: a.bundle, pid_file: a.pid_file, console_socket: a.console_socket };
            let s = spawner();
            oci::create::create(root, &a.id, &opts, &s)?;
            // The container's process outlives us: no need to wait for the spawner to go.
            s.release();
        }
        Verb::Run(a) => {
            let opts = CreateOpts { bundle: a.bundle, pid_file: a.pid_file, console_socket: a.console_socket };
            return Ok(oci::run::run(root, &a.id, &opts, &spawner())?);
        }
        Verb::Start { id } => oci::start::start(root, &id)?,
        Verb::State { id } => print_json(&serde_json::to_value(oci::state::state(root, &id)?).unwrap_or_default()),
        Verb::Kill { all, id, signal } => oci::kill::kill(root, &id, oci::parse_signal(&signal)?, all)?,
        Verb::Delete { force, id } => oci::delete::delete(root, &id, force)?,
        Verb::Exec(a) => {
            let opts = ExecOpts {
                process: a.process,
                args: a.args,
                cwd: a.cwd,
                env: a.env,
                tty: a.tty,
                detach: a.detach,
                pid_file: a.pid_file,
                console_socket: a.console_socket,
            };
            let s = spawner();
            let code = oci::exec::exec(root, &a.id, &opts, &s)?;
            if opts.detach {
                s.release();
            }
            return Ok(code);
        }
        Verb::List { quiet } => {
            let all = oci::list::list(root)?;
            if format == Format::Json {
                let docs: Vec<serde_json::Value> = all
                    .iter()
                    .map(|(d, created)| {
                        let mut v = serde_json::to_value(d).unwrap_or_default();
                        v["created"] = serde_json::Value::String(created.clone());
                        v
                    })
                    .collect();
                print_json(&serde_json::Value::Array(docs));
            } else if quiet {
                for (d, _) in &all {
                    println!("{}", d.id);
                }
            } else {
                println!("{:<24} {:<8} {:<9} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
                for (d, created) in &all {
                    println!("{:<24} {:<8} {:<9} {:<40} {}", d.id, d.pid, d.status, d.bundle.display(), created);
                }
            }
        }
        Verb::Pause { id } => oci::pause::pause(root, &id, true)?,
        Verb::Resume { id } => oci::pause::pause(root, &id, false)?,
        Verb::Ps { id } => {
            let pids = oci::pause::ps(root, &id)?;
            if format == Format::Json {
                print_json(&serde_json::json!(pids));
            } else {
                for p in pids {
                    println!("{p}");
                }
            }
        }
        Verb::Features => print_json(&oci::features::features()),
    }
    Ok(0)
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// One line in runc's log format: containerd shows the last error line when a call fails.
fn write_log(path: &std::path::Path, format: LogFormat, message: &str) {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let line = match format {
        LogFormat::Json => serde_json::json!({ "level": "error", "msg": message, "time": time }).to_string(),
        LogFormat::Text => format!("time=\"{time}\" level=error msg=\"{message}\""),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}
