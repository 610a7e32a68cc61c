//! Talking to a registry with oci-client: manifests by tag or digest, blobs streamed straight
//! into the store (never buffered whole in memory), TLS with private CAs from `certs.d`, plain
//! HTTP only for registries the user listed as insecure.

use std::path::Path;

use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::manifest::{Descriptor, ACCEPTED};
use super::store::Store;
use super::{auth, ImageError, ImageReference, Progress, ProgressEvent, PullOptions};
use tfctl_schema::reference::normalize_registry;

pub(crate) struct Remote {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    /// The registry as the user names it (`localhost:5000`, `docker.io`).
    registry: String,
    /// Where the credentials came from, for error messages (never the credentials).
    auth_source: Option<String>,
}

/// Makes ring this process's TLS provider, before any registry client exists (reqwest, built
/// without a provider of its own, panics otherwise). Later calls, or a provider already chosen
/// by the embedding program, change nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// True when `registry` is listed (after normalisation) as reachable over plain HTTP.
pub fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    insecure.iter().any(|i| normalize_registry(i).is_ok_and(|n| n == registry))
}

/// CA certificates for `registry` from `<config_dir>/certs.d/<registry>/*.crt` (Docker's layout).
fn private_cas(config_dir: Option<&Path>, registry: &str) -> Result<Vec<Certificate>, ImageError> {
    let Some(dir) = config_dir.map(|d| d.join("certs.d").join(registry)) else { return Ok(Vec::new()) };
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut certs = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "crt") {
            let data = std::fs::read(&p).map_err(|source| ImageError::Io { what: "read a CA certificate".into(), path: p.clone(), source })?;
            certs.push(Certificate { encoding: CertificateEncoding::Pem, data });
        }
    }
    Ok(certs)
}

/// A registry error's text with its causes, for messages.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

impl Remote {
    pub fn connect(r: &ImageReference, opts: &PullOptions) -> Result<Self, ImageError> {
        install_tls_provider();
        let registry = r.registry.clone();
        let protocol = if is_insecure(&registry, &opts.insecure_registries) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            extra_root_certificates: private_cas(opts.config_dir.as_deref(), &registry)?,
            // Platform choice is ours (variants, clear errors), so indexes come back raw.
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(15)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("tfctl/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let (auth, auth_source) = match auth::credentials_for(&registry, &opts.auth_files)? {
            Some((c, source)) => (RegistryAuth::Basic(c.username, c.password), Some(source)),
            None => (RegistryAuth::Anonymous, None),
        };
        let reference = match (&r.tag, &r.digest) {
            (_, Some(d)) => Reference::with_digest(registry.clone(), r.repository.clone(), d.clone()),
            (Some(t), None) => Reference::with_tag(registry.clone(), r.repository.clone(), t.clone()),
            (None, None) => Reference::with_tag(registry.clone(), r.repository.clone(), "latest".into()),
        };
        Ok(Remote { client: Client::new(config), reference, auth, registry, auth_source })
    }

    fn error(&self, e: OciDistributionError) -> ImageError {
        let registry = self.registry.clone();
        match e {
            OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => match &self.auth_source {
                Some(src) => ImageError::Unauthorized {
                    registry,
                    source_hint: format!(" from {src}"),
                    message: "authentication failed (HTTP 401)".into(),
                },
                None => ImageError::AuthRequired { registry, message: "anonymous access was refused (HTTP 401)".into() },
            },
            OciDistributionError::RequestError(ref re) => {
                let mut message = chain(&e);
                if re.is_connect() || message.contains("certificate") || message.contains("tls") {
                    message.push_str(&format!(
                        "; if {registry} uses a private CA, put it in certs.d/{registry}/ca.crt in tfctl's config folder; if it serves plain HTTP, list it with --insecure-registry {registry}"
                    ));
                }
                ImageError::Connect { registry, message }
            }
            OciDistributionError::DigestError(d) => ImageError::DigestMismatch {
                what: format!("blob of {}", self.reference),
                expected: String::new(),
                actual: d.to_string(),
            },
            OciDistributionError::ImageManifestNotFoundError(_) => {
                ImageError::Registry { registry, message: format!("{}/{} has no such tag or digest", self.registry, self.reference.repository()) }
            }
            OciDistributionError::RegistryError { envelope, .. } => ImageError::Registry {
                registry,
                message: envelope.errors.iter().map(|e| format!("{:?}: {}", e.code, e.message)).collect::<Vec<_>>().join("; "),
            },
            other => ImageError::Registry { registry, message: chain(&other) },
        }
    }

    /// The manifest (or index) the reference names, as raw bytes.
    pub async fn fetch_top_manifest(&self) -> Result<Vec<u8>, ImageError> {
        let (bytes, _) = self.client.pull_manifest_raw(&self.reference, &self.auth, ACCEPTED).await.map_err(|e| self.error(e))?;
        Ok(bytes.to_vec())
    }

    pub async fn fetch_manifest_by_digest(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let r = Reference::with_digest(self.registry.clone(), self.reference.repository().into(), digest.into());
        let (bytes, _) = self.client.pull_manifest_raw(&r, &self.auth, ACCEPTED).await.map_err(|e| self.error(e))?;
        Ok(bytes.to_vec())
    }

    /// Streams the blob into a temporary file in the store, hashing as it goes; it is renamed
    /// into place only when its sha256 matches the descriptor.
    pub async fn fetch_blob(&self, store: &Store, desc: &Descriptor, progress: &dyn Progress) -> Result<u64, ImageError> {
        let size = desc.size.max(0) as u64;
        progress.event(ProgressEvent::LayerStarted { digest: desc.digest.clone(), size });
        let oci_desc = OciDescriptor { media_type: desc.media_type.clone(), digest: desc.digest.clone(), size: desc.size, urls: None, annotations: None, artifact_type: None };
        // The manifest pull stored the credentials for this registry in the client.
        self.client.store_auth_if_needed(self.reference.resolve_registry(), &self.auth).await;
        let mut stream = self.client.pull_blob_stream(&self.reference, &oci_desc).await.map_err(|e| self.error(e))?;
        let mut writer = store.blob_writer(&desc.digest)?;
        let mut last_report = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| match e.get_ref().and_then(|i| i.downcast_ref::<oci_client::errors::DigestError>()) {
                // oci-client checks the digest at the end of the stream too; same verdict as ours.
                Some(oci_client::errors::DigestError::VerificationError { expected, actual }) => ImageError::DigestMismatch {
                    what: format!("blob {} of {}", desc.digest, self.reference),
                    expected: expected.clone(),
                    actual: actual.clone(),
                },
                _ => ImageError::Connect { registry: self.registry.clone(), message: format!("download of {} broke off: {}", desc.digest, chain(&e)) },
            })?;
            writer.write_chunk(&chunk)?;
            if size > 0 && writer.written() > size {
                return Err(ImageError::DigestMismatch {
                    what: format!("blob {} of {}", desc.digest, self.reference),
                    expected: format!("{size} bytes"),
                    actual: "a longer body".into(),
                });
            }
            if writer.written() - last_report >= 256 * 1024 {
                last_report = writer.written();
                progress.event(ProgressEvent::LayerProgress { digest: desc.digest.clone(), done: last_report, size });
            }
        }
        let n = writer.written();
        writer.commit(&format!("blob {} of {}", desc.digest, self.reference))?;
        progress.event(ProgressEvent::LayerDownloaded { digest: desc.digest.clone(), size: n });
        Ok(n)
    }
}
