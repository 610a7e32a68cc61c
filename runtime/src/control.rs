//! The control socket: how every other command talks to an app's supervisor.
//!
//! A Unix stream socket, 0600 in a 0700 folder, served only to uid 0 (checked with SO_PEERCRED
//! on every connection). Requests and replies are JSON, one per line, of at most
//! [`MAX_MESSAGE`] bytes. The socket's path can be longer than `sun_path` (108 bytes) under a
//! long `--root`, so it is bound and reached through `/proc/self/fd/N/NAME` of its opened
//! folder, which is always short.
//!
//! The supervisor's loop must never wait on a client: each connection's header and request are
//! read in a task of their own, within [`REQUEST_DEADLINE`], and only a whole request reaches
//! the loop.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};

pub const SOCKET_NAME: &str = "control.sock";

/// The longest message (one JSON line) either side reads: a request carries at most an app
/// file and the secrets `up` took from its environment.
pub const MAX_MESSAGE: usize = 1 << 20;

/// How long a client has, once connected, to send its header and its request.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// Connections read at once, each holding at most one request; more wait in the listen backlog.
const READING_MAX: usize = 32;

/// A short path for `name` inside the folder `dir` is opened as.
fn short_path(dir: &File, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

fn open_dir(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
}

/// A request as it reached the supervisor: its connection, for the reply, and what it asks.
pub struct Request {
    pub conn: Connection,
    pub body: serde_json::Value,
}

/// The listening side, held by the supervisor. Connections are accepted and read in the
/// background from [`ControlServer::bind`] on; dropping the server stops that.
pub struct ControlServer {
    requests: mpsc::Receiver<Request>,
    acceptor: tokio::task::JoinHandle<()>,
    path: PathBuf,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        // Also ends the connections still being read: the acceptor owns their tasks.
        self.acceptor.abort();
    }
}

impl ControlServer {
    /// Binds `dir/control.sock`, replacing a stale socket left by a crashed supervisor (the
    /// caller holds the app's lock, so no live supervisor owns it), and starts accepting.
    pub fn bind(dir: &Path) -> io::Result<ControlServer> {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let dirfd = open_dir(dir)?;
        let short = short_path(&dirfd, SOCKET_NAME);
        match std::fs::remove_file(&short) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&short)?;
        std::fs::set_permissions(dir.join(SOCKET_NAME), std::fs::Permissions::from_mode(0o600))?;
        let (tx, requests) = mpsc::channel(READING_MAX);
        let acceptor = tokio::spawn(accept_loop(listener, tx));
        Ok(ControlServer { requests, acceptor, path: dir.join(SOCKET_NAME) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next whole request from root. Cancel-safe: a request not taken stays queued.
    pub async fn next_request(&mut self) -> Option<Request> {
        self.requests.recv().await
    }
}

/// Accepts connections from root (others are dropped here) and reads each in a task of its
/// own, at most [`READING_MAX`] at a time.
async fn accept_loop(listener: UnixListener, tx: mpsc::Sender<Request>) {
    let reading = Arc::new(Semaphore::new(READING_MAX));
    let mut readers = tokio::task::JoinSet::new();
    loop {
        let Ok(permit) = reading.clone().acquire_owned().await else { return };
        while readers.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: try again later rather than spin.
                tracing::warn!("cannot accept a control connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == 0 => {}
            _ => {
                tracing::warn!("refused a control connection from a process not running as root");
                continue;
            }
        }
        let tx = tx.clone();
        readers.spawn(async move {
            let request = tokio::time::timeout(REQUEST_DEADLINE, read_request(stream)).await;
            drop(permit);
            if let Ok(Some(request)) = request {
                let _ = tx.send(request).await;
            }
        });
    }
}

/// The header and the request of a new connection. A request that is too long or not JSON is
/// answered with an error here; a connection closed early is dropped.
async fn read_request(stream: UnixStream) -> Option<Request> {
    let fds = recv_header(&stream).await.ok()?;
    let mut conn = Connection::new(stream);
    conn.fds = fds;
    match conn.recv::<serde_json::Value>().await {
        Ok(Some(body)) => Some(Request { conn, body }),
        Ok(None) => None,
        Err(e) => {
            let _ = conn.send(&serde_json::json!({"ok": false, "error": format!("bad request: {e}")})).await;
            None
        }
    }
}

/// Every connection opens with a one-byte header that may carry descriptors (SCM_RIGHTS): the
/// caller's stdin, stdout and stderr for `exec`. It is read with recvmsg before any buffered
/// reading, which would drop the descriptors.
const MAX_FDS: usize = 3;

async fn recv_header(stream: &UnixStream) -> io::Result<Vec<std::os::fd::OwnedFd>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    loop {
        stream.readable().await?;
        let got = stream.try_io(tokio::io::Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let mut iov = [std::io::IoSliceMut::new(&mut byte)];
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; MAX_FDS]);
            let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
                .map_err(io::Error::from)?;
            if msg.bytes == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no header"));
            }
            let mut fds = Vec::new();
            for c in msg.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    fds.extend(crate::sys::owned_received_fds(raw));
                }
            }
            Ok(fds)
        });
        match got {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

fn send_header(stream: &UnixStream, fds: &[std::os::fd::BorrowedFd<'_>]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let raw: Vec<std::os::fd::RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let iov = [std::io::IoSlice::new(&[0u8])];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(stream.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).map_err(io::Error::from)?;
    Ok(())
}

/// One JSON-lines conversation.
pub struct Connection {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    /// Descriptors the client sent with its header.
    fds: Vec<std::os::fd::OwnedFd>,
}

impl Connection {
    fn new(stream: UnixStream) -> Connection {
        let (r, w) = stream.into_split();
        Connection { reader: BufReader::new(r), writer: w, fds: Vec::new() }
    }

    /// Connects to the supervisor whose control folder is `dir`.
    pub async fn connect(dir: &Path) -> io::Result<Connection> {
        Connection::connect_with_fds(dir, &[]).await
    }

    /// Connects, handing the supervisor `fds` (at most three: stdin, stdout, stderr).
    pub async fn connect_with_fds(dir: &Path, fds: &[std::os::fd::BorrowedFd<'_>]) -> io::Result<Connection> {
        let dirfd = open_dir(dir)?;
        let stream = UnixStream::connect(short_path(&dirfd, SOCKET_NAME)).await?;
        send_header(&stream, &fds[..fds.len().min(MAX_FDS)])?;
        Ok(Connection::new(stream))
    }

    /// The descriptors the client sent.
    pub fn take_fds(&mut self) -> Vec<std::os::fd::OwnedFd> {
        std::mem::take(&mut self.fds)
    }

    /// Hands `fds` to the peer ahead of the next message (SCM_RIGHTS on one byte, as the
    /// client's header does); the peer takes them with `recv_fds` before reading that message.
    pub async fn send_fds(&mut self, fds: &[std::os::fd::BorrowedFd<'_>]) -> io::Result<()> {
        self.writer.flush().await?;
        let stream: &UnixStream = self.writer.as_ref();
        loop {
            stream.writable().await?;
            match send_header(stream, &fds[..fds.len().min(MAX_FDS)]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    /// The descriptors the peer sent with `send_fds`; called before reading the message after
    /// them, since buffered reading would drop them.
    pub async fn recv_fds(&mut self) -> io::Result<Vec<std::os::fd::OwnedFd>> {
        if !self.reader.buffer().is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "descriptors arrived after a buffered message"));
        }
        recv_header(self.reader.get_ref().as_ref()).await
    }

    pub async fn send<T: Serialize>(&mut self, msg: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
        line.push(b'\n');
        self.writer.write_all(&line).await
    }

    /// The next message; `None` when the peer closed the connection. A message longer than
    /// [`MAX_MESSAGE`] is an error (and ends the conversation: the rest of it is not read).
    pub async fn recv<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        let mut line = Vec::new();
        if (&mut self.reader).take(MAX_MESSAGE as u64 + 1).read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            return Err(if line.len() > MAX_MESSAGE {
                io::Error::new(io::ErrorKind::InvalidData, format!("a message is longer than {} MiB", MAX_MESSAGE >> 20))
            } else {
                io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed in the middle of a message")
            });
        }
        serde_json::from_slice(&line).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn round_trip_under_a_long_root_with_private_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        // Deeper than sun_path allows, as a --root of 100 characters plus app folders can be.
        let dir = tmp.path().join("r".repeat(100)).join("apps").join("a".repeat(63));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(dir.join(SOCKET_NAME).as_os_str().len() > 108);
        let server = ControlServer::bind(&dir).unwrap();
        assert_eq!(std::fs::metadata(server.path()).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let serve = tokio::spawn(async move {
            let mut server = server;
            let Request { mut conn, body } = server.next_request().await.unwrap();
            conn.send(&serde_json::json!({"echo": body})).await.unwrap();
        });
        let mut client = Connection::connect(&dir).await.unwrap();
        client.send(&serde_json::json!({"op": "ps"})).await.unwrap();
        let reply: serde_json::Value = client.recv().await.unwrap().unwrap();
        assert_eq!(reply["echo"]["op"], "ps");
        serve.await.unwrap();
    }

    #[tokio::test]
    async fn a_process_not_running_as_root_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            crate::skip::cannot_run("a_process_not_running_as_root_is_refused", "needs root to switch users");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ctl");
        std::fs::create_dir(&dir).unwrap();
        let server = ControlServer::bind(&dir).unwrap();
        // Let `nobody` reach the socket file, to prove that SO_PEERCRED, not only the file
        // mode, refuses it.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(server.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let sock = server.path().to_path_buf();
        let accepted = tokio::spawn(async move {
            let mut server = server;
            server.next_request().await.is_some()
        });
        let script = format!(
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\ntry:\n  s.sendall(b'{{}}\\n')\n  sys.exit(0 if s.recv(10)==b'' else 1)\nexcept ConnectionError:\n  sys.exit(0)",
            sock.display().to_string()
        );
        let status = tokio::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &script])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "the unprivileged client was not cut off");
        // The server never handed that connection out.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!accepted.is_finished());
        accepted.abort();
    }

    fn bound() -> (tempfile::TempDir, ControlServer) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ctl");
        std::fs::create_dir(&dir).unwrap();
        let server = ControlServer::bind(&dir).unwrap();
        (tmp, server)
    }

    async fn ps(dir: &Path) -> Connection {
        let mut c = Connection::connect(dir).await.unwrap();
        c.send(&serde_json::json!({"op": "ps"})).await.unwrap();
        c
    }

    #[tokio::test]
    async fn a_client_stuck_in_the_middle_of_its_request_holds_up_no_other() {
        let (tmp, mut server) = bound();
        let dir = tmp.path().join("ctl");
        // The header and half a request, then nothing: the connection stays open.
        let mut stuck = UnixStream::connect(server.path()).await.unwrap();
        stuck.write_all(b"\0{\"op\": \"p").await.unwrap();
        // Stuck before its header too.
        let _silent = UnixStream::connect(server.path()).await.unwrap();
        let mut client = ps(&dir).await;
        let Request { mut conn, body } = server.next_request().await.unwrap();
        assert_eq!(body["op"], "ps");
        conn.send(&serde_json::json!({"ok": true})).await.unwrap();
        let reply: serde_json::Value = client.recv().await.unwrap().unwrap();
        assert_eq!(reply["ok"], true);
        // The stuck client is cut off once its time is up, and its half request never arrives.
        let mut rest = Vec::new();
        stuck.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        let second = ps(&dir).await;
        let next = server.next_request().await.unwrap();
        assert_eq!(next.body["op"], "ps");
        drop(second);
    }

    #[tokio::test]
    async fn a_request_longer_than_the_limit_is_answered_with_an_error_and_not_delivered() {
        let (tmp, mut server) = bound();
        let dir = tmp.path().join("ctl");
        let (r, mut w) = UnixStream::connect(server.path()).await.unwrap().into_split();
        // A header, then a JSON string of 4 MiB: the server reads no more than the limit of it.
        let writing = tokio::spawn(async move {
            w.write_all(b"\0{\"op\": \"ps\", \"pad\": \"").await.unwrap();
            let _ = w.write_all(&vec![b'x'; 4 << 20]).await;
            let _ = w.write_all(b"\"}\n").await;
        });
        let mut line = String::new();
        BufReader::new(r).read_line(&mut line).await.unwrap();
        let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["ok"], false);
        assert!(reply["error"].as_str().unwrap().contains("longer than 1 MiB"), "{reply}");
        writing.await.unwrap();
        // What the server hands out next is the next client's request.
        let _client = ps(&dir).await;
        assert_eq!(server.next_request().await.unwrap().body["op"], "ps");
        // A request just under the limit still goes through.
        let mut fits = Connection::connect(&dir).await.unwrap();
        fits.send(&serde_json::json!({"op": "plan", "pad": "y".repeat(MAX_MESSAGE - 100)})).await.unwrap();
        assert_eq!(server.next_request().await.unwrap().body["op"], "plan");
    }
}
