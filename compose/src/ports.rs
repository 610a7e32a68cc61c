//! Compose's `ports` and `expose` entries, short (`"127.0.0.1:8080:80/tcp"`, `"9000-9001:90-91"`)
//! and long (`{target, published, host_ip, protocol}`), as single host-to-container port pairs.

use serde_yaml_ng::Value;

use crate::merge::scalar_text;

/// One published port. `host` is `None` when Compose would pick a free host port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub host_ip: Option<String>,
    pub host: Option<u16>,
    pub container: u16,
    pub udp: bool,
}

/// A port (or range) a service listens on, for the allow rules of its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub first: u16,
    pub last: u16,
    pub udp: bool,
}

impl Listen {
    /// The `port=` value: `80` or `"8000-8010"`.
    pub fn kdl(&self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("\"{}-{}\"", self.first, self.last)
        }
    }
}

fn port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("`{s}` is not a port (1 to 65535)")),
    }
}

fn range(s: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("the range `{s}` ends before it starts"));
            }
            Ok((a, b))
        }
        None => port(s).map(|p| (p, p)),
    }
}

fn proto(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(false),
        "udp" => Ok(true),
        other => Err(format!("protocol `{other}`: tfctl publishes tcp and udp only")),
    }
}

/// An `expose` entry: `"3000"`, `"8000-8010"`, `"53/udp"`.
pub fn parse_expose(v: &Value) -> Result<Listen, String> {
    let text = scalar_text(v).ok_or_else(|| "an exposed port is a number or a string".to_string())?;
    let (ports, udp) = match text.split_once('/') {
        Some((p, pr)) => (p.to_string(), proto(pr)?),
        None => (text.clone(), false),
    };
    let (first, last) = range(&ports)?;
    Ok(Listen { first, last, udp })
}

/// A `ports` entry as the host/container pairs it publishes.
pub fn parse_port(v: &Value) -> Result<Vec<Publish>, String> {
    if let Value::Mapping(_) = v {
        return parse_long(v);
    }
    let text = scalar_text(v).ok_or_else(|| "a port is a number, a string or a mapping".to_string())?;
    let (spec, udp) = match text.rsplit_once('/') {
        Some((s, p)) => (s.to_string(), proto(p)?),
        None => (text.clone(), false),
    };
    // An IPv6 host address is written in brackets; IPv4 has no colons of its own.
    let (host_ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (ip, rest) = stripped.split_once("]:").ok_or_else(|| format!("`{text}`: `[` without `]:`"))?;
        (Some(ip.to_string()), rest.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec.clone()),
            3 => (Some(parts[0].to_string()), format!("{}:{}", parts[1], parts[2])),
            _ => {
                let n = parts.len();
                (Some(parts[..n - 2].join(":")), format!("{}:{}", parts[n - 2], parts[n - 1]))
            }
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h.to_string()).filter(|h| !h.is_empty()), c.to_string()),
        None => (None, rest.clone()),
    };
    pairs(host_ip, host.as_deref(), &container, udp).map_err(|e| format!("`{text}`: {e}"))
}

fn parse_long(v: &Value) -> Result<Vec<Publish>, String> {
    let target = v.get("target").and_then(scalar_text).ok_or("a long-syntax port needs `target`")?;
    let published = v.get("published").and_then(scalar_text).filter(|p| !p.is_empty());
    let host_ip = v.get("host_ip").and_then(scalar_text);
    let udp = match v.get("protocol").and_then(scalar_text) {
        Some(p) => proto(&p)?,
        None => false,
    };
    pairs(host_ip, published.as_deref(), &target, udp)
}

fn pairs(host_ip: Option<String>, host: Option<&str>, container: &str, udp: bool) -> Result<Vec<Publish>, String> {
    let (c0, c1) = range(container)?;
    let n = c1 - c0;
    let hosts: Vec<Option<u16>> = match host {
        None => vec![None; n as usize + 1],
        Some(h) => {
            let (h0, h1) = range(h)?;
            if h1 - h0 == n {
                (h0..=h1).map(Some).collect()
            } else if n == 0 {
                // A host range for one container port: Compose takes the first free one.
                return Err(format!(
                    "host ports {h0}-{h1} for one container port: tfctl publishes one chosen port; write one"
                ));
            } else {
                return Err(format!("host range {h0}-{h1} and container range {c0}-{c1} differ in length"));
            }
        }
    };
    Ok((c0..=c1)
        .zip(hosts)
        .map(|(container, host)| Publish { host_ip: host_ip.clone(), host, container, udp })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<Publish> {
        parse_port(&Value::String(s.into())).unwrap()
    }

    fn one(host_ip: Option<&str>, host: Option<u16>, container: u16, udp: bool) -> Publish {
        Publish { host_ip: host_ip.map(str::to_string), host, container, udp }
    }

    #[test]
    fn short_syntax() {
        assert_eq!(p("3000"), vec![one(None, None, 3000, false)]);
        assert_eq!(p("8080:80"), vec![one(None, Some(8080), 80, false)]);
        assert_eq!(p("127.0.0.1:8080:80/udp"), vec![one(Some("127.0.0.1"), Some(8080), 80, true)]);
        assert_eq!(p("127.0.0.1::80"), vec![one(Some("127.0.0.1"), None, 80, false)]);
        assert_eq!(p("[::1]:6000:6000"), vec![one(Some("::1"), Some(6000), 6000, false)]);
        assert_eq!(
            p("9000-9001:90-91"),
            vec![one(None, Some(9000), 90, false), one(None, Some(9001), 91, false)]
        );
        assert!(parse_port(&Value::String("80:99999".into())).is_err());
        assert!(parse_port(&Value::String("80:80/sctp".into())).is_err());
    }

    #[test]
    fn long_syntax_and_numbers() {
        let v: Value = serde_yaml_ng::from_str("{target: 80, published: '8080', host_ip: 127.0.0.1, protocol: udp}").unwrap();
        assert_eq!(parse_port(&v).unwrap(), vec![one(Some("127.0.0.1"), Some(8080), 80, true)]);
        let v: Value = serde_yaml_ng::from_str("5432").unwrap();
        assert_eq!(parse_port(&v).unwrap(), vec![one(None, None, 5432, false)]);
        assert_eq!(parse_expose(&Value::String("53/udp".into())).unwrap(), Listen { first: 53, last: 53, udp: true });
    }
}
