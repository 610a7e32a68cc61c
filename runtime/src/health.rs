//! `http` and `tcp` health probes, made by tfctl itself from inside the container's network
//! namespace: the image needs no tools, and the container's inbound firewall (which guards the
//! veth) does not apply to traffic on its own loopback.
//!
//! A socket belongs to the network namespace it was created in, so a short-lived thread enters
//! the container's namespace, creates the socket and ends; the probe then runs on tokio as usual.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// A TCP socket created inside the network namespace `netns`.
pub fn socket_in(netns: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let ns = netns.try_clone_to_owned()?;
    std::thread::spawn(move || -> io::Result<OwnedFd> {
        // This thread exists only to hold the namespace switch; it ends right after.
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        let fd = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC | nix::sys::socket::SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        Ok(fd)
    })
    .join()
    .map_err(|_| io::Error::other("the probe thread panicked"))?
}

async fn connect(netns: BorrowedFd<'_>, addr: SocketAddr, timeout: Duration) -> io::Result<tokio::net::TcpStream> {
    let fd = socket_in(netns)?;
    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(fd));
    tokio::time::timeout(timeout, socket.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("no connection to {addr} within {timeout:?}")))?
}

/// Passes when a TCP connection to `port` on the container's loopback opens within `timeout`.
pub async fn tcp(netns: BorrowedFd<'_>, port: u16, timeout: Duration) -> io::Result<()> {
    connect(netns, SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout).await.map(drop)
}

/// The parts of an http probe URL tfctl accepts: `http://HOST[:PORT][/PATH]`, HOST an IPv4
/// address or `localhost` (the container's own loopback).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTarget {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

pub fn parse_http_url(url: &str) -> Result<HttpTarget, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL (https probes are not supported; probe the plain port)"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("`{p}` in `{url}` is not a port"))?),
        None => (hostport, 80),
    };
    let ip = if host == "localhost" {
        Ipv4Addr::LOCALHOST
    } else {
        host.parse().map_err(|_| format!("`{host}` in `{url}` must be localhost or an IPv4 address"))?
    };
    Ok(HttpTarget { addr: SocketAddr::from((ip, port)), host: hostport.to_string(), path: path.to_string() })
}

/// Passes when `GET url` answers 2xx or 3xx within `timeout`. Returns the status code.
pub async fn http(netns: BorrowedFd<'_>, url: &str, timeout: Duration) -> io::Result<u16> {
    let target = parse_http_url(url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let exchange = async {
        let mut stream = connect(netns, target.addr, timeout).await?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: tfctl-health\r\nConnection: close\r\n\r\n",
            target.path, target.host
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 64];
        let mut got = 0;
        while got < 12 {
            let n = stream.read(&mut head[got..]).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let line = String::from_utf8_lossy(&head[..got]);
        let code = line
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP answer from {url}")))?;
        Ok::<u16, io::Error>(code)
    };
    let code = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{url} did not answer within {timeout:?}")))??;
    if (200..400).contains(&code) {
        Ok(code)
    } else {
        Err(io::Error::other(format!("{url} answered {code}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_http_url("http://localhost:8080/healthz").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.path, "/healthz");
        assert_eq!(parse_http_url("http://10.0.0.1").unwrap().addr, "10.0.0.1:80".parse().unwrap());
        assert!(parse_http_url("https://localhost/").is_err());
        assert!(parse_http_url("http://example.com/").is_err());
        assert!(parse_http_url("http://localhost:99999/").is_err());
    }
}
