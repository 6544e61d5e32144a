//! Plugin references, the user plugin store and `kiln.lock`, end to end:
//! a real OCI registry on loopback (`docker-registry`), a loopback HTTP
//! server for `http://…#sha256=` references, and local files.
//!
//! The components are the test suite's no-op action (and a copy with a
//! custom section appended, for a second digest): real components, so
//! every reference pulled or pinned here is also loaded and checked
//! before a run, and runs. The `uses:` steps carry `continue-on-error:
//! true` so a case asserts what happened to the lockfile and the store.
//! The bundled `kiln/render` runs here end to end too.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use sha2::{Digest as _, Sha256};

use crate::registry::Registry;
use crate::support::Kiln;

/// A real action component (the test suite's no-op plugin): installed,
/// pinned, and loaded and checked before a run like any other.
fn a() -> &'static [u8] {
    static A: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    A.get_or_init(|| std::fs::read(kiln_test_plugins::NOOP).expect("read the no-op plugin"))
}

/// The same action with a custom section appended: a valid component
/// with other content (what a rebuilt or re-tagged plugin looks like).
fn b() -> &'static [u8] {
    static B: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    B.get_or_init(|| [a(), b"\x00\x03\x01xB"].concat())
}

/// `kiln plugin`'s size column for `bytes`.
fn size(bytes: &[u8]) -> String {
    format!("{:.1} KiB", bytes.len() as f64 / 1024.0)
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A case with its own plugin store (`KILN_HOME`) and a pipeline whose one
/// step uses `reference` (at line 4, column 15).
fn case(reference: &str) -> Kiln {
    let kiln = Kiln::new();
    let home = kiln.path("home");
    kiln.env("KILN_HOME", home.to_str().expect("utf-8 temp path"))
        .pipeline(&format!(
            "jobs:\n  notify:\n    steps:\n      - uses: {reference}\n        continue-on-error: true\n"
        ))
        .bytes("a.wasm", a())
        .bytes("b.wasm", b())
}

/// `kiln plugin push FILE REF`; returns the manifest digest.
fn push(kiln: &Kiln, file: &str, reference: &str) -> String {
    let out = kiln.run_with(["plugin", "push", file, reference]);
    out.code(0)
        .stdout_has(&format!("pushed {file} to {reference}\n"));
    let manifest = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("  manifest  sha256:"))
        .expect("push prints the manifest digest");
    manifest.to_owned()
}

fn lock_json(kiln: &Kiln) -> serde_json::Value {
    serde_json::from_str(&kiln.read("kiln.lock")).expect("kiln.lock is JSON")
}

/// `kiln validate --locked --json`'s one diagnostic.
fn locked_diagnostic(kiln: &Kiln) -> serde_json::Value {
    let out = kiln.run_with(["validate", "--locked", "--json"]);
    out.code(2);
    let diagnostics: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(diagnostics.as_array().map(Vec::len), Some(1), "{out}");
    diagnostics[0].clone()
}

#[test]
fn oci_install_pins_the_tag_and_a_retag_fails_locked_with_both_digests() {
    let registry = Registry::start();
    let reference = registry.reference("acme/notify:1");
    let kiln = case(&reference);
    let manifest_a = push(&kiln, "a.wasm", &reference);

    let out = kiln.run_with(["plugin", "install", &reference]);
    out.code(0).stdout_is(&format!(
        "installed {reference}\n  digest  sha256:{a}\n  size    {size}\n  source  {by_digest}\npinned in kiln.lock\n",
        a = sha(a()),
        size = size(a()),
        by_digest = registry.reference(&format!("acme/notify@sha256:{manifest_a}")),
    ));
    let lock = kiln.read("kiln.lock");
    assert_eq!(
        lock_json(&kiln),
        serde_json::json!({"version": 1, "plugins": {&reference: {
            "digest": format!("sha256:{}", sha(a())),
            "manifest": format!("sha256:{manifest_a}"),
        }}})
    );
    kiln.run_with(["validate", "--locked"]).code(0);

    // The registry's tag now names other content.
    push(&kiln, "b.wasm", &reference);
    let diagnostic = locked_diagnostic(&kiln);
    assert_eq!(diagnostic["code"], "plugin-lock");
    assert_eq!(
        (diagnostic["line"].as_u64(), diagnostic["col"].as_u64()),
        (Some(4), Some(15))
    );
    assert_eq!(
        diagnostic["message"],
        format!(
            "`{reference}` resolves to `sha256:{}`, but `kiln.lock` pins `sha256:{}`",
            sha(b()),
            sha(a())
        )
    );
    assert_eq!(
        diagnostic["help"],
        format!(
            "the tag now names other content; if that is intended, pin it with \
             `kiln plugin install {reference}` (or delete its entry from `kiln.lock`)"
        )
    );
    let out = kiln.run_with(["run", "--locked"]);
    out.code(2)
        .stderr_has("plugin-lock")
        .stderr_has("kiln.yml:4:15")
        .stderr_has(&format!("sha256:{}", sha(a())))
        .stderr_has(&format!("sha256:{}", sha(b())))
        .stderr_has("error: `kiln.yml` has 1 error");
    assert!(!out.stdout.contains("run 1"), "nothing ran\n{out}");
    assert_eq!(
        kiln.read("kiln.lock"),
        lock,
        "a refusal never rewrites the lock"
    );

    // Without --locked the lock wins: the pinned content runs, nothing is re-pinned.
    let out = kiln.run_with(["run"]);
    out.code(0);
    assert!(!out.stderr.contains("pinned"), "{out}");
    assert_eq!(kiln.read("kiln.lock"), lock);

    // Installing accepts the new content.
    kiln.run_with(["plugin", "install", &reference])
        .code(0)
        .stdout_has(&format!(
            "re-pinned in kiln.lock (was sha256:{})\n",
            sha(a())
        ));
    assert_eq!(
        lock_json(&kiln)["plugins"][&reference]["digest"],
        format!("sha256:{}", sha(b()))
    );
    kiln.run_with(["validate", "--locked"]).code(0);
}

#[test]
fn run_pins_a_new_reference_and_locked_refuses_an_unpinned_one() {
    let registry = Registry::start();
    let tagged = registry.reference("acme/render:2");
    let setup = case(&tagged);
    let manifest = push(&setup, "a.wasm", &tagged);
    let reference = registry.reference(&format!("acme/render@sha256:{manifest}"));
    let kiln = case(&reference);

    let diagnostic = locked_diagnostic(&kiln);
    assert_eq!(diagnostic["code"], "plugin-lock");
    assert_eq!(
        diagnostic["message"],
        format!("`{reference}` is not pinned in `kiln.lock`")
    );
    assert_eq!(
        diagnostic["help"],
        format!("pin it with `kiln plugin install {reference}` (or run once without `--locked`)")
    );
    assert!(!kiln.path("kiln.lock").exists());

    kiln.run_with(["run"]).code(0).stderr_has(&format!(
        "pinned `{reference}` to sha256:{} in kiln.lock\n",
        sha(a())
    ));
    assert_eq!(
        lock_json(&kiln)["plugins"][&reference]["digest"],
        format!("sha256:{}", sha(a()))
    );

    // A digest reference that is stored needs no registry at all.
    drop(registry);
    kiln.run_with(["run", "--locked"]).code(0);
    kiln.run_with(["plugin", "list"])
        .code(0)
        .stdout_has(&format!(
            "{reference}  sha256:{}  {:>9}  oci\n",
            &sha(a())[..12],
            size(a())
        ));
}

#[test]
fn a_tampered_registry_blob_is_refused_and_never_stored() {
    let registry = Registry::start();
    let reference = registry.reference("acme/notify:1");
    let kiln = case(&reference);
    push(&kiln, "a.wasm", &reference);
    let tampered = "\0asm\x0d\0\x01X";
    std::fs::write(registry.blob_file(&sha(a())), tampered).expect("tamper");

    kiln.run_with(["plugin", "install", &reference])
        .code(2)
        .stderr_is(&format!(
            "error: `{reference}`: the downloaded layer hashes to `sha256:{}`, but `sha256:{}` was required; \
             it was not stored and will not run\n",
            sha(tampered.as_bytes()),
            sha(a())
        ));
    kiln.run_with(["run"])
        .code(2)
        .stderr_has("plugin-unresolved");
    kiln.run_with(["plugin", "list"])
        .code(0)
        .stdout_has("no plugins installed in");
    assert!(!kiln.path("kiln.lock").exists(), "nothing pinned");
    kiln.run_with(["plugin", "verify"]).code(0);
}

#[test]
fn a_corrupt_store_blob_is_never_served_and_verify_names_it() {
    let registry = Registry::start();
    let reference = registry.reference("acme/notify:1");
    let kiln = case(&reference);
    push(&kiln, "a.wasm", &reference);
    kiln.run_with(["plugin", "install", &reference]).code(0);
    let hex = sha(a());
    let blob = kiln.path(&format!("home/plugins/objects/{}/{}", &hex[..2], &hex[2..]));
    let mut perms = std::fs::metadata(&blob).expect("stored blob").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&blob, perms).expect("chmod");
    let damaged = "\0asm\x0d\0\x01Z";
    std::fs::write(&blob, damaged).expect("damage the store");

    kiln.run_with(["plugin", "verify"])
        .code(1)
        .stdout_has(&format!(
            "corrupt  sha256:{hex}: content hashes to sha256:{} (used by {reference})\n",
            sha(damaged.as_bytes())
        ))
        .stdout_has("reinstall the damaged plugins with `kiln plugin install REF`\n");
    let out = kiln.run_with(["run"]);
    out.code(2)
        .stderr_has("plugin-unresolved")
        .stderr_has(&format!(
            "plugin blob `sha256:{hex}` in the store is corrupt"
        ));

    kiln.run_with(["plugin", "install", &reference]).code(0);
    kiln.run_with(["plugin", "verify"])
        .code(0)
        .stdout_has("all installed plugins are intact\n");
    kiln.run_with(["run", "--locked"]).code(0);
}

#[test]
fn a_missing_repository_or_tag_is_explained() {
    let registry = Registry::start();
    let reference = registry.reference("acme/none:1");
    let kiln = case(&reference);
    kiln.run_with(["plugin", "install", &reference])
        .code(2)
        .stderr_is(&format!(
            "error: `http://{addr}/v2/acme/none/manifests/1` answered HTTP 404: \
             `acme/none` has no `1` in registry `{addr}`\n",
            addr = registry.addr
        ));
}

/// `kiln:hunter2`, bcrypt (cost 4, so the registry checks it quickly).
const HTPASSWD: &str = "kiln:$2b$04$0vdioZdNt0Y5A0Y/RvKoCebL/0uMnPwpi6IEv4HAeaEziChyFOU.S\n";

#[test]
fn a_private_registry_uses_docker_login_credentials() {
    let registry = Registry::start_with_users(HTPASSWD);
    let reference = registry.reference("acme/private:1");
    let kiln = case(&reference);
    kiln.run_with(["plugin", "push", "a.wasm", &reference])
        .code(2)
        .stderr_is(&format!(
            "error: registry `{addr}` refused access to `acme/private` (HTTP 401); \
             log in with `docker login {addr}` (kiln reads `~/.docker/config.json`)\n",
            addr = registry.addr
        ));
    // What `docker login` writes: base64 of `kiln:hunter2`.
    let kiln = kiln.file(
        "docker/config.json",
        &format!(
            r#"{{"auths": {{"{}": {{"auth": "a2lsbjpodW50ZXIy"}}}}}}"#,
            registry.addr
        ),
    );
    let docker = kiln.path("docker");
    let kiln = kiln.env("DOCKER_CONFIG", docker.to_str().expect("utf-8"));
    push(&kiln, "a.wasm", &reference);
    kiln.run_with(["plugin", "install", &reference])
        .code(0)
        .stdout_has("pinned in kiln.lock\n");
    kiln.run_with(["validate", "--locked"]).code(0);
}

/// Serves `body` once over plain HTTP on loopback.
fn serve_once(body: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
            line.clear();
        }
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(body);
    });
    (format!("http://{addr}"), handle)
}

#[test]
fn an_https_digest_mismatch_is_refused_and_a_match_installs() {
    let (base, server) = serve_once(b());
    let wrong = format!("{base}/notify.wasm#sha256={}", sha(a()));
    let kiln = case(&wrong);
    kiln.run_with(["plugin", "install", &wrong])
        .code(2)
        .stderr_is(&format!(
            "error: `{wrong}`: the downloaded component hashes to `sha256:{}`, but `sha256:{}` was required; \
             it was not stored and will not run\n",
            sha(b()),
            sha(a())
        ));
    server.join().expect("server");

    let (base, server) = serve_once(a());
    let right = format!("{base}/notify.wasm#sha256={}", sha(a()));
    kiln.run_with(["plugin", "install", &right])
        .code(0)
        .stdout_has(&format!("installed {right}\n"));
    server.join().expect("server");
    kiln.run_with(["plugin", "remove", &right])
        .code(0)
        .stdout_is(&format!(
            "removed {right} (sha256:{}) from the plugin store\nunpinned {right} in kiln.lock\n",
            sha(a())
        ));
    kiln.run_with(["plugin", "remove", &right])
        .code(2)
        .stderr_is(&format!(
            "error: `{right}` is not installed (`kiln plugin list` shows what is) and not pinned here\n"
        ));
}

#[test]
fn a_changed_local_plugin_is_visible_in_the_lock() {
    let kiln = case("./a.wasm");
    kiln.run_with(["run"]).code(0).stderr_has(&format!(
        "pinned `./a.wasm` to sha256:{} in kiln.lock\n",
        sha(a())
    ));
    kiln.run_with(["run", "--locked"]).code(0);
    // KILN_HOME holds the compile cache, but not a plugin store.
    assert!(
        !kiln.path("home/plugins").exists(),
        "a pipeline of local plugins does not touch the plugin store"
    );
    std::fs::write(kiln.path("a.wasm"), b()).expect("rebuild the plugin");
    let diagnostic = locked_diagnostic(&kiln);
    assert_eq!(
        diagnostic["message"],
        format!(
            "`./a.wasm` resolves to `sha256:{}`, but `kiln.lock` pins `sha256:{}`",
            sha(b()),
            sha(a())
        )
    );
    kiln.run_with(["run", "--locked"])
        .code(2)
        .stderr_has("plugin-lock");
    kiln.run_with(["run"]).code(0).stderr_has(&format!(
        "`./a.wasm` changed: re-pinned sha256:{} → sha256:{} in kiln.lock\n",
        sha(a()),
        sha(b())
    ));
}

#[test]
fn bad_references_and_missing_files_are_diagnostics_at_the_reference() {
    let kiln = case("./gone.wasm");
    // `--locked` cannot pin what is not there.
    let out = kiln.run_with(["run", "--locked"]);
    out.code(2)
        .stderr_has("plugin-unresolved")
        .stderr_has("kiln.yml:4:15")
        .stderr_has("cannot read plugin `./gone.wasm` at");
    // Otherwise an earlier job may build it: a warning, and the step fails
    // when it runs and the file is still missing.
    kiln.run_with(["run"])
        .code(0)
        .stderr_has("plugin-not-found")
        .stdout_has("[notify] kiln: cannot read plugin `./gone.wasm`");
    let kiln = case("kiln/render");
    let out = kiln.run_with(["validate", "--json"]);
    out.code(2);
    let diagnostics: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        diagnostics,
        serde_json::json!([{
            "code": "invalid-plugin-reference",
            "severity": "error",
            "message": "`kiln/render` is not a plugin reference: a bundled plugin needs its major version",
            "file": "kiln.yml",
            "line": 4,
            "col": 15,
            "label": "not a plugin reference",
            "help": "write `kiln/render@1`",
        }])
    );
    kiln.run_with(["plugin", "install", "kiln/render"])
        .code(2)
        .stderr_is("error: plugin reference `kiln/render`: a bundled plugin needs its major version; write `kiln/render@1`\n");
}

#[test]
fn a_plugin_pulled_from_the_registry_runs_and_is_pinned() {
    let registry = Registry::start();
    let reference = registry.reference("acme/hello:1");
    let kiln = Kiln::new();
    let home = kiln.path("home");
    let kiln = kiln
        .env("KILN_HOME", home.to_str().expect("utf-8"))
        .pipeline(&format!(
            "jobs:\n  hello:\n    steps:\n      - uses: {reference}\n"
        ));
    std::fs::write(kiln.path("hello.wasm"), a()).expect("write component");
    push(&kiln, "hello.wasm", &reference);
    kiln.run_with(["run"])
        .code(0)
        .stderr_has(&format!("pinned `{reference}` to sha256:"));
    kiln.run_with(["run", "--locked"]).code(0);
}

#[test]
fn inspect_shows_what_kiln_knows_without_running_the_plugin() {
    let kiln = case("./a.wasm");
    kiln.run_with(["plugin", "list"])
        .code(0)
        .stdout_is(&format!(
            "no plugins installed in `{}`\n",
            kiln.path("home/plugins").display()
        ));
    let hex = sha(a());
    let out = kiln.run_with(["plugin", "inspect", "./a.wasm"]);
    out.code(0);
    let facts: Vec<&str> = out.stdout.lines().take(7).collect();
    assert_eq!(
        facts,
        [
            "reference   ./a.wasm".to_owned(),
            format!("digest      sha256:{hex}"),
            format!("size        {}", size(a())),
            "kind        component".to_owned(),
            format!("source      local ({})", kiln.path("./a.wasm").display()),
            "installed   no".to_owned(),
            "pinned      no (kiln.lock)".to_owned(),
        ]
    );
    kiln.run_with(["plugin", "install", "./a.wasm"])
        .code(0)
        .stdout_has("pinned in kiln.lock\n");
    // The host's view: world, metadata, capabilities, imports, exports.
    kiln.run_with(["plugin", "inspect", "./a.wasm"])
        .code(0)
        .stdout_has("installed   yes\npinned      yes, in kiln.lock\n")
        .stdout_has("world       kiln:plugin/action@0.1.0\n")
        .stdout_has("capabilities:\n  (none)\n")
        .stdout_has("imports:\n  kiln:plugin/types@0.1.0\n")
        .stdout_has("exports:\n  metadata\n  run\n");
    // A core module: the facts, then why it cannot be a plugin.
    kiln.file("module.wasm", "\0asm\x01\0\0\0")
        .run_with(["plugin", "inspect", "module.wasm"])
        .code(2)
        .stdout_has("kind        core module (not loadable as a plugin: build a component, e.g. `--target wasm32-wasip2`)\n")
        .stderr_has("`module.wasm` cannot be loaded: ");
}

#[test]
fn push_needs_an_oci_reference_and_a_wasm_file() {
    let kiln = case("./a.wasm").file("notes.txt", "hello");
    kiln.run_with(["plugin", "push", "a.wasm", "./b.wasm"])
        .code(2)
        .stderr_is(
            "error: `./b.wasm` is not an OCI reference: push to `oci://registry/repo:tag`\n",
        );
    kiln.run_with(["plugin", "push", "notes.txt", "oci://127.0.0.1:1/a:1"])
        .code(2)
        .stderr_is("error: `notes.txt` is not a WebAssembly file\n");
}

#[test]
fn an_unreachable_source_names_the_url_and_the_cause() {
    // Port 1 on loopback: nothing listens there.
    let reference = format!("http://127.0.0.1:1/a.wasm#sha256={}", sha(a()));
    let kiln = case(&reference);
    let out = kiln.run_with(["plugin", "install", &reference]);
    out.code(2)
        .stderr_has("error: cannot fetch `http://127.0.0.1:1/a.wasm`\n  caused by: ");
    kiln.run_with(["run"])
        .code(2)
        .stderr_has("plugin-unresolved")
        .stderr_has("cannot fetch `http://127.0.0.1:1/a.wasm`: ");
}

/// `kiln/render@1` through the host, from a pipeline: renders a template
/// from the workspace into a file and returns its path and size.
#[test]
fn bundled_render_writes_a_file_from_a_template_and_returns_its_path() {
    let kiln = Kiln::new();
    let home = kiln.path("home");
    let kiln = kiln
        .env("KILN_HOME", home.to_str().expect("utf-8"))
        .file("greeting.tmpl", "hello, {{ who }} from {{ place }}\n")
        .pipeline(
            "jobs:\n  render:\n    steps:\n      - id: r\n        uses: kiln/render@1\n        with:\n          \
             template: greeting.tmpl\n          output: out/greeting.txt\n          vars: \"who=world\\nplace=kiln\"\n        \
             permissions: { fs: write }\n      - run: echo \"wrote ${{ steps.r.outputs.path }} (${{ steps.r.outputs.bytes }} bytes)\"\n",
        );
    kiln.run_with(["run"])
        .code(0)
        .stdout_has("[render] rendered greeting.tmpl → out/greeting.txt (23 bytes)\n")
        .stdout_has("[render] wrote out/greeting.txt (23 bytes)\n");
    assert_eq!(kiln.read("out/greeting.txt"), "hello, world from kiln\n");
}

/// The echo action: it declares capabilities (workspace writes, a secret,
/// an env variable) for validate to check.
fn echo() -> &'static [u8] {
    static ECHO: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ECHO.get_or_init(|| std::fs::read(kiln_test_plugins::ECHO).expect("read the echo plugin"))
}

/// A remote plugin pinned in kiln.lock and held by the plugin store is
/// checked by `validate` like a local one, without the network (the
/// server is gone by then).
#[test]
fn validate_checks_a_pinned_stored_remote_plugin_offline() {
    let (base, server) = serve_once(echo());
    let url = format!("{base}/echo.wasm#sha256={}", sha(echo()));
    let kiln = Kiln::new();
    let home = kiln.path("home");
    let kiln = kiln
        .env("KILN_HOME", home.to_str().expect("utf-8"))
        .pipeline(&format!(
            "jobs:\n  a:\n    steps:\n      - uses: {url}\n        with: {{ message: hi }}\n"
        ));
    kiln.run_with(["plugin", "install", &url])
        .code(0)
        .stdout_has("pinned in kiln.lock\n");
    server.join().expect("server");
    for args in [&["validate"][..], &["validate", "--locked"][..]] {
        kiln.run_with(args)
            .code(2)
            .stderr_has("ungranted-capability")
            .stderr_has(&format!(
                "plugin `{url}` needs write access to the workspace, which this step does not grant"
            ))
            .stderr_has(&format!(
                "plugin `{url}` needs the secret `TOKEN`, which this step does not grant"
            ));
    }
}
