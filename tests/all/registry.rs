//! A real OCI registry on loopback for the plugin tests: Debian's
//! `docker-registry` (distribution 2.x, installed by `.ci/run`), started
//! with its own config on a free port with storage in a temp dir, and
//! killed when the handle drops.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: tempfile::TempDir,
}

const BINARY: &str = "/usr/bin/docker-registry";

impl Registry {
    /// Starts an anonymous registry and waits until it answers `GET /v2/`.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a registry that requires `Basic` auth for the users of the
    /// `htpasswd` file content given (bcrypt hashes).
    pub fn start_with_users(htpasswd: &str) -> Self {
        Self::start_with(Some(htpasswd))
    }

    fn start_with(htpasswd: Option<&str>) -> Self {
        assert!(
            Path::new(BINARY).is_file(),
            "{BINARY} is missing: install Debian's `docker-registry` package (`.ci/run` does)"
        );
        let dir = tempfile::tempdir().expect("registry temp dir");
        // Bind-and-release picks a free port; the registry takes it right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some(users) = htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, users).expect("write htpasswd");
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(&config, text).expect("write registry config");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let mut registry = Self { child, addr, dir };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("registry status") {
                panic!("docker-registry exited before it was ready: {status}");
            }
            let answer = self.get("/v2/");
            // 401: up, and asking for the credentials it was configured with.
            if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 401") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer on {} within 20 s",
            self.addr
        );
    }

    /// A raw `GET`, returning the whole response (or "" on a connection error).
    pub fn get(&self, path: &str) -> String {
        let Ok(mut stream) = TcpStream::connect(&self.addr) else {
            return String::new();
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut response = String::new();
        if stream.write_all(request.as_bytes()).is_err()
            || stream.read_to_string(&mut response).is_err()
        {
            return String::new();
        }
        response
    }

    /// `oci://127.0.0.1:PORT/<path>`.
    pub fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.addr)
    }

    /// The file holding blob `sha256:<hex>` in the registry's storage, so a
    /// test can tamper with what the registry serves.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
