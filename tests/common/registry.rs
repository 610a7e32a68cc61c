//! A real registry for tests: Debian's `docker-registry` on a free loopback port, with its own
//! config, storage and log under a temp dir; plain HTTP, htpasswd Basic auth and/or TLS with a
//! certificate made by openssl. Killed on Drop. Also builds small multi-layer images (tar +
//! sha256 + manifests) and pushes them with oci-client.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};

#[derive(Default)]
pub struct RegistryOptions {
    /// htpasswd Basic auth with this user and password.
    pub basic_auth: Option<(String, String)>,
    /// Serve HTTPS with a fresh self-signed certificate for 127.0.0.1.
    pub tls: bool,
    /// Bearer-token auth: a token server in this process grants tokens to this user.
    pub token_auth: Option<(String, String)>,
}

pub struct Registry {
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub storage: PathBuf,
    pub log: PathBuf,
    /// The CA (self-signed certificate) when serving TLS.
    pub ca: Option<PathBuf>,
    pub opts_auth: Option<(String, String)>,
    token_server: Option<TokenServer>,
    child: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Registry {
    pub fn start(opts: RegistryOptions) -> Registry {
        let dir = tempfile::Builder::new().prefix("tfctl-registry-").tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: tfctl-test-{}\n",
            storage.display(),
            std::process::id()
        );
        let mut ca = None;
        if opts.tls {
            // A CA and a server certificate it signs (rustls refuses a CA as the end entity).
            let p = |n: &str| dir.path().join(n);
            run(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tfctl test CA"])
                .arg("-keyout").arg(p("ca.key")).arg("-out").arg(p("ca.crt")));
            run(Command::new("openssl").args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"])
                .arg("-keyout").arg(p("key.pem")).arg("-out").arg(p("server.csr")));
            std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
            run(Command::new("openssl").args(["x509", "-req", "-days", "1", "-CAcreateserial"])
                .arg("-in").arg(p("server.csr")).arg("-CA").arg(p("ca.crt")).arg("-CAkey").arg(p("ca.key"))
                .arg("-extfile").arg(p("ext.cnf")).arg("-out").arg(p("cert.pem")));
            config.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", p("cert.pem").display(), p("key.pem").display()));
            ca = Some(p("ca.crt"));
        }
        if let Some((user, pass)) = &opts.basic_auth {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd").args(["-Bbn", user, pass]).output().unwrap();
            assert!(out.status.success());
            std::fs::write(&htpasswd, &out.stdout).unwrap();
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: tfctl-test\n    path: {}\n", htpasswd.display()));
        }
        let mut token_server = None;
        if let Some((user, pass)) = &opts.token_auth {
            let ts = TokenServer::start(dir.path(), user, pass);
            config.push_str(&format!(
                "auth:\n  token:\n    realm: http://{}/token\n    service: tfctl-test\n    issuer: tfctl-test-issuer\n    rootcertbundle: {}\n",
                ts.addr,
                ts.cert.display()
            ));
            token_server = Some(ts);
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .stdin(Stdio::null())
            .spawn()
            .expect("docker-registry (apt install docker-registry)");
        let opts_auth = opts.basic_auth.or(opts.token_auth);
        let reg = Registry { dir, addr, storage, log, ca, opts_auth, token_server, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&reg.addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not start: {}", std::fs::read_to_string(&reg.log).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// Requests in the access log whose request line contains `needle` (e.g. `/manifests/`).
    pub fn count_requests(&self, method: &str, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("\"{method} ")) && l.contains(needle))
            .count()
    }

    /// The blob file in the registry's storage, for corruption tests.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    fn client(&self) -> Client {
        tfctl_runtime::image::install_tls_provider();
        let mut cfg = ClientConfig { protocol: ClientProtocol::Http, ..Default::default() };
        if let Some(ca) = &self.ca {
            cfg.protocol = ClientProtocol::Https;
            cfg.extra_root_certificates.push(oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: std::fs::read(ca).unwrap(),
            });
        }
        Client::new(cfg)
    }

    fn auth(&self) -> RegistryAuth {
        match &self.opts_auth {
            Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// Pushes `image` as `repo:tag`; returns the manifest digest.
    pub async fn push(&self, repo: &str, tag: &str, image: &TestImage) -> String {
        let r = Reference::with_tag(self.addr.clone(), repo.into(), tag.into());
        let client = self.client();
        let layers: Vec<ImageLayer> = image.layers.iter().map(|l| ImageLayer::new(l.blob.clone(), l.media_type.into(), None)).collect();
        let config = Config::new(image.config.clone(), "application/vnd.oci.image.config.v1+json".into(), None);
        client.push(&r, &layers, config, &self.auth(), None).await.expect("push");
        client.fetch_manifest_digest(&r, &self.auth()).await.expect("digest")
    }

    /// Pushes an image index over already pushed manifests `(digest, size, arch)`.
    pub async fn push_index(&self, repo: &str, tag: &str, entries: &[(String, usize, &str)]) -> String {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(d, size, arch)| serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": size, "platform": {"architecture": arch, "os": "linux"}}))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})).unwrap();
        let r = Reference::with_tag(self.addr.clone(), repo.into(), tag.into());
        let client = self.client();
        client.store_auth_if_needed(&self.addr, &self.auth()).await;
        client.push_manifest_raw(&r, body.clone(), "application/vnd.oci.image.index.v1+json".parse().unwrap()).await.expect("push index");
        sha256(&body)
    }

    /// Pushes `image` as Docker v2 (schema 2) media types, the way `docker push` writes it,
    /// under a Docker manifest list for `arch`; returns the image manifest's digest.
    pub async fn push_docker_v2(&self, repo: &str, tag: &str, image: &TestImage, arch: &str) -> String {
        let client = self.client();
        client.store_auth_if_needed(&self.addr, &self.auth()).await;
        let r = Reference::with_tag(self.addr.clone(), repo.into(), tag.into());
        let mut layers = Vec::new();
        for l in &image.layers {
            let d = sha256(&l.blob);
            client.push_blob(&r, l.blob.clone(), &d).await.expect("push layer");
            let media = if l.media_type.ends_with("gzip") {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            } else {
                "application/vnd.docker.image.rootfs.diff.tar"
            };
            layers.push(serde_json::json!({"mediaType": media, "digest": d, "size": l.blob.len()}));
        }
        let cd = sha256(&image.config);
        client.push_blob(&r, image.config.clone(), &cd).await.expect("push config");
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd, "size": image.config.len()},
            "layers": layers
        }))
        .unwrap();
        let md = sha256(&manifest);
        let by_digest = Reference::with_digest(self.addr.clone(), repo.into(), md.clone());
        client
            .push_manifest_raw(&by_digest, manifest.clone(), "application/vnd.docker.distribution.manifest.v2+json".parse().unwrap())
            .await
            .expect("push manifest");
        let list = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": md, "size": manifest.len(),
                           "platform": {"architecture": arch, "os": "linux"}}]
        }))
        .unwrap();
        client
            .push_manifest_raw(&r, list, "application/vnd.docker.distribution.manifest.list.v2+json".parse().unwrap())
            .await
            .expect("push manifest list");
        md
    }

    /// Size of a pushed manifest (for index entries).
    pub async fn manifest_size(&self, repo: &str, digest: &str) -> usize {
        let r = Reference::with_digest(self.addr.clone(), repo.into(), digest.into());
        let (b, _) = self.client().pull_manifest_raw(&r, &self.auth(), &["application/vnd.oci.image.manifest.v1+json"]).await.unwrap();
        b.len()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.token_server.take());
    }
}

/// A minimal token endpoint (Docker's token auth): checks Basic credentials and answers with an
/// RS256 JWT signed by openssl, carrying its certificate in `x5c` for the registry to verify.
pub struct TokenServer {
    pub addr: String,
    pub cert: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn b64url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl TokenServer {
    fn start(dir: &Path, user: &str, pass: &str) -> TokenServer {
        let (key, cert) = (dir.join("token.key"), dir.join("token.crt"));
        run(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tfctl token issuer"])
            .arg("-keyout").arg(&key).arg("-out").arg(&cert));
        let der = Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert).output().unwrap().stdout;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let expected = {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
        };
        let (stop2, key2) = (stop.clone(), key.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut buf = vec![0u8; 16384];
                let n = std::io::Read::read(&mut conn, &mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let authorized = req.lines().any(|l| l.to_ascii_lowercase().starts_with("authorization:") && l[14..].trim() == expected);
                let reply = if authorized {
                    let path = req.split_whitespace().nth(1).unwrap_or("");
                    let scope = path.split(['?', '&']).find_map(|kv| kv.strip_prefix("scope=")).unwrap_or("");
                    let scope = scope.replace("%3A", ":").replace("%2F", "/").replace("%2C", ",");
                    let mut parts = scope.splitn(3, ':');
                    let (kind, name, actions) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                    let x5c = {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD.encode(&der)
                    };
                    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
                    let claims = serde_json::json!({"iss": "tfctl-test-issuer", "sub": "u", "aud": "tfctl-test", "exp": now + 300,
                        "nbf": now - 10, "iat": now, "jti": format!("{now}{}", std::process::id()),
                        "access": [{"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}]});
                    let signing_input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
                    let mut child = Command::new("openssl").args(["dgst", "-sha256", "-sign"]).arg(&key2)
                        .stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
                    child.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
                    let sig = child.wait_with_output().unwrap().stdout;
                    let token = format!("{signing_input}.{}", b64url(&sig));
                    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                };
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        TokenServer { addr, cert, stop, thread: Some(thread) }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub struct TestLayer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
    pub media_type: &'static str,
}

/// An entry of a test layer: (path, content) for files, trailing '/' for directories,
/// ("path", "->target") for symlinks.
pub fn layer(entries: &[(&str, &[u8])], compression: Compression) -> TestLayer {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, path, &[][..]).unwrap();
        } else if let Some(target) = data.strip_prefix(b"->") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, path, std::str::from_utf8(target).unwrap()).unwrap();
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o755);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, *data).unwrap();
        }
    }
    let tar = b.into_inner().unwrap();
    let (blob, media_type) = match compression {
        Compression::None => (tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).unwrap();
            (e.finish().unwrap(), "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        Compression::Zstd => (zstd::encode_all(&tar[..], 1).unwrap(), "application/vnd.oci.image.layer.v1.tar+zstd"),
    };
    TestLayer { tar, blob, media_type }
}

pub struct TestImage {
    pub layers: Vec<TestLayer>,
    pub config: Vec<u8>,
}

impl TestImage {
    pub fn new(layers: Vec<TestLayer>, arch: &str, cmd: &str) -> TestImage {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.tar)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": [cmd], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        }))
        .unwrap();
        TestImage { layers, config }
    }

    /// A three-layer busybox image: gzip base, a zstd layer with a whiteout and an opaque
    /// directory, an uncompressed top layer.
    pub fn busybox(marker: &str) -> TestImage {
        let busybox = std::fs::read("/bin/busybox").expect("busybox-static");
        TestImage::new(
            vec![
                layer(&[("bin/", b""), ("bin/busybox", &busybox), ("bin/sh", b"->busybox"), ("etc/", b""), ("etc/removed", b"x"), ("opt/", b""), ("opt/old", b"o"), ("var/", b""), ("var/run", b"->/run")], Compression::Gzip),
                layer(&[("etc/.wh.removed", b""), ("opt/.wh..wh..opq", b""), ("opt/new", b"n")], Compression::Zstd),
                layer(&[("marker", marker.as_bytes())], Compression::None),
            ],
            "amd64",
            "/bin/sh",
        )
    }

    /// Writes this image as `docker save` would, with `tags`, into `dir` (no tar yet).
    pub fn write_docker_save(&self, dir: &Path, tags: &[&str]) -> serde_json::Value {
        let config_name = format!("{}.json", &sha256(&self.config)[7..]);
        std::fs::write(dir.join(&config_name), &self.config).unwrap();
        let mut layer_names = Vec::new();
        for l in &self.layers {
            let id = &sha256(&l.tar)[7..];
            std::fs::create_dir_all(dir.join(id)).unwrap();
            std::fs::write(dir.join(id).join("layer.tar"), &l.tar).unwrap();
            layer_names.push(format!("{id}/layer.tar"));
        }
        serde_json::json!({"Config": config_name, "RepoTags": tags, "Layers": layer_names})
    }
}

impl TestImage {
    /// Writes this image as an OCI image layout at `dir`, tagged `tag`.
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) -> String {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |b: &[u8]| {
            let d = sha256(b);
            std::fs::write(blobs.join(&d[7..]), b).unwrap();
            d
        };
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": l.media_type, "digest": put(&l.blob), "size": l.blob.len()}))
            .collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(&self.config), "size": self.config.len()},
            "layers": layers
        }))
        .unwrap();
        let md = put(&manifest);
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
            .unwrap(),
        )
        .unwrap();
        md
    }
}

/// A loopback TCP proxy in front of a registry that slows responses to `bytes_per_sec`, so a
/// test can kill a pull in the middle of a layer. Stops accepting on Drop.
pub struct ThrottleProxy {
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ThrottleProxy {
    pub fn start(upstream: &str, bytes_per_sec: usize) -> ThrottleProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop2, upstream) = (stop.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let chunk = (bytes_per_sec / 20).max(1);
                    let mut buf = vec![0u8; chunk];
                    loop {
                        let n = match std::io::Read::read(&mut s_read, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                });
            }
        });
        ThrottleProxy { addr, stop }
    }
}

impl Drop for ThrottleProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// An image for kill-mid-pull tests: small gzip and zstd layers around a 4 MB incompressible
/// one, so a throttled pull finishes the small ones and is still streaming the big one when
/// killed.
pub fn image_with_a_big_middle_layer() -> TestImage {
    let big = big_layer_file();
    TestImage::new(
        vec![
            layer(&[("small1", b"one")], Compression::Gzip),
            layer(&[("big", &big)], Compression::None),
            layer(&[("small2", b"two")], Compression::Zstd),
        ],
        "amd64",
        "/bin/true",
    )
}

/// The content of `big` in [`image_with_a_big_middle_layer`]: 4 MB that do not compress.
pub fn big_layer_file() -> Vec<u8> {
    (0..4_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect()
}
