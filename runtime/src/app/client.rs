//! The client side of an app's control socket, for the CLI: reach the supervisor, send one
//! request, read its reply.

use super::record;
use crate::control::Connection;
use crate::state::StateRoot;

/// A connection to `app`'s supervisor with `msg` sent.
pub async fn open(root: &StateRoot, app: &str, msg: &serde_json::Value) -> Result<Connection, String> {
    let dir = record::app_dir(root, app).join("run");
    let mut conn = Connection::connect(&dir).await.map_err(|e| format!("cannot reach the supervisor of {app}: {e}"))?;
    conn.send(msg).await.map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Sends `msg` and returns the supervisor's reply; its `error` when the reply is not `ok`.
pub async fn call(root: &StateRoot, app: &str, msg: &serde_json::Value) -> Result<serde_json::Value, String> {
    let mut conn = open(root, app, msg).await?;
    let reply: serde_json::Value = conn.recv().await.map_err(|e| e.to_string())?.ok_or("the supervisor closed the connection")?;
    if reply["ok"] == true {
        Ok(reply)
    } else {
        Err(reply["error"].as_str().unwrap_or("failed").to_string())
    }
}
