use super::*;

const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn err(text: &str) -> String {
    Reference::parse(text).unwrap_err().to_string()
}

#[test]
fn local_paths() {
    for text in [
        "./plugins/notify.wasm",
        "../x.wasm",
        "/abs/x.wasm",
        "x.wasm",
    ] {
        assert_eq!(
            Reference::parse(text).unwrap(),
            Reference::Local { path: text.into() }
        );
    }
    assert_eq!(
        err("./plugins/notify"),
        "plugin reference `./plugins/notify`: a local plugin must be a `.wasm` file; \
         build the component (`cargo build --target wasm32-wasip2`) and point at the `.wasm` it produces"
    );
}

#[test]
fn bundled_names() {
    assert_eq!(
        Reference::parse("kiln/http-health@1").unwrap(),
        Reference::Bundled {
            name: "http-health".into(),
            major: 1
        }
    );
    assert_eq!(
        err("kiln/render"),
        "plugin reference `kiln/render`: a bundled plugin needs its major version; write `kiln/render@1`"
    );
    assert_eq!(
        err("kiln/render@1.2.0"),
        "plugin reference `kiln/render@1.2.0`: the version after `@` is not a major version number; \
         bundled plugins are chosen by major version only: `kiln/render@1`"
    );
    assert_eq!(
        err("kiln/render@latest"),
        "plugin reference `kiln/render@latest`: the version after `@` is not a major version number; \
         write the major version as a number: `kiln/render@1`"
    );
    assert_eq!(
        err("kiln/Render@1"),
        "plugin reference `kiln/Render@1`: a bundled plugin name is lowercase letters, digits and `-`; \
         for example `kiln/http-health@1`"
    );
}

#[test]
fn https_needs_a_digest() {
    let text = format!("https://plugins.example/notify.wasm#sha256={HEX}");
    assert_eq!(
        Reference::parse(&text).unwrap(),
        Reference::Https {
            url: "https://plugins.example/notify.wasm".into(),
            digest: HEX.parse().unwrap()
        }
    );
    assert_eq!(
        err("https://plugins.example/notify.wasm"),
        "plugin reference `https://plugins.example/notify.wasm`: a downloaded plugin must carry its digest; \
         append `#sha256=<64 hex characters>` (`sha256sum plugin.wasm` prints it): \
         `https://plugins.example/notify.wasm#sha256=…`"
    );
    assert_eq!(
        err("https://plugins.example/notify.wasm#md5=abc"),
        "plugin reference `https://plugins.example/notify.wasm#md5=abc`: the URL fragment must be `#sha256=<hex>`; \
         write `https://plugins.example/notify.wasm#sha256=<64 hex characters>`"
    );
    assert_eq!(
        err(&format!("https://h/x.wasm#sha256={}", &HEX[..10])),
        format!(
            "plugin reference `https://h/x.wasm#sha256={}`: the digest after `#sha256=` is not 64 lowercase hex characters; \
             copy it from `sha256sum plugin.wasm`",
            &HEX[..10]
        )
    );
    assert_eq!(
        err("https:///x.wasm"),
        "plugin reference `https:///x.wasm`: the URL has no host (or carries credentials); \
         write `https://host/path/plugin.wasm#sha256=<hex>`"
    );
}

#[test]
fn plain_http_only_on_loopback() {
    for host in ["127.0.0.1:8080", "127.9.9.9", "localhost:1", "[::1]:80"] {
        let text = format!("http://{host}/x.wasm#sha256={HEX}");
        assert!(
            matches!(Reference::parse(&text), Ok(Reference::Https { .. })),
            "{text}"
        );
    }
    assert_eq!(
        err(&format!("http://plugins.example/x.wasm#sha256={HEX}")),
        format!(
            "plugin reference `http://plugins.example/x.wasm#sha256={HEX}`: plain `http://` is only allowed for loopback hosts; \
             use `https://plugins.example/x.wasm#sha256={HEX}`"
        )
    );
    assert!(err(&format!("http://10.0.0.1/x.wasm#sha256={HEX}")).contains("loopback"));
}

#[test]
fn oci_tags_and_digests() {
    let tagged = Reference::parse("oci://127.0.0.1:5000/acme/notify:1.0").unwrap();
    let Reference::Oci(oci) = &tagged else {
        panic!("{tagged:?}")
    };
    assert_eq!(oci.registry, "127.0.0.1:5000");
    assert_eq!(oci.repository, "acme/notify");
    assert_eq!(oci.selector, OciSelector::Tag("1.0".into()));
    assert!(oci.plain_http());
    assert_eq!(oci.base_url(), "http://127.0.0.1:5000");
    assert_eq!(tagged.to_string(), "oci://127.0.0.1:5000/acme/notify:1.0");

    let pinned = Reference::parse(&format!("oci://ghcr.io/acme/notify@sha256:{HEX}")).unwrap();
    let Reference::Oci(oci) = &pinned else {
        panic!("{pinned:?}")
    };
    assert_eq!(oci.selector, OciSelector::Digest(HEX.parse().unwrap()));
    assert!(!oci.plain_http());
    assert_eq!(oci.base_url(), "https://ghcr.io");
    assert!(pinned.is_digest_addressed() && !tagged.is_digest_addressed());
}

#[test]
fn oci_errors() {
    assert_eq!(
        err("oci://ghcr.io/acme/notify"),
        "plugin reference `oci://ghcr.io/acme/notify`: an OCI reference needs a tag or a digest; \
         write `oci://ghcr.io/acme/notify:<tag>` or `oci://ghcr.io/acme/notify@sha256:<hex>`"
    );
    assert_eq!(
        err("oci://ghcr.io"),
        "plugin reference `oci://ghcr.io`: an OCI reference needs a registry and a repository; \
         write `oci://registry.example/acme/notify:1.0`"
    );
    assert_eq!(
        err("oci://ghcr.io/Acme/notify:1"),
        "plugin reference `oci://ghcr.io/Acme/notify:1`: the OCI repository name is not valid; \
         a repository is lowercase path components of letters, digits and `._-` separated by `/` (`acme/notify`)"
    );
    assert_eq!(
        err("oci://ghcr.io/acme/notify:-x"),
        "plugin reference `oci://ghcr.io/acme/notify:-x`: the OCI tag is not valid; \
         a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
    );
    assert_eq!(
        err("oci://ghcr.io/acme/notify@md5:00"),
        "plugin reference `oci://ghcr.io/acme/notify@md5:00`: an OCI digest must be `@sha256:<hex>`; \
         write `oci://ghcr.io/acme/notify@sha256:<64 hex characters>`"
    );
}

#[test]
fn anything_else_lists_the_forms() {
    assert_eq!(
        err("notify"),
        format!("plugin reference `notify`: it is not a plugin reference; {FORMS}")
    );
    assert_eq!(
        err("ftp://x/y.wasm"),
        format!("plugin reference `ftp://x/y.wasm`: `ftp://` is not a plugin source; {FORMS}")
    );
    assert_eq!(
        err("  "),
        format!("plugin reference ``: it is empty; {FORMS}")
    );
}

#[test]
fn display_round_trips() {
    for text in [
        "./a.wasm".to_owned(),
        "kiln/canary@2".to_owned(),
        format!("https://h.example/x.wasm#sha256={HEX}"),
        format!("http://127.0.0.1:9/x.wasm#sha256={HEX}"),
        "oci://localhost:5000/a/b/c:v1".to_owned(),
        format!("oci://r.example/a@sha256:{HEX}"),
    ] {
        let parsed = Reference::parse(&text).unwrap();
        assert_eq!(parsed.to_string(), text);
        assert_eq!(Reference::parse(&parsed.to_string()).unwrap(), parsed);
    }
}
