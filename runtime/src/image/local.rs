//! Local sources: an OCI image layout directory, an OCI layout in a tar (`oci-archive:`), and
//! `docker save` output (`docker-archive:`). Archives are extracted (regular files only, plain
//! relative names) into a flock'ed temporary directory of the store; blobs are then copied into
//! the store and verified like downloads.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::manifest::{self, Descriptor};
use super::store::{sha256_digest, Store, TempEntry};
use super::{ArchiveSelector, ImageError, ImageSource};

pub(crate) struct LocalBlobs {
    /// An OCI layout root (`blobs/sha256/<hex>`).
    layout: Option<PathBuf>,
    /// Files named by digest explicitly (docker-archive content).
    files: HashMap<String, PathBuf>,
    what: String,
    _temp: Option<TempEntry>,
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn src_err(what: &str, reason: impl ToString) -> ImageError {
    ImageError::Source { what: what.into(), reason: reason.to_string() }
}

impl LocalBlobs {
    fn path_of(&self, digest: &str) -> Result<PathBuf, ImageError> {
        manifest::check_digest(digest, &self.what)?;
        if let Some(p) = self.files.get(digest) {
            return Ok(p.clone());
        }
        match &self.layout {
            Some(l) => Ok(l.join("blobs/sha256").join(super::store::hex_of(digest))),
            None => Err(src_err(&self.what, format!("blob {digest} is not in the archive"))),
        }
    }

    pub fn read_small(&self, digest: &str, what: &str) -> Result<Vec<u8>, ImageError> {
        let p = self.path_of(digest)?;
        fs::read(&p).map_err(|e| src_err(what, format!("{}: {e}", p.display())))
    }

    pub fn copy_blob(&self, store: &Store, desc: &Descriptor) -> Result<u64, ImageError> {
        let p = self.path_of(&desc.digest)?;
        let what = format!("blob {} of {}", desc.digest, self.what);
        let f = File::open(&p).map_err(|e| src_err(&what, format!("{}: {e}", p.display())))?;
        store.put_blob_from(&desc.digest, f, &what)
    }
}

/// Reads the source's top manifest and returns it with access to the rest of its blobs.
pub(crate) fn open(store: &Store, source: &ImageSource) -> Result<(Vec<u8>, LocalBlobs), ImageError> {
    let what = source.to_string();
    match source {
        ImageSource::OciLayout { path, tag } => open_layout(path.clone(), tag.as_deref(), what, None),
        ImageSource::OciArchive { path, tag } => {
            let temp = extract(store, path, &what)?;
            open_layout(temp.path.clone(), tag.as_deref(), what, Some(temp))
        }
        ImageSource::DockerArchive { path, image } => open_docker_archive(store, path, image.as_ref(), what),
        ImageSource::Registry(_) => unreachable!("registry sources are pulled over the network"),
    }
}

fn open_layout(root: PathBuf, tag: Option<&str>, what: String, temp: Option<TempEntry>) -> Result<(Vec<u8>, LocalBlobs), ImageError> {
    let index_path = root.join("index.json");
    let bytes = fs::read(&index_path).map_err(|e| {
        src_err(&what, format!("{} is not an OCI image layout ({}: {e})", root.display(), index_path.display()))
    })?;
    let manifest::Parsed::Index(entries) = manifest::parse(&bytes, &index_path.display().to_string())? else {
        return Err(src_err(&what, "index.json is not an image index"));
    };
    let names = || {
        let n: Vec<String> = entries.iter().filter_map(|e| e.annotations.as_ref()?.get(REF_NAME).cloned()).collect();
        if n.is_empty() { "(no tagged images)".to_string() } else { n.join(", ") }
    };
    let chosen = match tag {
        Some(t) => entries
            .iter()
            .find(|e| e.annotations.as_ref().and_then(|a| a.get(REF_NAME)).is_some_and(|n| n == t))
            .ok_or_else(|| src_err(&what, format!("no image tagged {t:?} in the layout; it has: {}", names())))?,
        None if entries.len() == 1 => &entries[0],
        None if entries.is_empty() => return Err(src_err(&what, "the layout holds no images")),
        None => return Err(ImageError::AmbiguousArchive { path: root.clone(), images: names() }),
    };
    let blobs = LocalBlobs { layout: Some(root), files: HashMap::new(), what: what.clone(), _temp: temp };
    let top = blobs.read_small(&chosen.digest, &what)?;
    let actual = sha256_digest(&top);
    if actual != chosen.digest {
        return Err(ImageError::DigestMismatch { what: format!("manifest of {what}"), expected: chosen.digest.clone(), actual });
    }
    Ok((top, blobs))
}

/// Extracts the regular files of an archive into a temporary directory of the store. Names
/// must be plain relative paths; links, devices and anything with `..` are skipped, so nothing
/// lands outside the directory.
fn extract(store: &Store, archive: &Path, what: &str) -> Result<TempEntry, ImageError> {
    let temp = store.temp_entry("archive", true)?;
    let f = File::open(archive).map_err(|e| src_err(what, format!("{}: {e}", archive.display())))?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    for entry in ar.entries().map_err(|e| src_err(what, e))? {
        let mut entry = entry.map_err(|e| src_err(what, e))?;
        if !matches!(entry.header().entry_type(), tar::EntryType::Regular | tar::EntryType::Continuous) {
            continue;
        }
        let path = entry.path().map_err(|e| src_err(what, e))?.into_owned();
        if !path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            continue;
        }
        let dest = temp.path.join(&path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| src_err(what, e))?;
        }
        let mut out = File::create(&dest).map_err(|e| src_err(what, e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| src_err(what, e))?;
    }
    Ok(temp)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn file_digest(p: &Path, what: &str) -> Result<String, ImageError> {
    use sha2::{Digest as _, Sha256};
    let mut f = File::open(p).map_err(|e| src_err(what, format!("{}: {e}", p.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| src_err(what, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// `docker save` output: `manifest.json` lists each image's config, layers and tags. The
/// manifest tfctl stores for it is an OCI manifest built from the files' digests.
fn open_docker_archive(store: &Store, path: &Path, image: Option<&ArchiveSelector>, what: String) -> Result<(Vec<u8>, LocalBlobs), ImageError> {
    let temp = extract(store, path, &what)?;
    let root = temp.path.clone();
    let list: Vec<DockerSaveEntry> = serde_json::from_slice(
        &fs::read(root.join("manifest.json")).map_err(|e| src_err(&what, format!("not a docker-archive (manifest.json: {e})")))?,
    )
    .map_err(|e| src_err(&what, format!("manifest.json: {e}")))?;
    let tags = |e: &DockerSaveEntry| e.repo_tags.clone().unwrap_or_default();
    let chosen = match image {
        Some(ArchiveSelector::Index(n)) => list.get(*n).ok_or_else(|| src_err(&what, format!("the archive has {} images, no @{n}", list.len())))?,
        Some(ArchiveSelector::Reference(r)) => {
            let want = r.to_string();
            list.iter()
                .find(|e| tags(e).iter().any(|t| tfctl_schema::reference::parse_registry_reference(t).is_ok_and(|p| p.to_string() == want)))
                .ok_or_else(|| {
                    let all: Vec<String> = list.iter().flat_map(tags).collect();
                    src_err(&what, format!("no image {want} in the archive; it has: {}", all.join(", ")))
                })?
        }
        None if list.len() == 1 => &list[0],
        None => {
            let all: Vec<String> = list.iter().enumerate().map(|(i, e)| {
                let t = tags(e);
                if t.is_empty() { format!("@{i}") } else { t.join(" ") }
            }).collect();
            return Err(ImageError::AmbiguousArchive { path: path.to_path_buf(), images: all.join(", ") });
        }
    };
    let safe = |name: &str| -> Result<PathBuf, ImageError> {
        let p = Path::new(name);
        if p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            Ok(root.join(p))
        } else {
            Err(src_err(&what, format!("manifest.json names {name:?} outside the archive")))
        }
    };
    let mut files = HashMap::new();
    let config_path = safe(&chosen.config)?;
    let config_digest = file_digest(&config_path, &what)?;
    let config_size = fs::metadata(&config_path).map(|m| m.len()).unwrap_or(0);
    files.insert(config_digest.clone(), config_path);
    let mut layers = Vec::new();
    for l in &chosen.layers {
        let p = safe(l)?;
        let digest = file_digest(&p, &what)?;
        let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        layers.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}));
        files.insert(digest, p);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    Ok((bytes, LocalBlobs { layout: None, files, what, _temp: Some(temp) }))
}
