//! The value formats of app files: names, durations, sizes, ports, owners, signals,
//! capabilities, sysctl keys and image references. Each parser says what is wrong and how to
//! write it instead.

use std::time::Duration;

use crate::model::{Owner, PortRange};
use crate::reader::normalize;

/// Why a value was refused: a stable code, what is wrong and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub code: &'static str,
    pub message: String,
    pub help: String,
}

fn bad(code: &'static str, message: impl Into<String>, help: impl Into<String>) -> Bad {
    Bad {
        code,
        message: message.into(),
        help: help.into(),
    }
}

/// App, container, volume and secret names: DNS labels.
pub fn check_name(what: &str, s: &str) -> Result<(), Bad> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        return Ok(());
    }
    let suggestion: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(63)
        .collect();
    let mut help =
        "names are DNS labels: lowercase letters, digits and `-`, starting and ending with a \
                    letter or digit, at most 63 characters"
            .to_string();
    if !suggestion.is_empty() && suggestion != s && check_name(what, &suggestion).is_ok() {
        help.push_str(&format!(" (e.g. \"{suggestion}\")"));
    }
    Err(bad(
        "tfctl::invalid-name",
        format!("invalid {what} name `{s}`"),
        help,
    ))
}

/// `"500ms"`, `"5s"`, `"1m30s"`, `"1.5h"`: numbers with units h, m, s, ms; 1 ms precision.
pub fn parse_duration(s: &str) -> Result<Duration, Bad> {
    let fail = || {
        bad(
            "tfctl::invalid-duration",
            format!("invalid duration `{s}`"),
            "write a number with a unit: \"500ms\", \"5s\", \"1m30s\", \"2h\"",
        )
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(fail());
    }
    let mut ms = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(fail());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| fail())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            _ => return Err(fail()),
        };
        rest = &rest[unit_len..];
        ms += n * factor;
    }
    if !ms.is_finite() || ms > 1e15 {
        return Err(fail());
    }
    Ok(Duration::from_millis(ms.round() as u64))
}

/// `"64M"`, `"1G"`, `"512k"`, `"100"`: a number and an optional binary unit (K, M, G, T, with an
/// optional `B`/`iB`), case-insensitive, as Docker reads them.
pub fn parse_size(s: &str) -> Result<u64, Bad> {
    let fail = || {
        bad(
            "tfctl::invalid-size",
            format!("invalid size `{s}`"),
            "write a number with an optional unit K, M, G or T: \"64M\", \"1G\"",
        )
    };
    let t = s.trim();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..num_len].parse().map_err(|_| fail())?;
    let unit = t[num_len..].trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let factor: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(fail()),
    };
    let bytes = n * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(fail());
    }
    let bytes = bytes.round() as u64;
    if bytes == 0 {
        return Err(bad(
            "tfctl::not-positive",
            format!("size `{s}` is zero"),
            "a size must be more than 0",
        ));
    }
    Ok(bytes)
}

/// A port 1-65535; `allow_zero` for a `publish` host port.
pub fn check_port(n: i128, allow_zero: bool) -> Result<u16, Bad> {
    match u16::try_from(n) {
        Ok(0) if allow_zero => Ok(0),
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad(
            "tfctl::invalid-port",
            format!("port {n} is out of range"),
            if allow_zero {
                "ports go from 1 to 65535; 0 takes a free host port"
            } else {
                "ports go from 1 to 65535"
            },
        )),
    }
}

/// `"N-M"` or `"N"`.
pub fn parse_port_range(s: &str) -> Result<PortRange, Bad> {
    let fail = || {
        bad(
            "tfctl::invalid-port",
            format!("invalid port range `{s}`"),
            "write a port (5432) or a range (\"8000-8099\")",
        )
    };
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: i128 = a.trim().parse().map_err(|_| fail())?;
    let b: i128 = b.trim().parse().map_err(|_| fail())?;
    let start = check_port(a, false)?;
    let end = check_port(b, false)?;
    if end < start {
        return Err(bad(
            "tfctl::invalid-port-range",
            format!("port range `{s}` ends before it starts"),
            format!("write it as \"{end}-{start}\""),
        ));
    }
    Ok(PortRange { start, end })
}

/// `"UID:GID"`, numeric.
pub fn parse_owner(s: &str) -> Result<Owner, Bad> {
    let fail = || {
        bad(
            "tfctl::invalid-owner",
            format!("invalid owner `{s}`"),
            "write numeric ids as \"UID:GID\", e.g. \"1000:1000\"",
        )
    };
    let (u, g) = s.split_once(':').ok_or_else(fail)?;
    // 2^32-1 is -1 to chown: "leave unchanged".
    let id = |p: &str| p.parse::<u32>().ok().filter(|n| *n != u32::MAX).ok_or_else(fail);
    Ok(Owner { uid: id(u)?, gid: id(g)? })
}

/// `"UID[:GID]"` or a user name.
pub fn check_user(s: &str) -> Result<(), Bad> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 32
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'$'))
    };
    let ok = match s.split_once(':') {
        Some((u, g)) => part_ok(u) && part_ok(g),
        None => part_ok(s),
    };
    if s.split(':').any(|p| p.parse::<u32>() == Ok(u32::MAX)) {
        return Err(bad(
            "tfctl::invalid-user",
            format!("invalid user `{s}`: 4294967295 is not a usable id (the kernel reads it as -1, \"leave unchanged\")"),
            "use another UID or GID",
        ));
    }
    if ok {
        Ok(())
    } else {
        Err(bad(
            "tfctl::invalid-user",
            format!("invalid user `{s}`"),
            "write \"UID\", \"UID:GID\" or a user name from the image's /etc/passwd",
        ))
    }
}

pub fn check_hostname(s: &str) -> Result<(), Bad> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(bad(
            "tfctl::invalid-hostname",
            format!("invalid hostname `{s}`"),
            "a hostname is at most 64 characters of letters, digits, `-` and `.`",
        ))
    }
}

/// A host device path (`device`): under /dev, absolute, without `..`.
pub fn check_device(s: &str) -> Result<(), Bad> {
    let ok = s.starts_with("/dev/")
        && s.len() > "/dev/".len()
        && !s.split('/').any(|p| p == "..")
        && !s.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "tfctl::invalid-device",
            format!("`{s}` is not a device path"),
            "write the host device's path under /dev, e.g. \"/dev/fuse\"",
        ))
    }
}

/// An absolute path inside the container.
pub fn check_container_path(s: &str) -> Result<(), Bad> {
    if !s.starts_with('/') {
        return Err(bad(
            "tfctl::relative-path",
            format!("`{s}` is not an absolute path"),
            format!(
                "paths inside the container start with `/`: write \"/{}\"",
                s.trim_start_matches("./")
            ),
        ));
    }
    if s.split('/').any(|c| c == "..") || s.contains('\0') {
        return Err(bad(
            "tfctl::invalid-path",
            format!("`{s}` contains `..`"),
            "write the path without `..` components",
        ));
    }
    Ok(())
}

const SIGNALS: &[&str] = &[
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// A signal name (`SIGTERM`, `TERM`, `term`) in its canonical form.
pub fn parse_signal(s: &str) -> Result<String, Bad> {
    let up = s.to_ascii_uppercase();
    let full = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if SIGNALS.contains(&full.as_str()) {
        return Ok(full);
    }
    let hint = crate::vocab::did_you_mean(&full, SIGNALS.iter().copied())
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    Err(bad(
        "tfctl::invalid-signal",
        format!("unknown signal `{s}`"),
        format!("{hint}write a signal name such as \"SIGTERM\", \"SIGINT\" or \"SIGQUIT\""),
    ))
}

const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability name (`NET_ADMIN`, `CAP_NET_ADMIN`, any case) as `CAP_NET_ADMIN`; `ALL` stays.
pub fn parse_capability(s: &str) -> Result<String, Bad> {
    let up = s.to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    if CAPABILITIES.contains(&bare) {
        return Ok(format!("CAP_{bare}"));
    }
    let hint = crate::vocab::did_you_mean(bare, CAPABILITIES.iter().copied())
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    Err(bad(
        "tfctl::invalid-capability",
        format!("unknown capability `{s}`"),
        format!("{hint}write a Linux capability such as \"NET_ADMIN\" or \"SYS_PTRACE\" (see capabilities(7))"),
    ))
}

/// Sysctl keys a container may set: those the kernel namespaces per container, as Docker allows.
pub fn check_sysctl(key: &str) -> Result<(), Bad> {
    let well_formed = !key.is_empty()
        && key.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        });
    let namespaced = key.starts_with("kernel.msg")
        || key == "kernel.sem"
        || key.starts_with("kernel.shm")
        || (key.starts_with("fs.mqueue.") && key.len() > "fs.mqueue.".len())
        || (key.starts_with("net.") && key.len() > "net.".len());
    if well_formed && namespaced {
        return Ok(());
    }
    Err(bad(
        "tfctl::invalid-sysctl",
        format!("sysctl `{key}` cannot be set per container"),
        "only keys the kernel keeps per container may be set: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*",
    ))
}

/// An IPv4 or IPv6 address (`add-host`, `dns`).
pub fn parse_ip(s: &str) -> Result<std::net::IpAddr, Bad> {
    s.parse().map_err(|_| {
        bad(
            "tfctl::invalid-address",
            format!("`{s}` is not an IP address"),
            "write an IPv4 or IPv6 address, e.g. \"192.0.2.10\"",
        )
    })
}

/// A `group-add` entry: a group name or number (never `:` or `,`, which mean other things in
/// /etc/group).
pub fn check_group(s: &str) -> Result<(), Bad> {
    if !s.is_empty() && !s.contains([':', ',', '\n', '\0']) {
        return Ok(());
    }
    Err(bad(
        "tfctl::invalid-group",
        format!("`{s}` is not a group name or number"),
        "write a group the image's /etc/group defines, such as \"audio\", or a number",
    ))
}

pub fn check_ulimit(name: &str) -> Result<(), Bad> {
    const NAMES: &[&str] = &[
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if NAMES.contains(&name) {
        return Ok(());
    }
    let hint = crate::vocab::did_you_mean(name, NAMES.iter().copied())
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    Err(bad(
        "tfctl::invalid-ulimit",
        format!("unknown resource limit `{name}`"),
        format!("{hint}write one of: {}", NAMES.join(", ")),
    ))
}

/// Checks an image reference's syntax with the reference parser and makes local source paths
/// absolute against `dir`. Registry references stay as written (the puller canonicalises them).
pub fn check_image(s: &str, dir: &std::path::Path) -> Result<String, Bad> {
    use crate::reference::ImageSource;
    let source = ImageSource::parse(s, dir).map_err(|e| {
        bad(
            "tfctl::invalid-image",
            format!("invalid image reference: {e}"),
            "write a registry reference (\"busybox\", \"registry:5000/app:1.2\", \"name@sha256:...\") or a local \
             source: \"oci:PATH[:TAG]\", \"oci-archive:FILE[:TAG]\", \"docker-archive:FILE[:REF]\"",
        )
    })?;
    Ok(match source {
        ImageSource::Registry(_) => s.to_string(),
        ImageSource::OciLayout { path, tag } => ImageSource::OciLayout {
            path: normalize(&path),
            tag,
        }
        .to_string(),
        ImageSource::OciArchive { path, tag } => ImageSource::OciArchive {
            path: normalize(&path),
            tag,
        }
        .to_string(),
        ImageSource::DockerArchive { path, image } => ImageSource::DockerArchive {
            path: normalize(&path),
            image,
        }
        .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "5",
            "s",
            "5x",
            "1m 30s",
            "-1s",
            "1..2s",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("100").unwrap(), 100);
        for bad in ["", "M", "0", "1X", "-1M", "1e99T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_ports() {
        assert!(check_name("container", "web-1").is_ok());
        for bad in ["", "Web", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(check_name("container", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_port_range("8000-8099").unwrap(),
            PortRange {
                start: 8000,
                end: 8099
            }
        );
        assert_eq!(
            parse_port_range("53").unwrap(),
            PortRange { start: 53, end: 53 }
        );
        assert_eq!(
            parse_port_range("9-3").unwrap_err().code,
            "tfctl::invalid-port-range"
        );
        assert!(
            check_port(0, false).is_err()
                && check_port(0, true).is_ok()
                && check_port(65536, true).is_err()
        );
    }

    #[test]
    fn images() {
        let dir = std::path::Path::new("/apps/x");
        for good in [
            "busybox",
            "busybox:1.36",
            "library/busybox",
            "localhost:5000/a/b:c",
            "reg.io/x_y.z-1",
        ] {
            assert_eq!(check_image(good, dir).unwrap(), good);
        }
        let digest = format!("busybox@sha256:{}", "a".repeat(64));
        assert!(check_image(&digest, dir).is_ok());
        assert_eq!(
            check_image("oci:images/busybox", dir).unwrap(),
            "oci:/apps/x/images/busybox"
        );
        assert_eq!(check_image("oci:/abs:v1", dir).unwrap(), "oci:/abs:v1");
        for bad in [
            "",
            "Busybox",
            "a b",
            "busybox:",
            "a@sha256:12",
            "oci:",
            "a//b",
            "x:5000:1/y",
        ] {
            assert!(check_image(bad, dir).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals_caps_sysctls() {
        assert_eq!(parse_signal("term").unwrap(), "SIGTERM");
        assert!(parse_signal("SIGFOO").is_err());
        assert_eq!(parse_capability("net_admin").unwrap(), "CAP_NET_ADMIN");
        assert_eq!(
            parse_capability("CAP_SYS_PTRACE").unwrap(),
            "CAP_SYS_PTRACE"
        );
        assert!(parse_capability("NET_ADMINN")
            .unwrap_err()
            .help
            .contains("NET_ADMIN"));
        assert!(check_sysctl("net.ipv4.ip_forward").is_ok());
        assert!(check_sysctl("kernel.shmmax").is_ok());
        assert!(check_sysctl("kernel.hostname").is_err());
        assert!(check_sysctl("vm.swappiness").is_err());
    }
}
