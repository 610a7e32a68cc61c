//! `Store::pull` and `Store::resolve`: the steps every source shares. A source hands over the
//! top manifest; the platform's manifest, the config and the layers are then taken from the
//! store when present and fetched otherwise, each verified, each layer unpacked once.

use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::ImageConfiguration;
use super::unpack::UnpackLimit;

use super::manifest::{self, Descriptor, Parsed, Platform};
use super::store::{sha256_digest, ImageRecord, Store};
use super::{local, registry, ImageError, ImageSource, Progress, ProgressEvent};

/// The largest image config accepted (Docker Hub's largest are well under 100 KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registries (`host:port`) reached over plain HTTP; compared after normalisation.
    pub insecure_registries: Vec<String>,
    /// tfctl's config folder: private CAs are read from `certs.d/HOST:PORT/ca.crt` in it.
    pub config_dir: Option<PathBuf>,
    /// Auth files with Docker's `auths`/`credHelpers`/`credsStore`, first match wins.
    pub auth_files: Vec<PathBuf>,
    /// Layers downloaded at once.
    pub max_concurrent_downloads: usize,
    /// The platform to pick from multi-arch images; the host's by default.
    pub platform: Option<Platform>,
    /// Fetch and verify blobs only: no unpacking, nothing recorded (for benchmarks).
    pub download_only: bool,
    /// The most bytes one layer, and all the layers one pull unpacks, may take on disk.
    pub max_layer_size: u64,
    pub max_image_size: u64,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            config_dir: Some(PathBuf::from("/etc/tfctl")),
            auth_files: super::auth::default_auth_files(),
            max_concurrent_downloads: 4,
            platform: None,
            download_only: false,
            max_layer_size: tfctl_schema::model::HostConfig::default().max_layer_size,
            max_image_size: tfctl_schema::model::HostConfig::default().max_image_size,
        }
    }
}

/// An image ready to run: its config and its layer directories, base layer first.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub config: ImageConfiguration,
    pub layers: Vec<PathBuf>,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub record: ImageRecord,
    /// Blobs fetched from the source (0 for a re-pull of a present image).
    pub downloaded_blobs: usize,
    pub downloaded_bytes: u64,
    pub unpacked_layers: usize,
}

/// Where missing blobs come from.
#[derive(Clone)]
pub(crate) enum BlobSource {
    Registry(Arc<registry::Remote>),
    Local(Arc<local::LocalBlobs>),
}

impl BlobSource {
    /// Makes `desc` present in the store; returns the bytes fetched.
    async fn fetch(&self, store: &Store, desc: &Descriptor, progress: &dyn Progress) -> Result<u64, ImageError> {
        match self {
            BlobSource::Registry(r) => r.fetch_blob(store, desc, progress).await,
            BlobSource::Local(l) => {
                let (l, store, desc) = (l.clone(), store.clone(), desc.clone());
                blocking(move || l.copy_blob(&store, &desc)).await
            }
        }
    }

    async fn fetch_manifest(&self, desc: &Descriptor, what: &str) -> Result<Vec<u8>, ImageError> {
        let bytes = match self {
            BlobSource::Registry(r) => r.fetch_manifest_by_digest(&desc.digest).await?,
            BlobSource::Local(l) => l.read_small(&desc.digest, what)?,
        };
        let actual = sha256_digest(&bytes);
        if actual != desc.digest {
            return Err(ImageError::DigestMismatch { what: what.into(), expected: desc.digest.clone(), actual });
        }
        Ok(bytes)
    }
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ImageError> + Send + 'static) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ImageError::Task(e.to_string()))?
}

impl Store {
    /// Pulls `source` into the store (or finds it there) and records it under its name.
    pub async fn pull(&self, source: &ImageSource, opts: &PullOptions, progress: &dyn Progress) -> Result<PulledImage, ImageError> {
        let _lock = self.lock_shared()?;
        self.clean_stale_temps()?;
        let name = source.to_string();
        let (top_bytes, blobs) = match source {
            ImageSource::Registry(r) => {
                let remote = Arc::new(registry::Remote::connect(r, opts)?);
                let bytes = remote.fetch_top_manifest().await?;
                (bytes, BlobSource::Registry(remote))
            }
            local_source => {
                let (store, src) = (self.clone(), local_source.clone());
                let (bytes, local) = blocking(move || local::open(&store, &src)).await?;
                (bytes, BlobSource::Local(Arc::new(local)))
            }
        };
        let top_digest = sha256_digest(&top_bytes);
        if let ImageSource::Registry(r) = source {
            if let Some(want) = &r.digest {
                if *want != top_digest {
                    return Err(ImageError::DigestMismatch { what: format!("manifest of {name}"), expected: want.clone(), actual: top_digest });
                }
            }
        }
        if let Some(mut known) = self.find_complete(&top_digest)? {
            known.name = name.clone();
            self.record(known.clone())?;
            progress.event(ProgressEvent::Done { image: name, manifest: known.manifest_digest.clone(), downloaded: 0 });
            return Ok(PulledImage { record: known, downloaded_blobs: 0, downloaded_bytes: 0, unpacked_layers: 0 });
        }
        self.put_blob(&top_digest, &top_bytes, &format!("manifest of {name}"))?;

        let want = opts.platform.clone().unwrap_or_else(manifest::host_platform);
        let (manifest_digest, manifest_bytes) = match manifest::parse(&top_bytes, &format!("manifest of {name}"))? {
            Parsed::Index(entries) => {
                let chosen = manifest::choose_platform(&entries, &want, &name)?.clone();
                manifest::check_digest(&chosen.digest, &name)?;
                let what = format!("{} manifest of {name}", manifest::format_platform(&want));
                let bytes = if self.has_blob(&chosen.digest) {
                    self.read_blob(&chosen.digest)?
                } else {
                    let b = blobs.fetch_manifest(&chosen, &what).await?;
                    self.put_blob(&chosen.digest, &b, &what)?;
                    b
                };
                (chosen.digest, bytes)
            }
            Parsed::Image { .. } => (top_digest.clone(), top_bytes.clone()),
        };
        let Parsed::Image { config, layers } = manifest::parse(&manifest_bytes, &format!("manifest {manifest_digest}"))? else {
            return Err(ImageError::InvalidManifest { what: format!("manifest {manifest_digest}"), reason: "an index inside an index".into() });
        };
        progress.event(ProgressEvent::Resolved { image: name.clone(), manifest: manifest_digest.clone(), layers: layers.len() });

        let mut downloaded_blobs = 0;
        let mut downloaded_bytes = 0;
        // An image config is untrusted JSON that every start parses and merges: a real one is a
        // few KiB, so one past MAX_CONFIG_BYTES is refused before it is fetched or parsed.
        let too_big = |size: u64| ImageError::InvalidConfig {
            what: name.clone(),
            reason: format!("it is {size} bytes, more than the {MAX_CONFIG_BYTES} bytes tfctl accepts for an image config"),
        };
        if config.size.max(0) as u64 > MAX_CONFIG_BYTES {
            return Err(too_big(config.size.max(0) as u64));
        }
        if !self.has_blob(&config.digest) {
            downloaded_bytes += blobs.fetch(self, &config, &super::NoProgress).await?;
            downloaded_blobs += 1;
        }
        let config_bytes = self.read_blob(&config.digest)?;
        if config_bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(too_big(config_bytes.len() as u64));
        }
        let diff_ids = diff_ids(&config_bytes, &name, layers.len())?;

        // Layers: fetched with bounded concurrency; each is unpacked as soon as it is verified,
        // all of them within one budget.
        let limit = UnpackLimit::new(opts.max_layer_size, opts.max_image_size);
        use futures_util::stream::{self, StreamExt};
        let results: Vec<Result<(u64, bool, bool), ImageError>> = stream::iter(layers.iter().zip(&diff_ids))
            .map(|(desc, diff_id)| {
                let (blobs, limit) = (blobs.clone(), limit.clone());
                async move {
                    if self.has_layer(diff_id) {
                        progress.event(ProgressEvent::LayerCached { digest: desc.digest.clone(), size: desc.size.max(0) as u64 });
                        return Ok::<_, ImageError>((0, false, false));
                    }
                    let (mut bytes, mut fetched) = (0, false);
                    if !self.has_blob(&desc.digest) {
                        bytes = blobs.fetch(self, desc, progress).await?;
                        fetched = true;
                    }
                    if opts.download_only {
                        return Ok((bytes, fetched, false));
                    }
                    let (store, blob, id) = (self.clone(), desc.digest.clone(), diff_id.clone());
                    blocking(move || store.unpack_layer(&blob, &id, &limit)).await?;
                    progress.event(ProgressEvent::LayerUnpacked { digest: desc.digest.clone() });
                    Ok((bytes, fetched, true))
                }
            })
            .buffer_unordered(opts.max_concurrent_downloads.max(1))
            // Every layer's work runs to its end even after one fails: an unpack already on a
            // blocking thread would otherwise go on after the pull returned, and the store would
            // not be "as it was" when the caller looks.
            .collect()
            .await;
        let results: Vec<(u64, bool, bool)> = results.into_iter().collect::<Result<_, _>>()?;
        let mut unpacked_layers = 0;
        for (bytes, fetched, unpacked) in results {
            downloaded_bytes += bytes;
            downloaded_blobs += fetched as usize;
            unpacked_layers += unpacked as usize;
        }
        let record = ImageRecord {
            name: if opts.download_only { String::new() } else { name.clone() },
            top_digest,
            manifest_digest: manifest_digest.clone(),
            config_digest: config.digest.clone(),
            layer_digests: layers.iter().map(|l| l.digest.clone()).collect(),
            diff_ids,
            size: layers.iter().map(|l| l.size.max(0) as u64).sum(),
            pulled_at: 0,
        };
        if !opts.download_only {
            self.record(record.clone())?;
        }
        progress.event(ProgressEvent::Done { image: name, manifest: manifest_digest, downloaded: downloaded_bytes });
        Ok(PulledImage { record, downloaded_blobs, downloaded_bytes, unpacked_layers })
    }

    /// The image recorded for `source`: its config and layer directories, base layer first.
    pub fn resolve(&self, source: &ImageSource) -> Result<Image, ImageError> {
        let name = source.to_string();
        let record = self.get(&name)?.ok_or_else(|| ImageError::NotFound { image: name.clone() })?;
        self.image_of(&record)
    }

    /// The runnable image for a record (e.g. one returned by [`Store::list`]).
    pub fn image_of(&self, record: &ImageRecord) -> Result<Image, ImageError> {
        if !self.is_complete(record) {
            return Err(ImageError::NotFound { image: record.name.clone() });
        }
        let config_bytes = self.read_blob(&record.config_digest)?;
        let config = ImageConfiguration::from_reader(&config_bytes[..])
            .map_err(|e| ImageError::InvalidConfig { what: record.name.clone(), reason: e.to_string() })?;
        Ok(Image {
            name: record.name.clone(),
            manifest_digest: record.manifest_digest.clone(),
            config_digest: record.config_digest.clone(),
            config,
            layers: record.diff_ids.iter().map(|d| self.layer_dir(d)).collect(),
        })
    }
}

/// The config's `rootfs.diff_ids`, one per layer, each a sha256 digest.
fn diff_ids(config: &[u8], name: &str, layers: usize) -> Result<Vec<String>, ImageError> {
    #[derive(serde::Deserialize)]
    struct Rootfs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: Rootfs,
    }
    let bad = |reason: String| ImageError::InvalidConfig { what: name.into(), reason };
    let c: Config = serde_json::from_slice(config).map_err(|e| bad(e.to_string()))?;
    if c.rootfs.diff_ids.len() != layers {
        return Err(bad(format!("{} diff_ids for {layers} layers", c.rootfs.diff_ids.len())));
    }
    for d in &c.rootfs.diff_ids {
        manifest::check_digest(d, name)?;
    }
    Ok(c.rootfs.diff_ids)
}
