//! Pre-boot files and templates: read from their sources and rendered in memory. The start
//! sequence writes them into the container's root by descriptor (`rootfs::write_file`), those
//! that use a secret onto the secrets tmpfs.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use tfctl_schema::model::{FileContent, Owner, PreBootFile};
use zeroize::Zeroizing;

use crate::secrets::SecretValue;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
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

#[cfg(test)]
mod tests;
