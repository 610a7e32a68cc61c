//! Image references as users write them: Docker-style registry references (`busybox`,
//! `library/busybox:1.36`, `host:port/name:tag`, `name@sha256:...`) and the local sources skopeo
//! and podman understand (`oci:PATH[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]`).
//!
//! Pure syntax: nothing here touches the file system or the network. Registry references are
//! normalised to Docker Hub's canonical form (`docker.io/library/busybox:latest`) so that two
//! spellings of one image name the same store entry.

use std::fmt;
use std::path::{Path, PathBuf};

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the length of a repository name including its registry.
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the image reference is empty; write a name such as \"busybox\" or \"registry.example:5000/app:1.0\"")]
    Empty,
    #[error("image reference {reference:?} contains whitespace or a control character; remove it")]
    InvalidCharacter { reference: String },
    #[error("repository name {name:?} must be lowercase; write {lower:?}")]
    Uppercase { name: String, lower: String },
    #[error("invalid repository name component {component:?} in {reference:?}: components are lowercase letters and digits, separated by '.', '_', '__' or '-'")]
    InvalidComponent {
        reference: String,
        component: String,
    },
    #[error("invalid registry host {host:?} in {reference:?}: a host is DNS labels or an [IPv6] address, with an optional :PORT")]
    InvalidHost { reference: String, host: String },
    #[error("invalid tag {tag:?} in {reference:?}: a tag is at most 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'")]
    InvalidTag { reference: String, tag: String },
    #[error("invalid digest {digest:?} in {reference:?}: write sha256: followed by 64 lowercase hex digits")]
    InvalidDigest { reference: String, digest: String },
    #[error("repository name in {reference:?} is longer than 255 characters")]
    NameTooLong { reference: String },
    #[error("{transport}: needs a path, as in \"{transport}:{example}\"")]
    MissingPath {
        transport: &'static str,
        example: &'static str,
    },
    #[error("invalid image reference {reference:?} after docker-archive path: {source}")]
    ArchiveReference {
        reference: String,
        #[source]
        source: Box<ReferenceError>,
    },
}

/// A registry image reference in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// Registry host, with `:port` when given (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/busybox`).
    pub repository: String,
    /// The tag; `latest` when neither tag nor digest were written.
    pub tag: Option<String>,
    /// A `sha256:<hex>` digest; when present it decides what is pulled.
    pub digest: Option<String>,
}

impl ImageReference {
    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The registry host without port, lowercased (for matching `localhost`, certs, creds).
    pub fn host(&self) -> &str {
        split_port(&self.registry).0
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_registry_reference(s)
    }
}

/// Which image inside a `docker save` archive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArchiveSelector {
    /// A `RepoTags` entry of the archive's manifest, normalised like any registry reference.
    Reference(ImageReference),
    /// `@N`: the N-th image of the archive (skopeo's spelling).
    Index(usize),
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageSource {
    /// A registry, reached over the network.
    Registry(ImageReference),
    /// An OCI image layout directory; `tag` is the `org.opencontainers.image.ref.name`.
    OciLayout { path: PathBuf, tag: Option<String> },
    /// A tar archive of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `docker save` output.
    DockerArchive {
        path: PathBuf,
        image: Option<ArchiveSelector>,
    },
}

impl ImageSource {
    /// Parses `s`, resolving relative local paths against `base` (the app file's folder or the
    /// current directory). Checks syntax only: whether a path exists is the puller's business.
    pub fn parse(s: &str, base: &Path) -> Result<Self, ReferenceError> {
        if let Some(rest) = strip_transport(s, "oci:") {
            let (path, tag) = split_local(rest, "oci", "./layout:latest")?;
            let tag = tag
                .map(|t| check_tag(s, t).map(str::to_string))
                .transpose()?;
            return Ok(Self::OciLayout {
                path: base.join(path),
                tag,
            });
        }
        if let Some(rest) = strip_transport(s, "oci-archive:") {
            let (path, tag) = split_local(rest, "oci-archive", "./image.tar:latest")?;
            let tag = tag
                .map(|t| check_tag(s, t).map(str::to_string))
                .transpose()?;
            return Ok(Self::OciArchive {
                path: base.join(path),
                tag,
            });
        }
        if let Some(rest) = strip_transport(s, "docker-archive:") {
            let (path, selector) =
                split_local(rest, "docker-archive", "./image.tar:busybox:latest")?;
            let image = selector
                .map(|sel| match sel.strip_prefix('@') {
                    Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
                        .parse()
                        .map(ArchiveSelector::Index)
                        .map_err(|_| ReferenceError::InvalidTag {
                            reference: s.into(),
                            tag: sel.into(),
                        }),
                    _ => parse_registry_reference(sel)
                        .map(ArchiveSelector::Reference)
                        .map_err(|e| ReferenceError::ArchiveReference {
                            reference: sel.into(),
                            source: Box::new(e),
                        }),
                })
                .transpose()?;
            return Ok(Self::DockerArchive {
                path: base.join(path),
                image,
            });
        }
        let s = s.strip_prefix("docker://").unwrap_or(s);
        parse_registry_reference(s).map(Self::Registry)
    }

    /// True when pulling needs no network.
    pub fn is_local(&self) -> bool {
        !matches!(self, Self::Registry(_))
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_tag = |f: &mut fmt::Formatter<'_>, t: &str, p: &Path, tag: &Option<String>| {
            write!(f, "{t}:{}", p.display())?;
            match tag {
                Some(tag) => write!(f, ":{tag}"),
                None => Ok(()),
            }
        };
        match self {
            // A registry named like a transport ("oci:5000/app") needs skopeo's explicit prefix
            // to read back as a registry reference.
            Self::Registry(r) if TRANSPORTS.iter().any(|t| r.registry.starts_with(t)) => {
                write!(f, "docker://{r}")
            }
            Self::Registry(r) => r.fmt(f),
            Self::OciLayout { path, tag } => with_tag(f, "oci", path, tag),
            Self::OciArchive { path, tag } => with_tag(f, "oci-archive", path, tag),
            Self::DockerArchive { path, image } => {
                write!(f, "docker-archive:{}", path.display())?;
                match image {
                    Some(ArchiveSelector::Reference(r)) => write!(f, ":{r}"),
                    Some(ArchiveSelector::Index(n)) => write!(f, ":@{n}"),
                    None => Ok(()),
                }
            }
        }
    }
}

const TRANSPORTS: [&str; 3] = ["oci:", "oci-archive:", "docker-archive:"];

/// `s` without the transport prefix `t`, matched without regard to case (host names, which a
/// prefix could otherwise be mistaken for, are case-insensitive too).
fn strip_transport<'a>(s: &'a str, t: &str) -> Option<&'a str> {
    match s.get(..t.len()) {
        Some(head) if head.eq_ignore_ascii_case(t) => Some(&s[t.len()..]),
        _ => None,
    }
}

/// Splits `PATH[:REST]` at the first colon, as containers/image does for its local transports.
fn split_local<'a>(
    rest: &'a str,
    transport: &'static str,
    example: &'static str,
) -> Result<(&'a str, Option<&'a str>), ReferenceError> {
    let (path, tail) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(ReferenceError::MissingPath { transport, example });
    }
    Ok((path, tail.filter(|t| !t.is_empty())))
}

/// Parses a Docker-style reference and normalises it to canonical form.
pub fn parse_registry_reference(s: &str) -> Result<ImageReference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ReferenceError::InvalidCharacter {
            reference: s.into(),
        });
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(check_digest(s, d)?)),
        None => (s, None),
    };
    // A tag follows the last colon, unless that colon belongs to a host:port (a '/' after it).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => {
            (&rest[..i], Some(check_tag(s, &rest[i + 1..])?))
        }
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, remainder))
            // Docker also takes an uppercase first component for a host; tfctl does not: such a
            // name could not be written back unambiguously once lowercased.
            if first.contains('.') || first.contains(':') || first.eq_ignore_ascii_case("localhost") =>
        {
            (check_host(s, first)?, remainder)
        }
        _ => (DOCKER_HUB.to_string(), name),
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase {
            name: path.into(),
            lower: path.to_ascii_lowercase(),
        });
    }
    for component in path.split('/') {
        if !valid_component(component) {
            return Err(ReferenceError::InvalidComponent {
                reference: s.into(),
                component: component.into(),
            });
        }
    }
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
        return Err(ReferenceError::NameTooLong {
            reference: s.into(),
        });
    }
    let tag = match (tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_string()),
        (t, _) => t.map(str::to_string),
    };
    Ok(ImageReference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn check_tag<'a>(reference: &str, tag: &'a str) -> Result<&'a str, ReferenceError> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(tag)
    } else {
        Err(ReferenceError::InvalidTag {
            reference: reference.into(),
            tag: tag.into(),
        })
    }
}

fn check_digest(reference: &str, digest: &str) -> Result<String, ReferenceError> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(digest.to_string())
        }
        _ => Err(ReferenceError::InvalidDigest {
            reference: reference.into(),
            digest: digest.into(),
        }),
    }
}

/// Validates `host[:port]` and returns it normalised (lowercase; `index.docker.io` is Docker Hub).
fn check_host(reference: &str, host: &str) -> Result<String, ReferenceError> {
    let bad = || ReferenceError::InvalidHost {
        reference: reference.into(),
        host: host.into(),
    };
    let (name, port) = split_port(host);
    if let Some(p) = port {
        if p.is_empty()
            || p.len() > 5
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u32>().map_or(true, |n| n > 65535)
        {
            return Err(bad());
        }
    }
    let valid_name = if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name.split('.').all(|label| {
                let b = label.as_bytes();
                !b.is_empty()
                    && b.len() <= 63
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            })
    };
    if !valid_name {
        return Err(bad());
    }
    let lower = host.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => lower,
    })
}

/// Splits `host:port` (IPv6 in brackets) into host and optional port.
fn split_port(host: &str) -> (&str, Option<&str>) {
    let after_bracket = host.rfind(']').map_or(0, |i| i + 1);
    match host[after_bracket..].find(':') {
        Some(i) => (
            &host[..after_bracket + i],
            Some(&host[after_bracket + i + 1..]),
        ),
        None => (host, None),
    }
}

/// Normalises a registry name as written in an insecure-registry list or a login command, so it
/// compares equal to [`ImageReference::registry`]: lowercase, Docker Hub aliases folded.
pub fn normalize_registry(host: &str) -> Result<String, ReferenceError> {
    let host = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(host);
    let host = host.trim_end_matches('/');
    check_host(host, host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        parse_registry_reference(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    #[test]
    fn short_names_resolve_to_docker_hub() {
        assert_eq!(canon("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            canon("library/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(canon("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(
            canon("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            canon("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        assert_eq!(canon("localhost:5000/app:1.0"), "localhost:5000/app:1.0");
        assert_eq!(canon("localhost/app"), "localhost/app:latest");
        assert_eq!(canon("LocalHost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(canon("127.0.0.1:5000/a/b/c:v1"), "127.0.0.1:5000/a/b/c:v1");
        assert_eq!(canon("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(
            canon("registry.example/a__b.c-d---e:T_1.x-y"),
            "registry.example/a__b.c-d---e:T_1.x-y"
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = parse_registry_reference(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        let r = parse_registry_reference(&format!("host:1/busybox:1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.registry, "host:1");
        assert_eq!(r.host(), "host");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |s: &str| parse_registry_reference(s).unwrap_err();
        assert_eq!(e(""), ReferenceError::Empty);
        assert!(
            matches!(e("BusyBox"), ReferenceError::Uppercase { lower, .. } if lower == "busybox")
        );
        // Found by the fuzzer: an uppercase first component is not a registry host.
        assert!(matches!(
            e("doJo/busybox"),
            ReferenceError::Uppercase { .. }
        ));
        assert_eq!(canon("LOCALHOST/app"), "localhost/app:latest");
        assert!(matches!(
            e("busy box"),
            ReferenceError::InvalidCharacter { .. }
        ));
        assert!(matches!(e("busybox:"), ReferenceError::InvalidTag { .. }));
        assert!(matches!(e("busybox:.x"), ReferenceError::InvalidTag { .. }));
        assert!(matches!(
            e(&format!("busybox:{}", "a".repeat(129))),
            ReferenceError::InvalidTag { .. }
        ));
        assert!(matches!(
            e("busybox@sha256:abc"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            e("busybox@md5:abc"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(e("a..b"), ReferenceError::InvalidComponent { .. }));
        assert!(matches!(e("a/-b"), ReferenceError::InvalidComponent { .. }));
        assert!(matches!(e("a//b"), ReferenceError::InvalidComponent { .. }));
        assert!(matches!(
            e("host:99999/a"),
            ReferenceError::InvalidHost { .. }
        ));
        assert!(matches!(
            e("bad_host.x/a"),
            ReferenceError::InvalidHost { .. }
        ));
        assert!(matches!(
            e(&format!("x/{}", "a".repeat(260))),
            ReferenceError::NameTooLong { .. }
        ));
        let msg = e("BusyBox").to_string();
        assert!(msg.contains("\"busybox\""), "{msg}");
    }

    #[test]
    fn local_sources() {
        let base = Path::new("/apps/web");
        assert_eq!(
            ImageSource::parse("oci:./img:v1", base).unwrap(),
            ImageSource::OciLayout {
                path: "/apps/web/./img".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            ImageSource::parse("oci:/abs/img", base).unwrap(),
            ImageSource::OciLayout {
                path: "/abs/img".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageSource::parse("oci-archive:img.tar", base).unwrap(),
            ImageSource::OciArchive {
                path: "/apps/web/img.tar".into(),
                tag: None
            }
        );
        let ImageSource::DockerArchive {
            path,
            image: Some(ArchiveSelector::Reference(r)),
        } = ImageSource::parse("docker-archive:../save.tar:busybox:1.36", base).unwrap()
        else {
            panic!("not a docker archive with a reference")
        };
        assert_eq!(path, Path::new("/apps/web/../save.tar"));
        assert_eq!(r.to_string(), "docker.io/library/busybox:1.36");
        assert_eq!(
            ImageSource::parse("docker-archive:s.tar:@1", base).unwrap(),
            ImageSource::DockerArchive {
                path: "/apps/web/s.tar".into(),
                image: Some(ArchiveSelector::Index(1))
            }
        );
        assert!(matches!(
            ImageSource::parse("oci:", base),
            Err(ReferenceError::MissingPath {
                transport: "oci",
                ..
            })
        ));
        assert!(matches!(
            ImageSource::parse("oci:x:bad tag", base),
            Err(ReferenceError::InvalidCharacter { .. }) | Err(ReferenceError::InvalidTag { .. })
        ));
        assert!(matches!(
            ImageSource::parse("docker-archive:s.tar:Bad", base),
            Err(ReferenceError::ArchiveReference { .. })
        ));
        assert!(
            ImageSource::parse("docker://busybox", base).unwrap()
                == ImageSource::parse("busybox", base).unwrap()
        );
        assert!(!ImageSource::parse("busybox", base).unwrap().is_local());
        assert_eq!(
            ImageSource::parse("oci:/x:t", base).unwrap().to_string(),
            "oci:/x:t"
        );
        // Found by the fuzzer: registries named like transports must read back as registries.
        assert!(matches!(
            ImageSource::parse("docker-arChive:1/x", base).unwrap(),
            ImageSource::DockerArchive { .. }
        ));
        let r = ImageSource::parse("docker://oci:5000/app", base).unwrap();
        assert_eq!(r.to_string(), "docker://oci:5000/app:latest");
        assert_eq!(ImageSource::parse(&r.to_string(), base).unwrap(), r);
    }

    #[test]
    fn registry_names_normalise_for_matching() {
        assert_eq!(
            normalize_registry("LOCALHOST:5000").unwrap(),
            "localhost:5000"
        );
        assert_eq!(
            normalize_registry("https://index.docker.io/").unwrap(),
            "docker.io"
        );
        assert!(normalize_registry("a b").is_err());
    }
}
