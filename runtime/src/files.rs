//! Pre-boot files and templates, written into a container's root filesystem by descriptor.
//!
//! Every path inside the rootfs is resolved with `openat2(RESOLVE_IN_ROOT)` from a descriptor
//! of the rootfs: `..` stops at the rootfs' top and symlinks (absolute or relative) resolve as
//! they would inside the container, so a symlink planted in an image cannot send a write
//! outside the rootfs. Missing parent folders are made (0755, root-owned) the same way.

use std::collections::HashMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, Gid, Uid};
use tfctl_schema::model::{FileContent, Owner, PreBootFile};
use zeroize::Zeroizing;

use crate::secrets::SecretValue;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file {path}: {what} failed inside the root filesystem: {errno}")]
    Resolve {
        path: String,
        what: &'static str,
        errno: Errno,
    },
    #[error("file {path}: the path inside the container is {found}, not a {wanted}")]
    WrongKind {
        path: String,
        found: &'static str,
        wanted: &'static str,
    },
    #[error("file {path}: cannot read its source {source_path}: {source}")]
    Source {
        path: String,
        source_path: PathBuf,
        source: std::io::Error,
    },
    #[error("file {path}: template: {message}")]
    Template { path: String, message: String },
}

/// What templates can refer to.
#[derive(Debug, Default, Clone)]
pub struct TemplateContext {
    /// `{{ ip.NAME }}`: a container's address on the app network.
    pub ips: HashMap<String, Ipv4Addr>,
    /// `{{ name.NAME }}`: the host name a container is reached by.
    pub names: HashMap<String, String>,
    /// `{{ secret.NAME }}`: a secret's value.
    pub secrets: HashMap<String, SecretValue>,
}

/// A template's output.
pub struct Rendered {
    pub bytes: Zeroizing<Vec<u8>>,
    /// The output holds a secret: it belongs on the secrets tmpfs.
    pub uses_secret: bool,
}

/// Renders `{{ ip.NAME }}`, `{{ name.NAME }}` and `{{ secret.NAME }}` (spaces inside the braces
/// optional). Anything else between `{{` and `}}` is an error; error messages name the
/// reference, never a value.
pub fn render(text: &str, ctx: &TemplateContext) -> Result<Rendered, String> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
    let mut uses_secret = false;
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!(
                "`{{{{` at byte {} is never closed with `}}}}`",
                text.len() - rest.len() + start
            )
        })?;
        let reference = after[..end].trim();
        let (kind, name) = reference.split_once('.').ok_or_else(|| {
            format!("`{{{{ {reference} }}}}` is not ip.NAME, name.NAME or secret.NAME")
        })?;
        let missing = || format!("`{{{{ {reference} }}}}`: no {kind} named `{name}` in this app");
        match kind {
            "ip" => out.extend_from_slice(
                ctx.ips
                    .get(name)
                    .ok_or_else(missing)?
                    .to_string()
                    .as_bytes(),
            ),
            "name" => out.extend_from_slice(ctx.names.get(name).ok_or_else(missing)?.as_bytes()),
            "secret" => {
                out.extend_from_slice(ctx.secrets.get(name).ok_or_else(missing)?.expose());
                uses_secret = true;
            }
            _ => {
                return Err(format!(
                    "`{{{{ {reference} }}}}` is not ip.NAME, name.NAME or secret.NAME"
                ))
            }
        }
        rest = &after[end + 2..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(Rendered {
        bytes: out,
        uses_secret,
    })
}

/// A pre-boot file ready to write.
pub struct RenderedFile {
    /// Absolute path inside the container.
    pub path: String,
    pub content: Zeroizing<Vec<u8>>,
    pub mode: u32,
    pub owner: Owner,
    /// Holds a secret: write it with the secrets (`secrets::SecretFile`), not into the rootfs.
    pub uses_secret: bool,
}

impl std::fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RenderedFile({}, {} bytes, {:o}, secret: {})",
            self.path,
            self.content.len(),
            self.mode,
            self.uses_secret
        )
    }
}

/// Reads and renders a container's pre-boot files. Files without an owner are root's.
pub fn render_files(
    files: &[PreBootFile],
    ctx: &TemplateContext,
) -> Result<Vec<RenderedFile>, FileError> {
    files
        .iter()
        .map(|f| {
            let raw = match &f.content {
                FileContent::Inline(s) => Zeroizing::new(s.clone().into_bytes()),
                FileContent::From(p) => {
                    Zeroizing::new(std::fs::read(p).map_err(|source| FileError::Source {
                        path: f.path.clone(),
                        source_path: p.clone(),
                        source,
                    })?)
                }
            };
            let (content, uses_secret) = if f.template {
                let text = std::str::from_utf8(&raw).map_err(|_| FileError::Template {
                    path: f.path.clone(),
                    message: "a template must be UTF-8 text".into(),
                })?;
                let r = render(text, ctx).map_err(|message| FileError::Template {
                    path: f.path.clone(),
                    message,
                })?;
                (r.bytes, r.uses_secret)
            } else {
                (raw, false)
            };
            Ok(RenderedFile {
                path: f.path.clone(),
                content,
                mode: f.mode,
                owner: f.owner.unwrap_or(Owner { uid: 0, gid: 0 }),
                uses_secret,
            })
        })
        .collect()
}

fn rel(path: &str) -> &str {
    let r = path.trim_start_matches('/');
    if r.is_empty() {
        "."
    } else {
        r
    }
}

fn how(flags: OFlag, mode: u32) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(Mode::from_bits_truncate(mode))
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

fn err<'a>(path: &'a str, what: &'static str) -> impl Fn(Errno) -> FileError + 'a {
    move |errno| FileError::Resolve {
        path: path.to_string(),
        what,
        errno,
    }
}

/// Symlinks followed while making missing folders, as the kernel's own limit.
const MAX_LINKS: u32 = 40;

/// If `path`'s last component is a symlink, the path it points to (resolved again from the
/// rootfs, so it cannot leave it either).
fn link_target(root: BorrowedFd<'_>, path: &str) -> Result<Option<String>, FileError> {
    let r = rel(path);
    let (parent, name) = r.rsplit_once('/').unwrap_or((".", r));
    let parent_fd = openat2(root, parent, how(OFlag::O_PATH | OFlag::O_DIRECTORY, 0))
        .map_err(err(path, "open folder"))?;
    match nix::fcntl::readlinkat(&parent_fd, name) {
        Ok(target) => {
            let target = target.to_string_lossy().into_owned();
            Ok(Some(if target.starts_with('/') {
                target
            } else {
                format!("{parent}/{target}")
            }))
        }
        Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(err(path, "readlink")(e)),
    }
}

/// Opens (making it if missing, with its parents) a folder inside the rootfs; `O_PATH`. A
/// dangling symlink on the way is followed inside the rootfs and its target made.
pub fn open_dir(root: BorrowedFd<'_>, path: &str, create: bool) -> Result<OwnedFd, FileError> {
    open_dir_depth(root, path, create, 0)
}

fn open_dir_depth(
    root: BorrowedFd<'_>,
    path: &str,
    create: bool,
    links: u32,
) -> Result<OwnedFd, FileError> {
    let r = rel(path);
    match openat2(root, r, how(OFlag::O_PATH | OFlag::O_DIRECTORY, 0)) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) if create && links < MAX_LINKS => {
            let (parent, name) = r.rsplit_once('/').unwrap_or((".", r));
            let parent_fd = open_dir_depth(root, parent, true, links)?;
            match mkdirat(&parent_fd, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) => {}
                Err(Errno::EEXIST) => {
                    if let Some(target) = link_target(root, &format!("{parent}/{name}"))? {
                        return open_dir_depth(root, &target, true, links + 1);
                    }
                }
                Err(e) => return Err(err(path, "mkdir")(e)),
            }
            openat2(root, r, how(OFlag::O_PATH | OFlag::O_DIRECTORY, 0))
                .map_err(err(path, "open folder"))
        }
        Err(e) => Err(err(path, "open folder")(e)),
    }
}

/// Opens `path` with `flags` (including `O_CREAT`); when the last component is a dangling
/// symlink whose target folder is missing, makes that folder inside the rootfs first.
fn create_at(
    root: BorrowedFd<'_>,
    path: &str,
    flags: OFlag,
    mode: u32,
) -> Result<OwnedFd, FileError> {
    let mut path = path.to_string();
    for _ in 0..MAX_LINKS {
        open_dir(root, parent_of(&path), true)?;
        match openat2(root, rel(&path), how(flags, mode)) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => match link_target(root, &path)? {
                Some(target) => path = target,
                None => return Err(err(&path, "create")(Errno::ENOENT)),
            },
            Err(e) => return Err(err(&path, "open")(e)),
        }
    }
    Err(FileError::Resolve {
        path,
        what: "open",
        errno: Errno::ELOOP,
    })
}

fn parent_of(path: &str) -> &str {
    rel(path).rsplit_once('/').map_or(".", |(p, _)| p)
}

fn kind(fd: BorrowedFd<'_>, path: &str) -> Result<SFlag, FileError> {
    let st = fstat(fd).map_err(err(path, "stat"))?;
    Ok(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()))
}

fn kind_name(k: SFlag) -> &'static str {
    match k {
        SFlag::S_IFDIR => "a folder",
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
        _ => "something else",
    }
}

/// Writes one file into the rootfs: created or truncated, owner and mode set, then the content.
/// Only regular files are written (a FIFO or device planted at the path is refused).
pub fn write_file(
    root: BorrowedFd<'_>,
    path: &str,
    content: &[u8],
    mode: u32,
    owner: Owner,
) -> Result<(), FileError> {
    let fd = create_at(
        root,
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        0o600,
    )?;
    let k = kind(fd.as_fd(), path)?;
    if k != SFlag::S_IFREG {
        return Err(FileError::WrongKind {
            path: path.to_string(),
            found: kind_name(k),
            wanted: "regular file",
        });
    }
    nix::unistd::ftruncate(&fd, 0).map_err(err(path, "truncate"))?;
    fchown(
        &fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
    .map_err(err(path, "chown"))?;
    fchmod(&fd, Mode::from_bits_truncate(mode & 0o7777)).map_err(err(path, "chmod"))?;
    std::fs::File::from(fd)
        .write_all(content)
        .map_err(|e| err(path, "write")(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))
}

/// Writes the pre-boot files that hold no secret (the others go on the secrets tmpfs).
pub fn write_files(root: BorrowedFd<'_>, files: &[RenderedFile]) -> Result<(), FileError> {
    for f in files.iter().filter(|f| !f.uses_secret) {
        write_file(root, &f.path, &f.content, f.mode, f.owner)?;
    }
    Ok(())
}

/// What a mount covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    File,
    Dir,
}

/// An `O_PATH` descriptor of a mount target inside the rootfs, made if missing (an empty file
/// or a folder, with parents): what `move_mount` and bind mounts attach onto.
pub fn mount_target(
    root: BorrowedFd<'_>,
    path: &str,
    want: TargetKind,
) -> Result<OwnedFd, FileError> {
    if want == TargetKind::Dir {
        return open_dir(root, path, true);
    }
    open_dir(root, parent_of(path), true)?;
    let fd = match openat2(root, rel(path), how(OFlag::O_PATH, 0)) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            // An empty file to mount onto (through a dangling symlink, at its target).
            drop(create_at(
                root,
                path,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NONBLOCK,
                0o644,
            )?);
            openat2(root, rel(path), how(OFlag::O_PATH, 0)).map_err(err(path, "open"))?
        }
        Err(e) => return Err(err(path, "open")(e)),
    };
    let k = kind(fd.as_fd(), path)?;
    if k == SFlag::S_IFDIR {
        return Err(FileError::WrongKind {
            path: path.to_string(),
            found: "a folder",
            wanted: "file",
        });
    }
    Ok(fd)
}

#[cfg(test)]
mod tests;
