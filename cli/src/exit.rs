//! tfctl's exit codes (documented in tfctl(1)) and the error every command returns.

use std::fmt;

// Some statuses are used only by commands still being built.
#[allow(dead_code)]
/// Process exit statuses. Values are part of tfctl's interface: scripts and CI depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// An operation failed.
    Failed,
    /// Invalid usage or app file.
    Usage,
    /// A container failed, became unhealthy, or a one-shot exited non-zero during `--wait`.
    ContainerFailed,
    /// A wait timed out.
    Timeout,
    /// `plan --detailed-exitcode` found changes.
    Changes,
    /// `run`/`exec`: tfctl's own failure after the arguments were accepted.
    RunFailed,
    /// `run`/`exec`: the command cannot be executed.
    CannotExecute,
    /// `run`/`exec`: the command was not found.
    NotFound,
    /// Interrupted by SIGINT.
    Interrupted,
    /// `run`/`exec`: the container process's own status (128+N for signal N).
    Status(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::ContainerFailed => 3,
            Exit::Timeout => 4,
            Exit::Changes => 5,
            Exit::RunFailed => 125,
            Exit::CannotExecute => 126,
            Exit::NotFound => 127,
            Exit::Interrupted => 130,
            Exit::Status(n) => n,
        }
    }
}

/// A command's failure: the exit status and what to tell the user. The report is printed once,
/// by `main`, through miette's graphical handler.
pub struct Failure {
    pub exit: Exit,
    pub report: Option<miette::Report>,
}

impl Failure {
    pub fn new(exit: Exit, report: impl Into<miette::Report>) -> Self {
        Failure { exit, report: Some(report.into()) }
    }

    #[allow(dead_code)]
    /// An exit status with nothing more to say (the output already said it).
    pub fn silent(exit: Exit) -> Self {
        Failure { exit, report: None }
    }

    pub fn msg(exit: Exit, message: impl fmt::Display + fmt::Debug + Send + Sync + 'static) -> Self {
        Failure::new(exit, miette::Report::msg(message))
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failure({:?})", self.exit)
    }
}

pub type CmdResult = Result<(), Failure>;
