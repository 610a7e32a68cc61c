//! Preparing one container on the host: its folder under the state root, its cgroup, its
//! compiled Spec and start plan. What runs it (the spawner) and what wires it (the network) are
//! the caller's; this module only gets everything ready and knows how to clean up after it.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use tfctl_schema::model::Container;

use super::plan::{start_plan, ExtraFiles, PlanError, RootfsPlan};
use crate::cgroup::{self, CgroupError, ContainerCgroup};
use crate::files::{self, FileError, TemplateContext};
use crate::image::Image;
use crate::spawn::{FileInit, OverlayUpper, StartFds, StartPlan};
use crate::spec::{self, SpecContext, SpecError};
use crate::state::StateRoot;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("cannot {what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("container {container}: {source}")]
    Spec { container: String, source: SpecError },
    #[error("container {container}: {source}")]
    Plan { container: String, source: PlanError },
    #[error("container {container}: {source}")]
    Cgroup { container: String, source: CgroupError },
    #[error("container {container}: {source}")]
    Files { container: String, source: FileError },
    #[error("container {container}: secrets: {source}")]
    Secrets { container: String, source: crate::secrets::SecretError },
    #[error(
        "container {container}: the host path {path} it mounts at {target} is not there ({source}): create it, \
         or write create=#true on its `mount` to have tfctl make an empty folder"
    )]
    BindSource { container: String, path: PathBuf, target: String, source: std::io::Error },
    #[error("container {container}: userns \"auto\": {source}")]
    Userns { container: String, source: crate::userns::UsernsError },
    #[error("container {container}: userns \"auto\" needs Linux 5.19 or later (overlayfs on idmapped layers); this host runs {major}.{minor}: use userns \"host\" here")]
    UsernsKernel { container: String, major: u32, minor: u32 },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CreateError + 'a {
    move |source| CreateError::Io { what, path: path.to_path_buf(), source }
}

/// Where a container's things live under the state root: `apps/<app>/containers/<name>/`.
#[derive(Debug, Clone)]
pub struct ContainerDirs {
    pub dir: PathBuf,
    mountpoint: PathBuf,
}

/// The state root's folder every container's root is attached at, each in its own mount
/// namespace (nothing is ever mounted there on the host): one folder for all, since making
/// and removing a folder per container costs more than the rest of its state on disk.
pub const MOUNTPOINT_DIR: &str = "mnt";

impl ContainerDirs {
    pub fn new(root: &StateRoot, app: &str, name: &str) -> ContainerDirs {
        ContainerDirs {
            dir: root.path().join("apps").join(app).join("containers").join(name),
            mountpoint: root.path().join(MOUNTPOINT_DIR),
        }
    }

    /// An empty folder: where the start sequence attaches the container's root.
    pub fn mountpoint(&self) -> PathBuf {
        self.mountpoint.clone()
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    /// The anonymous volumes of the image's VOLUMEs: the container's own, gone with it.
    pub fn anonymous_volumes(&self) -> PathBuf {
        self.dir.join("volumes")
    }
    /// The anonymous volume of the image's VOLUME `target` (a path other than /).
    pub fn anonymous_volume(&self, target: &str) -> PathBuf {
        self.anonymous_volumes().join(target.trim_matches('/').replace('%', "%25").replace('/', "%2F"))
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// Discards every change the container made to its filesystem (its upper and work dirs,
    /// while it is stopped): the next start begins from the image again. Says which could not
    /// be removed.
    pub fn discard_changes(&self) -> Result<(), String> {
        let mut failed = Vec::new();
        for d in [self.upper(), self.work()] {
            match fs::remove_dir_all(&d) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => failed.push(format!("cannot discard {}: {e}", d.display())),
                _ => {}
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    /// The image this container was made from (read by `images rm` and `prune`).
    pub fn image_file(&self) -> PathBuf {
        self.dir.join("image")
    }
    pub fn volumes(root: &StateRoot, app: &str) -> PathBuf {
        root.path().join("volumes").join(app)
    }
}

/// How the container's writes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// On a tmpfs that vanishes with the container (`run --rm`). Nothing of the container is
    /// written under the state root: the caller records which image it uses.
    Ephemeral,
    /// In the container's upper folder, kept across restarts until it is removed.
    Kept,
}

/// Everything a container needs to start, made on the host.
pub struct Prepared {
    pub plan: StartPlan,
    pub fds: StartFds,
    pub cgroup: Box<dyn ContainerCgroup>,
    pub dirs: ContainerDirs,
}

/// What else goes into a container besides its image and its description.
#[derive(Default)]
pub struct Inputs {
    pub templates: TemplateContext,
    /// Secret files (`secret "NAME" at=`), already read or derived, each with whether the app
    /// file gave its owner (else it goes to the container's user).
    pub secret_files: Vec<(FileInit, bool)>,
    /// Files tfctl itself writes into the rootfs before boot (/etc/hosts, /etc/resolv.conf).
    pub rootfs_files: Vec<FileInit>,
    /// Extra environment (secrets asked for with `env=`), `KEY=VALUE`.
    pub extra_env: Vec<String>,
    /// A network namespace to join (the app network's); `None`: a new one with loopback only.
    pub netns: Option<OwnedFd>,
}

/// The topmost layer holding `file` (`/etc/passwd`, `/etc/group`): where users, or groups, are
/// looked up (each file in its own: a layer may add a group alone). Whiteouts in layers above
/// it are not considered; an image that deletes its passwd file is odd enough. Looked up inside
/// each layer: an image's `etc -> /etc` names its own, never the host's.
fn user_db_layer<'l>(layers: &'l [PathBuf], file: &str) -> Option<&'l PathBuf> {
    layers.iter().rev().find(|l| {
        crate::image::open_in_layer(l, file, libc::O_RDONLY)
            .ok()
            .flatten()
            .is_some_and(|fd| fs::File::from(fd).metadata().is_ok_and(|m| m.is_file()))
    })
}

/// Bind mounts of the anonymous volumes for the image's VOLUMEs that `c`'s own mounts leave
/// uncovered (a path that is not absolute or has `..` is not a mount point: skipped).
fn anonymous_volumes(c: &Container, image: &Image, dirs: &ContainerDirs) -> Vec<tfctl_schema::model::Mount> {
    let mut targets: Vec<String> = image.config.config().as_ref().and_then(|cfg| cfg.volumes().clone()).unwrap_or_default();
    targets.sort();
    targets.dedup();
    targets
        .into_iter()
        .filter(|t| tfctl_schema::values::check_container_path(t).is_ok() && t.trim_matches('/') != "")
        .filter(|t| !c.mounts.iter().any(|m| Path::new(&m.target) == Path::new(t)))
        .map(|t| tfctl_schema::model::Mount {
            source: tfctl_schema::model::MountSource::Bind(dirs.anonymous_volume(&t)),
            target: t,
            read_only: false,
            create: false,
        })
        .collect()
}

/// Creates the container's folders and cgroup and compiles its plan.
pub fn prepare(
    root: &StateRoot,
    app: &str,
    c: &Container,
    image: &Image,
    writes: Writes,
    inputs: Inputs,
) -> Result<Prepared, CreateError> {
    let dirs = ContainerDirs::new(root, app, &c.name);
    root.dir(MOUNTPOINT_DIR).map_err(io("create", &dirs.mountpoint))?;
    let upper = match writes {
        // The writable layer of a one-off run lives in memory: as big as a tmpfs gets by default.
        Writes::Ephemeral => OverlayUpper::Tmpfs { size_bytes: crate::rootfs::default_tmpfs_size() },
        Writes::Kept => {
            fs::create_dir_all(&dirs.dir).map_err(io("create", &dirs.dir))?;
            // A marker read by `images rm` and `prune`, rewritten at every start: no fsync on
            // this path, which every container start takes.
            fs::write(dirs.image_file(), image.name.as_bytes()).map_err(io("write", &dirs.image_file()))?;
            // A `volatile` overlay leaves work/incompat/volatile behind, and overlayfs refuses
            // that work folder next time: the work folder holds nothing worth keeping.
            let _ = fs::remove_dir_all(dirs.work());
            for d in [dirs.upper(), dirs.work()] {
                fs::create_dir_all(&d).map_err(io("create", &d))?;
            }
            OverlayUpper::Dirs { upper: dirs.upper(), work: dirs.work() }
        }
    };

    // The image's VOLUMEs no mount covers: each an anonymous volume of the container's own,
    // first filled from the image, as Docker makes them (so they stay writable under a
    // read-only root, and what is written there is not in the container's layer).
    let with_volumes;
    let c = match anonymous_volumes(c, image, &dirs) {
        anonymous if anonymous.is_empty() => c,
        anonymous => {
            for m in &anonymous {
                if let tfctl_schema::model::MountSource::Bind(dir) = &m.source {
                    super::volumes::ensure(dir, &image.layers, &m.target).map_err(io("create the volume", dir))?;
                }
            }
            with_volumes = Container { mounts: [c.mounts.clone(), anonymous].concat(), ..c.clone() };
            &with_volumes
        }
    };
    for m in &c.mounts {
        match &m.source {
            tfctl_schema::model::MountSource::Volume(v) => {
                let dir = ContainerDirs::volumes(root, app).join(v);
                super::volumes::ensure(&dir, &image.layers, &m.target).map_err(io("create the volume", &dir))?;
            }
            // `check` saw it, but it may have gone since: say so here, in the user's terms,
            // rather than as a failed mount inside the new process.
            tfctl_schema::model::MountSource::Bind(path) => match fs::symlink_metadata(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && m.create => {
                    fs::create_dir_all(path).map_err(io("create the bind mount source", path))?;
                }
                Err(source) => {
                    return Err(CreateError::BindSource { container: c.name.clone(), path: path.clone(), target: m.target.clone(), source })
                }
            },
        }
    }
    let users_at = user_db_layer(&image.layers, "/etc/passwd").cloned().unwrap_or_else(|| dirs.mountpoint());
    let users_fd = fs::File::open(&users_at).map_err(io("open", &users_at))?;
    let groups_at = user_db_layer(&image.layers, "/etc/group").cloned().unwrap_or_else(|| dirs.mountpoint());
    let groups_fd = fs::File::open(&groups_at).map_err(io("open", &groups_at))?;
    let volumes = ContainerDirs::volumes(root, app);
    let ctx = SpecContext { app, volumes_dir: &volumes, rootfs: users_fd.as_fd(), group_rootfs: groups_fd.as_fd() };
    let mut compiled = spec::compile(c, &image.config, &ctx).map_err(|source| CreateError::Spec { container: c.name.clone(), source })?;
    if !inputs.extra_env.is_empty() {
        if let Some(p) = compiled.spec.process_mut() {
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(inputs.extra_env);
            p.set_env(Some(env));
        }
    }

    let rendered = files::render_files(&c.files, &inputs.templates).map_err(|source| CreateError::Files { container: c.name.clone(), source })?;
    let (uid, gid) = (compiled.user.uid, compiled.user.gid);
    let mut secrets: Vec<FileInit> = inputs
        .secret_files
        .into_iter()
        .map(|(mut f, owner_given)| {
            if !owner_given {
                (f.uid, f.gid) = (uid, gid);
            }
            f
        })
        .collect();
    let mut rootfs_files = inputs.rootfs_files;
    // Every container has its name files, as with Docker: an app's driver gives its own (its
    // peers, its network); a one-off run without a network of its own gets localhost and its
    // hostname, its `extra-host` lines (`--add-host`), and its `dns` (`--dns`) else the host's
    // nameservers.
    for (path, data) in [
        ("/etc/hosts", crate::app::etc::hosts(app, &c.hostname, None, &[], &c.extra_hosts)),
        ("/etc/resolv.conf", crate::app::etc::resolv_conf(&c.dns)),
    ] {
        if !rootfs_files.iter().any(|f| f.path == path) {
            rootfs_files.push(FileInit { path: path.into(), data: data.into_bytes(), mode: 0o644, uid: 0, gid: 0 });
        }
    }
    for f in rendered {
        let init = FileInit { path: f.path.clone(), data: f.content.to_vec(), mode: f.mode, uid: f.owner.uid, gid: f.owner.gid };
        if f.uses_secret {
            secrets.push(init);
        } else {
            rootfs_files.push(init);
        }
    }
    // `userns "auto"`: a range of host ids of its own. Secret files live on their own tmpfs and
    // are owned by the ids the host sees; pre-boot files are shifted by the child itself.
    let userns = match c.userns.unwrap_or_default() {
        tfctl_schema::model::Userns::Auto => {
            let (major, minor) = crate::sys::kernel_version();
            if (major, minor) < (5, 19) {
                return Err(CreateError::UsernsKernel { container: c.name.clone(), major, minor });
            }
            let owner = crate::userns::owner(root.path(), app, &c.name);
            Some(crate::userns::allocate(&owner).map_err(|source| CreateError::Userns { container: c.name.clone(), source })?)
        }
        tfctl_schema::model::Userns::Host => None,
    };
    if let Some(map) = userns {
        for f in &mut secrets {
            (f.uid, f.gid) = (map.host(f.uid), map.host(f.gid));
        }
    }
    let secret_mounts = secret_mounts(&c.name, &secrets)?;
    let extra = ExtraFiles { rootfs: rootfs_files, secret_targets: secrets.iter().map(|f| f.path.clone()).collect() };
    let rootfs = RootfsPlan { layers: image.layers.clone(), upper, mountpoint: dirs.mountpoint() };
    let mut plan = start_plan(&compiled, rootfs, extra).map_err(|source| CreateError::Plan { container: c.name.clone(), source })?;
    plan.userns = userns;
    if let crate::spawn::plan::Mode::Container(setup) = &mut plan.mode {
        if userns.is_some() {
            setup.idmapped_binds_below = vec![volumes.clone(), dirs.anonymous_volumes()];
        }
    }

    let driver = cgroup_driver(root, app, true).map_err(|source| CreateError::Cgroup { container: c.name.clone(), source })?;
    let cg_name = cgroup_name(root, app, &c.name);
    let cgroup = driver
        .create(&cg_name, &compiled.cgroup)
        .map_err(|source| CreateError::Cgroup { container: c.name.clone(), source })?;
    let attach = cgroup.attach_files().map_err(|source| CreateError::Cgroup { container: c.name.clone(), source })?;
    let fds = StartFds { cgroup_procs: attach.fds, netns: inputs.netns, secret_mounts, ..StartFds::default() };
    Ok(Prepared { plan, fds, cgroup, dirs })
}

/// Removes what `prepare` made: kills anything left in the cgroup and removes it, then the
/// container's folder (its upper layer included).
pub fn remove(cgroup: &dyn ContainerCgroup, dirs: &ContainerDirs) -> Result<(), CreateError> {
    cgroup.remove().map_err(|source| CreateError::Cgroup { container: dirs.dir.display().to_string(), source })?;
    match fs::remove_dir_all(&dirs.dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CreateError::Io { what: "remove", path: dirs.dir.clone(), source: e }),
        _ => Ok(()),
    }
}

/// The cgroup backend for app `app`'s containers, at the place every command finds for it
/// ([`cgroup::place`]); `make` when about to create container cgroups.
pub fn cgroup_driver(root: &StateRoot, app: &str, make: bool) -> Result<Box<dyn cgroup::CgroupDriver>, CgroupError> {
    cgroup::for_app(&root.short_id(app), &crate::app::record::app_dir(root, app).join("cgroup"), make)
}

/// The name of a container's cgroup (under tfctl's own in each hierarchy): unique per state
/// root and app, so two roots or two apps never share one.
pub fn cgroup_name(root: &StateRoot, app: &str, container: &str) -> String {
    format!("{}-{container}", root.short_id(app))
}

/// The container's secrets tmpfs (detached, at most 1 MiB, `noswap` where the kernel has it)
/// holding `files`, and a detached mount of each file, in order: written from memory, never
/// staged on disk, never visible on the host.
fn secret_mounts(container: &str, files: &[FileInit]) -> Result<Vec<std::os::fd::OwnedFd>, CreateError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let m = crate::secrets::SecretMounts::with_files(files.iter().map(|f| crate::secrets::SecretFile {
        target: &f.path,
        content: &f.data,
        mode: f.mode,
        owner: tfctl_schema::model::Owner { uid: f.uid, gid: f.gid },
    }))
    .map_err(|source| CreateError::Secrets { container: container.to_string(), source })?;
    Ok(m.mounts.into_iter().map(|p| p.fd).collect())
}
