//! Why a conversion failed: every error names the file (and, where there is one, the service and
//! key) and says what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Compose file given and none in {dir}: looked for compose.yaml, compose.yml, docker-compose.yml and docker-compose.yaml; name one with -f FILE")]
    NoFile { dir: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not valid YAML: {source}", path.display())]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: {what}: {message}", path.display())]
    Variable {
        path: PathBuf,
        /// Where the variable stands: `services.web.image`.
        what: String,
        message: String,
    },
    #[error("{}: service `{service}`: extends: {message}", path.display())]
    Extends {
        path: PathBuf,
        service: String,
        message: String,
    },
    #[error("the Compose files define no services: write at least one under `services:`")]
    NoServices,
    #[error("service `{service}`: {key}: {message}")]
    Service {
        service: String,
        key: String,
        message: String,
    },
}
