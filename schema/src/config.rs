//! tfctl's own config file (tfctl-config(5)): host settings, validated like app files.

use std::path::{Path, PathBuf};

use crate::diag::{self, Diagnostics};
use crate::model::HostConfig;
use crate::reader::{value_span, Cx};
use crate::vars::Vars;
use crate::vocab::Ctx;

/// Loads tfctl's config file. A missing file is the caller's choice to make (the default path is
/// optional): check `path.exists()` first and use `HostConfig::default()`.
pub fn load_config(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HostConfig, Diagnostics> {
    let text = crate::read_text(path, "config file")?;
    load_config_str(&path.display().to_string(), &text, env)
}

pub fn load_config_str(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HostConfig, Diagnostics> {
    let mut cx = Cx {
        src: diag::source(name, text),
        dir: PathBuf::from("/"),
        vars: Vars::new(env),
        diags: Diagnostics::new(),
    };
    let doc = match crate::syntax::parse(&cx.src, text) {
        Ok(doc) => doc,
        Err(problems) => {
            cx.diags.problems.extend(problems);
            return Err(crate::finish(cx.diags));
        }
    };
    let mut cfg = HostConfig::default();
    for n in cx.nodes(Some(&doc), Ctx::Config) {
        let arg = n.arg(0);
        match n.spec.name {
            "insecure-registry" => {
                if let (Some(e), Some(s)) = (arg, cx.str(arg)) {
                    match registry(&s) {
                        Some(r) => cfg.insecure_registries.push(r),
                        None => {
                            let p = cx
                                .problem("tfctl::invalid-registry", value_span(e), format!("`{s}` is not HOST:PORT"))
                                .label("not a registry address")
                                .help("write the registry as HOST:PORT, e.g. \"localhost:5000\" or \"10.0.0.5:5000\"");
                            cx.push(p);
                        }
                    }
                }
            }
            "subnet-pool" => {
                if let (Some(e), Some(s)) = (arg, cx.str(arg)) {
                    if let Some(net) = crate::network::cidr(&mut cx, e, &s) {
                        if net.prefix > 24 {
                            let p = cx
                                .problem("tfctl::invalid-cidr", value_span(e), format!("subnet pool {net} is smaller than one /24"))
                                .label("too small")
                                .help("apps take /24s from the pool: give a /24 or larger, e.g. \"10.89.0.0/16\"");
                            cx.push(p);
                        } else {
                            cfg.subnet_pool = net;
                        }
                    }
                }
            }
            "log-size" => {
                if let Some(s) = cx.size(arg, "log-size") {
                    cfg.log_size = s;
                }
            }
            "userns" => {
                if let (Some(e), Some(v)) = (arg, cx.str(arg)) {
                    if let Some(u) = userns(&mut cx, e, &v) {
                        cfg.userns = u;
                    }
                }
            }
            "max-layer-size" => {
                if let Some(s) = cx.size(arg, "max-layer-size") {
                    cfg.max_layer_size = s;
                }
            }
            "max-image-size" => {
                if let Some(s) = cx.size(arg, "max-image-size") {
                    cfg.max_image_size = s;
                }
            }
            _ => {}
        }
    }
    if cx.diags.is_empty() {
        Ok(cfg)
    } else {
        Err(crate::finish(cx.diags))
    }
}

/// `"auto"` or `"host"`, for a container's or the host's `userns`.
pub(crate) fn userns(cx: &mut crate::reader::Cx, e: &kdl::KdlEntry, v: &str) -> Option<crate::model::Userns> {
    match v {
        "auto" => Some(crate::model::Userns::Auto),
        "host" => Some(crate::model::Userns::Host),
        _ => {
            let p = cx
                .problem("tfctl::invalid-userns", crate::reader::value_span(e), format!("unknown user namespace mode `{v}`"))
                .label("not a mode")
                .help("write \"auto\" (a namespace of its own) or \"host\" (the host's ids)");
            cx.push(p);
            None
        }
    }
}

/// `HOST:PORT` (or `HOST`), lowercased: the form registries are compared in.
fn registry(s: &str) -> Option<String> {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    (host_ok && port_ok).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn reads_every_setting() {
        let cfg = load_config_str(
            "config.kdl",
            "insecure-registry \"LOCALHOST:5000\"\ninsecure-registry \"10.0.0.5:5000\"\nsubnet-pool \"10.77.0.0/16\"\nlog-size \"1M\"\n",
            &none,
        )
        .unwrap();
        assert_eq!(
            cfg.insecure_registries,
            vec!["localhost:5000", "10.0.0.5:5000"]
        );
        assert_eq!(cfg.subnet_pool.to_string(), "10.77.0.0/16");
        assert_eq!(cfg.log_size, 1 << 20);
        assert_eq!(
            load_config_str("c.kdl", "", &none).unwrap(),
            HostConfig::default()
        );
    }

    #[test]
    fn refuses_bad_settings_all_at_once() {
        let e = load_config_str(
            "c.kdl",
            "insecure-registry \"a b\"\nsubnet-pool \"10.0.0.0/28\"\nlog-size \"x\"\nlogsize 1\n",
            &none,
        )
        .unwrap_err();
        let codes: Vec<&str> = e.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [
                "tfctl::invalid-registry",
                "tfctl::invalid-cidr",
                "tfctl::invalid-size",
                "tfctl::unknown-node"
            ]
        );
    }
}
