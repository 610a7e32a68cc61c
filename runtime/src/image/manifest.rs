//! Manifests, indexes and their descriptors, OCI and Docker v2 alike (same JSON shape, different
//! media types), plus the choice of the host's platform from a multi-arch index.

use serde::Deserialize;

use super::ImageError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What tfctl asks registries for.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Either an image manifest or an index (manifest list).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawManifest {
    #[serde(default)]
    pub schema_version: Option<u32>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

pub enum Parsed {
    Index(Vec<Descriptor>),
    Image { config: Descriptor, layers: Vec<Descriptor> },
}

/// Parses manifest bytes; `what` names them in errors.
pub fn parse(bytes: &[u8], what: &str) -> Result<Parsed, ImageError> {
    let raw: RawManifest = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::InvalidManifest { what: what.into(), reason: e.to_string() })?;
    if raw.schema_version == Some(1) {
        return Err(ImageError::InvalidManifest {
            what: what.into(),
            reason: "Docker schema 1 manifests are not supported; push the image again with a current client".into(),
        });
    }
    match (raw.manifests, raw.config, raw.layers) {
        (Some(m), None, _) => Ok(Parsed::Index(m)),
        (None, Some(config), layers) => {
            let layers = layers.unwrap_or_default();
            for l in layers.iter().chain(std::iter::once(&config)) {
                check_digest(&l.digest, what)?;
            }
            Ok(Parsed::Image { config, layers })
        }
        _ => Err(ImageError::InvalidManifest {
            what: what.into(),
            reason: "neither an image manifest (config + layers) nor an index (manifests)".into(),
        }),
    }
}

/// Only sha256 digests are accepted: they name files in the store.
pub fn check_digest(digest: &str, what: &str) -> Result<(), ImageError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => Ok(()),
        _ => Err(ImageError::InvalidManifest { what: what.into(), reason: format!("unsupported digest {digest:?} (only sha256)") }),
    }
}

/// The host's platform in OCI terms.
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        other => (other, None),
    };
    Platform { architecture: architecture.into(), os: "linux".into(), variant: variant.map(Into::into) }
}

/// Picks the entry for `want` from an index: same os and architecture, and the same variant
/// when both sides name one (arm64 images often omit `v8`).
pub fn choose_platform<'a>(entries: &'a [Descriptor], want: &Platform, what: &str) -> Result<&'a Descriptor, ImageError> {
    let fits = |d: &&Descriptor| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && match (&p.variant, &want.variant) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        })
    };
    // Prefer an exact variant match over a variant-less one.
    entries
        .iter()
        .filter(fits)
        .max_by_key(|d| d.platform.as_ref().and_then(|p| p.variant.as_ref()) == want.variant.as_ref())
        .ok_or_else(|| ImageError::NoPlatform {
            image: what.into(),
            wanted: format_platform(want),
            available: entries.iter().filter_map(|d| d.platform.as_ref()).map(format_platform).collect::<Vec<_>>().join(", "),
        })
}

pub fn format_platform(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            size: 1,
            platform: Some(Platform { architecture: arch.into(), os: "linux".into(), variant: variant.map(Into::into) }),
            annotations: None,
        }
    }

    #[test]
    fn picks_host_platform_and_variant() {
        let entries = vec![entry("arm", Some("v6"), 1), entry("arm", Some("v7"), 2), entry("amd64", None, 3), entry("arm64", None, 4)];
        let want = |a: &str, v: Option<&str>| Platform { architecture: a.into(), os: "linux".into(), variant: v.map(Into::into) };
        assert_eq!(choose_platform(&entries, &want("arm", Some("v7")), "x").unwrap().digest, entries[1].digest);
        assert_eq!(choose_platform(&entries, &want("amd64", None), "x").unwrap().digest, entries[2].digest);
        assert_eq!(choose_platform(&entries, &want("arm64", Some("v8")), "x").unwrap().digest, entries[3].digest);
        let err = choose_platform(&entries, &want("s390x", None), "img").unwrap_err().to_string();
        assert!(err.contains("linux/s390x") && err.contains("linux/arm/v7"), "{err}");
    }
}
