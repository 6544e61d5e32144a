use super::*;

fn oci() -> OciReference {
    match crate::Reference::parse("oci://r.example/a:1").unwrap() {
        crate::Reference::Oci(oci) => oci,
        _ => unreachable!(),
    }
}

fn manifest(config: &str, layers: &[&str]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|m| serde_json::json!({"mediaType": m, "digest": format!("sha256:{}", "a".repeat(64)), "size": 8}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": config, "digest": format!("sha256:{}", "b".repeat(64)), "size": 2},
        "layers": layers,
    }))
    .unwrap()
}

fn problem(content_type: &str, bytes: &[u8]) -> String {
    wasm_layer(&oci(), content_type, bytes)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_wasm_artifact_has_one_wasm_layer() {
    let layer = wasm_layer(
        &oci(),
        MANIFEST_MEDIA_TYPE,
        &manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE]),
    )
    .unwrap();
    assert_eq!(layer.media_type, WASM_LAYER_MEDIA_TYPE);
    assert_eq!(layer.size, 8);
}

#[test]
fn other_artifacts_are_named_for_what_they_are() {
    assert_eq!(
        problem(
            MANIFEST_MEDIA_TYPE,
            &manifest(
                "application/vnd.oci.image.config.v1+json",
                &["application/vnd.oci.image.layer.v1.tar+gzip"]
            )
        ),
        "`oci://r.example/a:1` is not a Wasm component artifact: its config media type is \
         `application/vnd.oci.image.config.v1+json`, not `application/vnd.wasm.config.v0+json` (is it a container image?)"
    );
    assert_eq!(
        problem(
            MANIFEST_MEDIA_TYPE,
            &manifest(
                WASM_CONFIG_MEDIA_TYPE,
                &[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]
            )
        ),
        "`oci://r.example/a:1` is not a Wasm component artifact: it has 2 layers; \
         a Wasm artifact has exactly one `application/wasm` layer"
    );
    assert_eq!(
        problem(
            MANIFEST_MEDIA_TYPE,
            &manifest(WASM_CONFIG_MEDIA_TYPE, &["application/octet-stream"])
        ),
        "`oci://r.example/a:1` is not a Wasm component artifact: its layer media type is \
         `application/octet-stream`, not `application/wasm`"
    );
    assert_eq!(
        problem("application/vnd.oci.image.index.v1+json", b"{}"),
        "`oci://r.example/a:1` is not a Wasm component artifact: it is an image index \
         (`application/vnd.oci.image.index.v1+json`), such as a multi-platform container image"
    );
    assert_eq!(
        problem(MANIFEST_MEDIA_TYPE, b"<html>"),
        "`oci://r.example/a:1` is not a Wasm component artifact: its manifest is not an OCI image manifest \
         (expected value at line 1 column 1)"
    );
}
