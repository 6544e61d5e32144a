//! Resolution against local files, a fake bundle (kiln-bundled is wired by
//! the CLI; here a closure stands in for it) and a loopback HTTP server.
//! OCI resolution is tested end to end against a real registry in
//! `tests/all/plugins.rs`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use super::*;

const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
const COMPONENT_2: &[u8] = b"\0asm\x0d\0\x01\0\0";

struct Fixture {
    dir: tempfile::TempDir,
    store: PluginStore,
    client: Client,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = PluginStore::open(&dir.path().join("store")).unwrap();
    Fixture {
        dir,
        store,
        client: Client::new(),
    }
}

fn fake_bundle(name: &str, major: u32) -> Option<BundledPlugin> {
    (name == "render" && major == 1).then(|| BundledPlugin {
        name: "render".into(),
        version: "1.2.0".into(),
        bytes: Cow::Borrowed(COMPONENT),
    })
}

impl Fixture {
    fn resolver(&self) -> Resolver<'_> {
        Resolver::new(&self.store, &self.client, &fake_bundle, self.dir.path())
    }

    fn lock(&self) -> Lockfile {
        Lockfile::empty(self.dir.path().join("kiln.lock"))
    }
}

/// Serves `body` to every request (at most `requests`), `Connection: close`.
fn serve(body: &'static [u8], requests: usize) -> (String, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut served = 0;
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(body).unwrap();
            served += 1;
        }
        served
    });
    (format!("http://{addr}"), handle)
}

fn sha(bytes: &[u8]) -> Digest {
    sha256(bytes)
}

#[test]
fn a_local_file_is_pinned_then_followed_and_refused_under_locked() {
    let f = fixture();
    std::fs::write(f.dir.path().join("a.wasm"), COMPONENT).unwrap();
    let reference = Reference::parse("./a.wasm").unwrap();
    let mut lock = f.lock();
    let (component, change) = f
        .resolver()
        .resolve(&reference, &mut lock, Mode::Update)
        .unwrap();
    assert_eq!(change, LockChange::Pinned);
    assert_eq!(component.digest, sha(COMPONENT));
    assert_eq!(&*component.bytes, COMPONENT);
    assert_eq!(lock.get("./a.wasm"), Some(&Pin::new(sha(COMPONENT))));

    std::fs::write(f.dir.path().join("a.wasm"), COMPONENT_2).unwrap();
    let err = f
        .resolver()
        .resolve(&reference, &mut lock, Mode::Locked)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`./a.wasm` resolves to `sha256:{}`, but `{}` pins `sha256:{}`; if the change is intended, \
             re-pin it with `kiln plugin install ./a.wasm` (or run once without `--locked`) and commit `kiln.lock`",
            sha(COMPONENT_2),
            f.dir.path().join("kiln.lock").display(),
            sha(COMPONENT)
        )
    );
    let (_, change) = f
        .resolver()
        .resolve(&reference, &mut lock, Mode::Update)
        .unwrap();
    assert_eq!(
        change,
        LockChange::Repinned {
            old: sha(COMPONENT)
        }
    );
    assert_eq!(lock.get("./a.wasm").unwrap().digest, sha(COMPONENT_2));
    assert!(
        f.store.installed().unwrap().is_empty(),
        "local files are not copied into the store by a run"
    );
}

#[test]
fn local_errors_name_the_file() {
    let f = fixture();
    let mut lock = f.lock();
    let err = f
        .resolver()
        .resolve(
            &Reference::parse("./missing.wasm").unwrap(),
            &mut lock,
            Mode::Update,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read plugin `./missing.wasm` at `{}`",
            f.dir.path().join("./missing.wasm").display()
        )
    );
    std::fs::write(f.dir.path().join("page.wasm"), "<html><body>404").unwrap();
    let err = f
        .resolver()
        .resolve(
            &Reference::parse("page.wasm").unwrap(),
            &mut lock,
            Mode::Update,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`page.wasm` is not a WebAssembly file: it starts with `<html><b`; point the reference at a `.wasm` component"
    );
    assert_eq!(lock.pins().count(), 0, "nothing pinned for failures");
}

#[test]
fn a_bundled_plugin_is_pinned_with_its_version() {
    let f = fixture();
    let mut lock = f.lock();
    let (component, change) = f
        .resolver()
        .resolve(
            &Reference::parse("kiln/render@1").unwrap(),
            &mut lock,
            Mode::Update,
        )
        .unwrap();
    assert_eq!(change, LockChange::Pinned);
    assert_eq!(component.origin.version.as_deref(), Some("1.2.0"));
    assert_eq!(
        lock.get("kiln/render@1").unwrap().version.as_deref(),
        Some("1.2.0")
    );
    let err = f
        .resolver()
        .resolve(
            &Reference::parse("kiln/render@2").unwrap(),
            &mut lock,
            Mode::Update,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`kiln/render@2` is not bundled with this kiln; check the name and major version (docs/plugins.md lists the bundled plugins)"
    );
}

#[test]
fn locked_refuses_an_unpinned_reference() {
    let f = fixture();
    let mut lock = f.lock();
    let err = f
        .resolver()
        .resolve(
            &Reference::parse("kiln/render@1").unwrap(),
            &mut lock,
            Mode::Locked,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`kiln/render@1` is not pinned in `{}`; pin it with `kiln plugin install kiln/render@1` (or run once without `--locked`)",
            f.dir.path().join("kiln.lock").display()
        )
    );
}

#[test]
fn https_is_verified_stored_and_then_served_from_the_store() {
    let f = fixture();
    let (base, server) = serve(COMPONENT, 1);
    let reference = Reference::parse(&format!("{base}/a.wasm#sha256={}", sha(COMPONENT))).unwrap();
    let mut lock = f.lock();
    let (component, change) = f
        .resolver()
        .resolve(&reference, &mut lock, Mode::Update)
        .unwrap();
    assert_eq!(
        (component.digest, change),
        (sha(COMPONENT), LockChange::Pinned)
    );
    assert_eq!(server.join().unwrap(), 1);
    // The server is gone: the second resolution, even `--locked`, reads the store.
    let (again, change) = f
        .resolver()
        .resolve(&reference, &mut lock, Mode::Locked)
        .unwrap();
    assert_eq!((again.digest, change), (sha(COMPONENT), LockChange::None));
    let installed = f.store.installed().unwrap();
    assert_eq!(installed[&reference.to_string()].source, "https");
}

#[test]
fn an_https_digest_mismatch_is_never_stored() {
    let f = fixture();
    let (base, server) = serve(COMPONENT_2, 1);
    let reference = Reference::parse(&format!("{base}/a.wasm#sha256={}", sha(COMPONENT))).unwrap();
    let mut lock = f.lock();
    let err = f
        .resolver()
        .resolve(&reference, &mut lock, Mode::Update)
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "`{reference}`: the downloaded component hashes to `sha256:{}`, but `sha256:{}` was required; \
             it was not stored and will not run",
            sha(COMPONENT_2),
            sha(COMPONENT)
        )
    );
    assert!(!f.store.contains(&sha(COMPONENT_2)));
    assert_eq!(lock.pins().count(), 0);
}

#[test]
fn an_http_error_status_is_reported() {
    let f = fixture();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno such\r\n")
            .unwrap();
    });
    let reference =
        Reference::parse(&format!("http://{addr}/a.wasm#sha256={}", sha(COMPONENT))).unwrap();
    let err = f
        .resolver()
        .resolve(&reference, &mut f.lock(), Mode::Update)
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(
        err.to_string(),
        format!("`http://{addr}/a.wasm` answered HTTP 404: no such")
    );
}

#[test]
fn a_wrong_pin_of_a_digest_reference_is_refused() {
    let f = fixture();
    let (base, server) = serve(COMPONENT, 1);
    let reference = Reference::parse(&format!("{base}/a.wasm#sha256={}", sha(COMPONENT))).unwrap();
    let mut lock = f.lock();
    lock.set(&reference.to_string(), Pin::new(sha(COMPONENT_2)));
    let err = f
        .resolver()
        .resolve(&reference, &mut lock, Mode::Update)
        .unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(
            &err,
            Error::PinMismatch(m) if m.pinned == sha(COMPONENT_2) && m.resolved == sha(COMPONENT)
        ),
        "{err}"
    );
}

#[test]
fn wasm_kinds() {
    assert_eq!(WasmKind::of(COMPONENT), Some(WasmKind::Component));
    assert_eq!(WasmKind::of(b"\0asm\x01\0\0\0"), Some(WasmKind::Module));
    assert_eq!(WasmKind::of(b"\0asm"), Some(WasmKind::Unknown));
    assert_eq!(WasmKind::of(b"PK\x03\x04"), None);
    assert_eq!(describe_start(b""), "nothing (the file is empty)");
    assert_eq!(
        describe_start(b"\x1f\x8b\x08\0\0\0\0\0\0"),
        "`\\x1f\\x8b\\x08\\x00\\x00\\x00\\x00\\x00`"
    );
}

#[test]
fn without_a_store_local_and_bundled_plugins_still_resolve() {
    let f = fixture();
    std::fs::write(f.dir.path().join("a.wasm"), COMPONENT).unwrap();
    let resolver = Resolver::without_store(&f.client, &fake_bundle, f.dir.path());
    let mut lock = f.lock();
    for text in ["./a.wasm", "kiln/render@1"] {
        let reference = Reference::parse(text).unwrap();
        let (component, change) = resolver
            .resolve(&reference, &mut lock, Mode::Update)
            .unwrap();
        assert_eq!(
            (component.digest, change),
            (sha(COMPONENT), LockChange::Pinned)
        );
    }
    let remote = Reference::parse(&format!(
        "https://h.example/a.wasm#sha256={}",
        sha(COMPONENT)
    ))
    .unwrap();
    assert_eq!(
        resolver
            .resolve(&remote, &mut lock, Mode::Update)
            .unwrap_err()
            .to_string(),
        "cannot place the plugin store: set `KILN_HOME` (or `XDG_DATA_HOME`, or `HOME`)"
    );
}

#[test]
fn a_download_announced_too_large_is_refused_before_reading() {
    let f = fixture();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            crate::MAX_COMPONENT + 1
        );
    });
    let reference =
        Reference::parse(&format!("http://{addr}/big.wasm#sha256={}", sha(COMPONENT))).unwrap();
    let err = f
        .resolver()
        .resolve(&reference, &mut f.lock(), Mode::Update)
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "`http://{addr}/big.wasm` is larger than 268435456 bytes, the most kiln downloads for one component"
        )
    );
}
