//! Resolving `user` (`NAME`, `UID`, `NAME:GROUP`, `UID:GID`, ...) against the image's
//! /etc/passwd and /etc/group, as Docker does. Both files are read by descriptor inside the
//! rootfs (an image may make them symlinks: they resolve inside the rootfs), only if they are
//! regular files, and at most 4 MiB each: image content is untrusted input.

use std::io::Read;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

use super::SpecError;

const MAX_DB_SIZE: u64 = 4 << 20;

/// The user a container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary group, and unless `user` names its group, those of
    /// /etc/group listing the user by name.
    pub additional_gids: Vec<u32>,
    /// From /etc/passwd; `/` when the user has no entry.
    pub home: String,
    pub name: Option<String>,
}

impl ResolvedUser {
    pub fn root() -> ResolvedUser {
        ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/root".into(),
            name: Some("root".into()),
        }
    }
}

impl From<&ResolvedUser> for crate::spawn::plan::User {
    fn from(u: &ResolvedUser) -> Self {
        crate::spawn::plan::User {
            uid: u.uid,
            gid: u.gid,
            additional_gids: u.additional_gids.clone(),
        }
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Reads a small text file inside the rootfs; `None` if it does not exist.
fn read_db(root: BorrowedFd<'_>, path: &str) -> Result<Option<String>, SpecError> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(root, path, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
        Err(e) => {
            return Err(SpecError::ImageFile {
                path: format!("/{path}"),
                message: e.to_string(),
            })
        }
    };
    let f = std::fs::File::from(fd);
    let meta = f.metadata().map_err(|e| SpecError::ImageFile {
        path: format!("/{path}"),
        message: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(SpecError::ImageFile {
            path: format!("/{path}"),
            message: "not a regular file".into(),
        });
    }
    let mut buf = Vec::new();
    f.take(MAX_DB_SIZE)
        .read_to_end(&mut buf)
        .map_err(|e| SpecError::ImageFile {
            path: format!("/{path}"),
            message: e.to_string(),
        })?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7).then(|| -> Option<PasswdEntry> {
                Some(PasswdEntry {
                    name: f[0].into(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f[5].into(),
                })
            })?
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| -> Option<GroupEntry> {
                Some(GroupEntry {
                    name: f[0].into(),
                    gid: f[2].parse().ok()?,
                    members: f[3]
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect(),
                })
            })?
        })
        .collect()
}

/// Adds `groups` (`--group-add`: names the image's /etc/group defines, or numbers) to the
/// user's supplementary groups, as Docker does: a name is looked up in the image, never on the
/// host (`group_root`: the folder, or image layer, whose /etc/group counts).
pub fn add_groups(user: &mut ResolvedUser, groups: &[String], group_root: BorrowedFd<'_>) -> Result<(), SpecError> {
    if groups.is_empty() {
        return Ok(());
    }
    let known = read_db(group_root, "etc/group")?.map(|t| parse_group(&t)).unwrap_or_default();
    for g in groups {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => known
                .iter()
                .find(|e| e.name == *g)
                .map(|e| e.gid)
                .ok_or_else(|| SpecError::UnknownGroup(g.clone()))?,
        };
        if gid == u32::MAX {
            return Err(SpecError::ReservedId { what: "gid", id: gid });
        }
        user.additional_gids.push(gid);
    }
    user.additional_gids.sort_unstable();
    user.additional_gids.dedup();
    Ok(())
}

/// Resolves `spec` (`None`: root) with the /etc/passwd under `root` and the /etc/group under
/// `group_root` (the same folder, or the image layer that last changed /etc/group).
pub fn resolve_user(spec: Option<&str>, root: BorrowedFd<'_>, group_root: BorrowedFd<'_>) -> Result<ResolvedUser, SpecError> {
    let spec = spec.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("0");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_db(root, "etc/passwd")?
        .map(|t| parse_passwd(&t))
        .unwrap_or_default();
    let groups = read_db(group_root, "etc/group")?
        .map(|t| parse_group(&t))
        .unwrap_or_default();

    let numeric_uid = user_part.parse::<u32>().ok();
    let entry = match numeric_uid {
        Some(uid) => passwd.iter().find(|e| e.uid == uid),
        None => Some(passwd.iter().find(|e| e.name == user_part).ok_or_else(|| {
            SpecError::UnknownUser {
                user: user_part.to_string(),
                file: "/etc/passwd",
            }
        })?),
    };
    let uid = numeric_uid.or(entry.map(|e| e.uid)).unwrap_or(0);
    let mut gid = entry.map_or(0, |e| e.gid);
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| SpecError::UnknownUser {
                    user: g.to_string(),
                    file: "/etc/group",
                })?,
        };
    }
    let name = entry.map(|e| e.name.clone());
    // As Docker (runc) sets them: the primary group always, and the groups listing the user by
    // name unless `user` names its group (then that group alone).
    let mut additional_gids = vec![gid];
    if let (Some(n), None) = (&name, group_part) {
        additional_gids.extend(groups.iter().filter(|g| g.members.iter().any(|m| m == n)).map(|g| g.gid));
    }
    additional_gids.sort_unstable();
    additional_gids.dedup();
    // setresuid(-1) and setgroups with -1 change nothing: uid or gid 2^32-1, from `--user` or an
    // image's /etc/passwd, would leave the process as root.
    if uid == u32::MAX {
        return Err(SpecError::ReservedId { what: "uid", id: uid });
    }
    if let Some(&g) = std::iter::once(&gid).chain(&additional_gids).find(|g| **g == u32::MAX) {
        return Err(SpecError::ReservedId { what: "gid", id: g });
    }
    let home = entry.map_or_else(|| "/".to_string(), |e| e.home.clone());
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
        name,
    })
}
