//! The client side of an app's control socket, for the CLI: reach the supervisor, send one
//! request, read its reply. A request the supervisor answers at once (`ps`, `down`, `kill`...)
//! is given [`ANSWER_DEADLINE`]: a stuck supervisor is an error that says so, not a hang.

use std::time::Duration;

use super::record;
use crate::control::Connection;
use crate::state::StateRoot;

/// How long a supervisor has to answer a request it serves at once. It takes milliseconds
/// unless it is stuck (or dying).
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the supervisor of {app}: {source}")]
    Unreachable { app: String, source: std::io::Error },
    #[error("the supervisor of {app} did not answer within {} s: it may be stuck; `tfctl ps` shows its pid", .waited.as_secs())]
    NoAnswer { app: String, waited: Duration },
    #[error("the supervisor of {app} closed the connection without answering")]
    Closed { app: String },
    #[error("lost the connection to the supervisor of {app}: {source}")]
    Broken { app: String, source: std::io::Error },
    /// The supervisor's own answer: why it did not do what was asked.
    #[error("{0}")]
    Refused(String),
}

/// For the callers whose errors are still plain messages.
impl From<ClientError> for String {
    fn from(e: ClientError) -> String {
        e.to_string()
    }
}

/// How long to wait for the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// [`ANSWER_DEADLINE`]: the supervisor answers at once.
    Answer,
    /// As long as it takes: the reply comes when the work is done (`stop` waits for its
    /// container's grace period, say).
    Work,
}

/// A connection to `app`'s supervisor with `msg` sent.
pub async fn open(root: &StateRoot, app: &str, msg: &serde_json::Value) -> Result<Connection, ClientError> {
    let dir = record::app_dir(root, app).join("run");
    let unreachable = |source| ClientError::Unreachable { app: app.to_string(), source };
    let mut conn = Connection::connect(&dir).await.map_err(unreachable)?;
    conn.send(msg).await.map_err(unreachable)?;
    Ok(conn)
}

/// The next message on `conn`, within `wait`.
pub async fn reply(conn: &mut Connection, app: &str, wait: Wait) -> Result<serde_json::Value, ClientError> {
    let got = match wait {
        Wait::Answer => tokio::time::timeout(ANSWER_DEADLINE, conn.recv())
            .await
            .map_err(|_| ClientError::NoAnswer { app: app.to_string(), waited: ANSWER_DEADLINE })?,
        Wait::Work => conn.recv().await,
    };
    got.map_err(|source| ClientError::Broken { app: app.to_string(), source })?
        .ok_or_else(|| ClientError::Closed { app: app.to_string() })
}

/// Sends `msg` and returns the supervisor's reply, waiting as `wait` says; its `error` when the
/// reply is not `ok`.
pub async fn call_waiting(root: &StateRoot, app: &str, msg: &serde_json::Value, wait: Wait) -> Result<serde_json::Value, ClientError> {
    let mut conn = open(root, app, msg).await?;
    let reply = reply(&mut conn, app, wait).await?;
    if reply["ok"] == true {
        Ok(reply)
    } else {
        Err(ClientError::Refused(reply["error"].as_str().unwrap_or("failed").to_string()))
    }
}

/// [`call_waiting`] for a request the supervisor answers at once.
pub async fn call(root: &StateRoot, app: &str, msg: &serde_json::Value) -> Result<serde_json::Value, ClientError> {
    call_waiting(root, app, msg, Wait::Answer).await
}
