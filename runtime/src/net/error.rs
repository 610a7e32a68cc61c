//! Errors of the network layer: each names the step, the object and what to do.

use std::io;

/// What went wrong while wiring or firewalling an app's network.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request (rtnetlink or nf_tables) was refused by the kernel.
    #[error("{what}: the kernel refused it: {source}{hint}")]
    Refused {
        /// The operation, naming the object (link, address, route, table, rule).
        what: String,
        #[source]
        source: io::Error,
        /// Advice appended to the message ("" when there is none).
        hint: &'static str,
    },
    /// Talking to netlink failed (socket, send, receive).
    #[error("netlink {step} failed: {source}")]
    Netlink {
        step: &'static str,
        #[source]
        source: io::Error,
    },
    /// A kernel answer could not be decoded.
    #[error("could not decode the kernel's answer to {what}: {detail}")]
    Decode { what: String, detail: String },
    /// Entering a network namespace or writing a sysctl in it failed.
    #[error("{what}: {source}")]
    Namespace {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A sysctl could not be read or written.
    #[error("sysctl {key}: {source} (is /proc mounted and are we root?)")]
    Sysctl {
        key: String,
        #[source]
        source: io::Error,
    },
    /// No free subnet was found.
    #[error("no free /24 in the subnet pool {pool}: every one overlaps a host route or address or another app; set `network subnet=` or a larger `subnet-pool`")]
    PoolExhausted { pool: String },
    /// The requested subnet collides with something on the host.
    #[error("subnet {subnet} overlaps {with}; choose another `network subnet=`")]
    SubnetTaken { subnet: String, with: String },
    /// A value given by the caller cannot be used.
    #[error("{0}")]
    Invalid(String),
}

impl NetError {
    pub(crate) fn refused(what: impl Into<String>, errno: i32) -> Self {
        let hint = match errno {
            libc::EEXIST => " (an object of that name exists: a previous run was not torn down; run `tfctl down` for that app)",
            libc::EPERM => " (tfctl needs root, CAP_NET_ADMIN, for networking)",
            _ => "",
        };
        NetError::Refused {
            what: what.into(),
            source: io::Error::from_raw_os_error(errno),
            hint,
        }
    }

    /// The errno behind a refusal, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Refused { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
