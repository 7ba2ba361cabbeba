//! The Vault Transit KMS (`cairn_core::kms::VaultKms`, through vaultrs)
//! against a real OpenBao server (`bao server -dev`, see
//! `cairn_tests::openbao`): token and AppRole auth (with re-login after the
//! token expires or is revoked), data keys, decrypt, rewrap, rotation,
//! status, unknown keys, context binding for derived keys. Then the admin
//! side end to end: `cairn server --kms-*` and `cairn admin kms
//! status|create-key|rotate` with each backend.

use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use cairn_tests::{Server, StartOpts, cairn_bin};

use cairn_core::kms::{
    DEFAULT_KEY, Kms, KmsConfig, KmsError, VaultAuth, VaultConfig, VaultKms, sealed_version,
};
use cairn_tests::openbao::OpenBao;

fn cfg(bao: &OpenBao, auth: VaultAuth) -> VaultConfig {
    VaultConfig {
        endpoint: bao.addr().to_owned(),
        mount: "transit".into(),
        auth,
        default_key: DEFAULT_KEY.into(),
        timeout: Duration::from_secs(10),
    }
}

/// Flips one character of the base64 body of a `vault:v<N>:...` string.
fn tamper(sealed: &str) -> String {
    let mut b = sealed.as_bytes().to_vec();
    let i = b.len() - 5;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).expect("ASCII in, ASCII out")
}

#[tokio::test]
async fn token_auth_datakeys_rewrap_rotate_status() {
    let bao = OpenBao::start().unwrap();
    let kms = VaultKms::connect(cfg(&bao, VaultAuth::Token(bao.root_token().into())))
        .await
        .unwrap();
    // connect created the default key, derived
    let info = bao.run(&["read", "-field=derived", "transit/keys/cairn-default"]);
    assert_eq!(info.unwrap().trim(), "true");
    assert_eq!(kms.default_key(), "cairn-default");

    let ctx = b"bucket/object";
    let dk = kms.generate_data_key(DEFAULT_KEY, ctx).await.unwrap();
    assert!(dk.sealed.starts_with("vault:v1:"), "{}", dk.sealed);
    assert_eq!(sealed_version(&dk.sealed), Some(1));
    assert_eq!(
        kms.decrypt(DEFAULT_KEY, &dk.sealed, ctx).await.unwrap(),
        dk.plaintext
    );
    let dk2 = kms.generate_data_key(DEFAULT_KEY, ctx).await.unwrap();
    assert_ne!(dk.plaintext, dk2.plaintext);

    // derived key: the context is bound
    for bad_ctx in [&b"bucket/other"[..], b""] {
        match kms.decrypt(DEFAULT_KEY, &dk.sealed, bad_ctx).await {
            Err(KmsError::Invalid { .. }) => {}
            other => panic!("wrong context: {other:?}"),
        }
    }
    // altered sealed key, or not a Transit ciphertext at all
    for bad in [
        tamper(&dk.sealed),
        "cairn:v1:AAAA".into(),
        "vault:v1".into(),
    ] {
        match kms.decrypt(DEFAULT_KEY, &bad, ctx).await {
            Err(KmsError::Invalid { .. }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }

    // rotation: old sealed keys still open; rewrap names the new version
    assert_eq!(kms.rotate_key(DEFAULT_KEY).await.unwrap(), 2);
    assert_eq!(
        kms.decrypt(DEFAULT_KEY, &dk.sealed, ctx).await.unwrap(),
        dk.plaintext
    );
    let re = kms.rewrap(DEFAULT_KEY, &dk.sealed, ctx).await.unwrap();
    assert!(re.starts_with("vault:v2:"), "{re}");
    assert_ne!(re, dk.sealed);
    assert_eq!(
        kms.decrypt(DEFAULT_KEY, &re, ctx).await.unwrap(),
        dk.plaintext
    );
    assert!(matches!(
        kms.rewrap(DEFAULT_KEY, &dk.sealed, b"other").await,
        Err(KmsError::Invalid { .. })
    ));
    let new = kms.generate_data_key(DEFAULT_KEY, ctx).await.unwrap();
    assert_eq!(sealed_version(&new.sealed), Some(2));

    // create, exists, status
    kms.create_key("tenant-a").await.unwrap();
    assert!(matches!(
        kms.create_key("tenant-a").await,
        Err(KmsError::Exists { .. })
    ));
    assert!(kms.create_key("bad name").await.is_err());
    let st = kms.status().await.unwrap();
    assert_eq!(st.backend, "vault");
    assert!(st.location.contains(bao.addr()), "{}", st.location);
    assert_eq!(st.default_key, DEFAULT_KEY);
    let mut keys: Vec<(String, u32)> = st
        .keys
        .iter()
        .map(|k| (k.name.clone(), k.latest_version))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![("cairn-default".into(), 2), ("tenant-a".into(), 1)]
    );
    // a sealed key of one key does not open under another
    assert!(kms.decrypt("tenant-a", &dk.sealed, ctx).await.is_err());

    // unknown keys
    assert!(matches!(
        kms.generate_data_key("no-such-key", ctx).await,
        Err(KmsError::NotFound { .. })
    ));
    assert!(matches!(
        kms.decrypt("no-such-key", &dk.sealed, ctx).await,
        Err(KmsError::NotFound { .. })
    ));
    assert!(matches!(
        kms.rewrap("no-such-key", &dk.sealed, ctx).await,
        Err(KmsError::NotFound { .. })
    ));
    assert!(matches!(
        kms.rotate_key("no-such-key").await,
        Err(KmsError::NotFound { .. })
    ));

    // a bad token is refused with Denied, not mistaken for a missing key
    let bad = VaultKms::new(cfg(&bao, VaultAuth::Token("not-a-token".into()))).unwrap();
    assert!(matches!(
        bad.generate_data_key(DEFAULT_KEY, ctx).await,
        Err(KmsError::Denied { .. })
    ));
}

/// A key created outside Cairn without derivation: Transit takes no
/// context for it, so the context is not bound (documented in vault.rs).
#[tokio::test]
async fn non_derived_key_binds_no_context() {
    let bao = OpenBao::start().unwrap();
    bao.run(&["write", "-f", "transit/keys/plain"]).unwrap();
    let kms = VaultKms::new(cfg(&bao, VaultAuth::Token(bao.root_token().into()))).unwrap();
    let dk = kms.generate_data_key("plain", b"one").await.unwrap();
    assert_eq!(
        kms.decrypt("plain", &dk.sealed, b"two").await.unwrap(),
        dk.plaintext
    );
    assert!(matches!(
        kms.decrypt("plain", &tamper(&dk.sealed), b"one").await,
        Err(KmsError::Invalid { .. })
    ));
}

const POLICY: &str = r#"
path "transit/datakey/plaintext/*" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["update"] }
path "transit/rewrap/*" { capabilities = ["update"] }
path "transit/keys" { capabilities = ["list"] }
path "transit/keys/*" { capabilities = ["create", "read", "update"] }
"#;

#[tokio::test]
async fn approle_login_relogin_after_expiry_and_revocation() {
    let bao = OpenBao::start().unwrap();
    // tokens that live 2 s: the client must log in again by itself
    let (role_id, secret_id) = bao.approle("cairn-short", POLICY, "2s").unwrap();
    let approle = |role_id: &str, secret_id: &str| VaultAuth::AppRole {
        mount: "approle".into(),
        role_id: role_id.into(),
        secret_id: secret_id.into(),
    };
    let kms = VaultKms::connect(cfg(&bao, approle(&role_id, &secret_id)))
        .await
        .unwrap();
    let dk = kms.generate_data_key(DEFAULT_KEY, b"c").await.unwrap();
    let before = kms.logins();
    assert!(before >= 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        kms.decrypt(DEFAULT_KEY, &dk.sealed, b"c").await.unwrap(),
        dk.plaintext
    );
    assert!(kms.logins() > before, "no login after the token expired");
    assert_eq!(kms.rotate_key(DEFAULT_KEY).await.unwrap(), 2);
    let st = kms.status().await.unwrap();
    assert_eq!(st.keys.len(), 1);

    // long-lived tokens, revoked behind the client's back: Vault answers
    // 403, the client logs in again and the call succeeds
    let (role_id, secret_id) = bao.approle("cairn-long", POLICY, "1h").unwrap();
    let kms = VaultKms::new(cfg(&bao, approle(&role_id, &secret_id))).unwrap();
    let dk = kms.generate_data_key(DEFAULT_KEY, b"c").await.unwrap();
    assert_eq!(kms.logins(), 1);
    bao.run(&["token", "revoke", "-mode=path", "auth/approle/login"])
        .unwrap();
    assert_eq!(
        kms.decrypt(DEFAULT_KEY, &dk.sealed, b"c").await.unwrap(),
        dk.plaintext
    );
    assert_eq!(kms.logins(), 2, "the 403 did not lead to a new login");
    let re = kms.rewrap(DEFAULT_KEY, &dk.sealed, b"c").await.unwrap();
    assert_eq!(sealed_version(&re), Some(2));

    // a wrong secret id is refused
    let bad = VaultKms::new(cfg(
        &bao,
        approle(&role_id, "00000000-0000-0000-0000-000000000000"),
    ))
    .unwrap();
    assert!(matches!(
        bad.generate_data_key(DEFAULT_KEY, b"c").await,
        Err(KmsError::Denied { .. })
    ));

    // a policy without key management: data keys work, creating keys is
    // denied
    let (role_id, secret_id) = bao
        .approle(
            "cairn-data-only",
            r#"path "transit/datakey/plaintext/*" { capabilities = ["update"] }
               path "transit/keys/*" { capabilities = ["read"] }"#,
            "1h",
        )
        .unwrap();
    let kms = VaultKms::new(cfg(&bao, approle(&role_id, &secret_id))).unwrap();
    kms.generate_data_key(DEFAULT_KEY, b"c").await.unwrap();
    assert!(matches!(
        kms.create_key("new-key").await,
        Err(KmsError::Denied { .. })
    ));
}

/// The server's configuration path: `KmsConfig` with Vault settings.
#[tokio::test]
async fn config_builds_vault_kms() {
    let bao = OpenBao::start().unwrap();
    let (role_id, secret_id) = bao.approle("cairn", POLICY, "1h").unwrap();
    let kms = KmsConfig {
        vault_endpoint: Some(bao.addr().into()),
        vault_approle_id: Some(role_id),
        vault_approle_secret: Some(secret_id),
        default_key: Some("sse-s3".into()),
        ..Default::default()
    }
    .build()
    .await
    .unwrap()
    .unwrap();
    assert_eq!(kms.default_key(), "sse-s3");
    let dk = kms.generate_data_key("sse-s3", b"x").await.unwrap();
    assert_eq!(
        kms.decrypt("sse-s3", &dk.sealed, b"x").await.unwrap(),
        dk.plaintext
    );
    assert_eq!(kms.status().await.unwrap().backend, "vault");
}

/// Runs `cairn admin --endpoint <server> kms ARGS` as a real process.
async fn admin_kms(s: &Server, args: &[&str]) -> Result<Output> {
    let mut cmd = tokio::process::Command::new(cairn_bin()?);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CAIRN_ROOT_USER", s.access_key())
        .env("CAIRN_ROOT_PASSWORD", s.secret_key())
        .args(["admin", "--endpoint", &s.endpoint(), "kms"])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .with_context(|| format!("`cairn admin kms {}` hung", args.join(" ")))?
        .with_context(|| format!("running `cairn admin kms {}`", args.join(" ")))
}

/// stdout of a command that must succeed.
async fn ok(s: &Server, args: &[&str]) -> String {
    let out = admin_kms(s, args).await.expect("cairn admin runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`cairn admin kms {}` failed: {stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// stderr of a command that must fail.
async fn fails(s: &Server, args: &[&str]) -> String {
    let out = admin_kms(s, args).await.expect("cairn admin runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "`cairn admin kms {}` succeeded: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

const BODY: &[u8] = b"kms end-to-end body";

/// Puts one object with SSE-S3 (`key_id` None) or SSE-KMS into a new
/// bucket; returns the bucket.
async fn put_encrypted(s: &Server, key_id: Option<&str>) -> String {
    use aws_sdk_s3::types::ServerSideEncryption;
    let c = s.s3();
    let bucket = cairn_tests::bucket_name("kms");
    c.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let mut put = c
        .put_object()
        .bucket(&bucket)
        .key("obj")
        .body(BODY.to_vec().into());
    put = match key_id {
        None => put.server_side_encryption(ServerSideEncryption::Aes256),
        Some(k) => put
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(k),
    };
    put.send().await.expect("encrypted put");
    bucket
}

async fn get_body(s: &Server, bucket: &str) -> Vec<u8> {
    let r = s
        .s3()
        .get_object()
        .bucket(bucket)
        .key("obj")
        .send()
        .await
        .expect("get");
    r.body.collect().await.expect("body").into_bytes().to_vec()
}

/// The KMS-sealed data key of `bucket/obj` as every drive's `cairn.meta`
/// holds it.
fn sealed_on_disk(s: &Server, bucket: &str) -> Vec<String> {
    on_disk(s, bucket).into_iter().map(|(k, _)| k).collect()
}

/// Per drive: the sealed data key and the (inline) ciphertext shard.
fn on_disk(s: &Server, bucket: &str) -> Vec<(String, Vec<u8>)> {
    s.drives()
        .iter()
        .map(|d| {
            let bytes = std::fs::read(d.join(bucket).join("obj").join("cairn.meta")).expect("meta");
            let m = cairn_core::meta::ObjectMeta::decode(&bytes, true).expect("decode");
            let sealed = m.versions[0]
                .sse
                .as_ref()
                .and_then(|s| s.kms_sealed.clone())
                .expect("a KMS-sealed key");
            (sealed, m.inline_of(0).expect("inline shard").to_vec())
        })
        .collect()
}

async fn server_with(env: Vec<(String, String)>, extra_args: Vec<String>) -> Server {
    Server::start(StartOpts {
        env,
        extra_args,
        ..StartOpts::default()
    })
    .await
    .expect("server starts")
}

#[tokio::test]
async fn admin_kms_with_key_file() {
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("keys.json");
    let s = server_with(
        vec![("CAIRN_KMS_KEY_FILE".into(), file.display().to_string())],
        vec![],
    )
    .await;
    // the server created the file with a random default key, owner-only
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );

    let out = ok(&s, &["status"]).await;
    assert!(out.contains("KMS builtin at"), "{out}");
    assert!(out.contains("default key cairn-default"), "{out}");
    assert!(out.contains("cairn-default        1  (default)"), "{out}");

    let out = ok(&s, &["create-key", "tenant-a"]).await;
    assert_eq!(out.trim(), "created KMS key tenant-a");
    let err = fails(&s, &["create-key", "tenant-a"]).await;
    assert!(
        err.contains("409") && err.contains("already exists"),
        "{err}"
    );
    let err = fails(&s, &["create-key", "bad name"]).await;
    assert!(err.contains("not a valid key name"), "{err}");

    let bucket = put_encrypted(&s, None).await;
    let before = on_disk(&s, &bucket);
    assert!(
        before.iter().all(|(k, _)| k.starts_with("cairn:v1:")),
        "{before:?}"
    );
    let out = ok(&s, &["rotate"]).await;
    assert!(
        out.starts_with(
            "rotated KMS key cairn-default to version 2: 1 object keys re-sealed, 0 failed"
        ),
        "{out}"
    );
    assert_eq!(get_body(&s, &bucket).await, BODY);
    // re-sealed under version 2 on every drive; the data was not rewritten
    let after = on_disk(&s, &bucket);
    assert!(
        after.iter().all(|(k, _)| k.starts_with("cairn:v2:")),
        "{after:?}"
    );
    for ((_, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "the ciphertext changed in a rotation");
    }
    let out = ok(&s, &["rotate", "tenant-a", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["key"], "tenant-a");
    assert_eq!(v["new_version"], 2);
    let err = fails(&s, &["rotate", "no-such-key"]).await;
    assert!(err.contains("KMS.NotFoundException"), "{err}");

    let out = ok(&s, &["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["backend"], "builtin");
    assert_eq!(v["default_key"], "cairn-default");
    assert_eq!(
        v["keys"],
        serde_json::json!([["cairn-default", 2], ["tenant-a", 2]])
    );
    // the file holds both versions of both keys
    let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(f["keys"]["cairn-default"].as_array().unwrap().len(), 2);
    assert_eq!(f["keys"]["tenant-a"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn admin_kms_static_secret_and_none() {
    let secret = format!(
        "static-key:{}",
        base64::engine::general_purpose::STANDARD.encode([9u8; 32])
    );
    let s = server_with(vec![("CAIRN_KMS_SECRET_KEY".into(), secret)], vec![]).await;
    let out = ok(&s, &["status"]).await;
    assert!(out.contains("default key static-key"), "{out}");
    let err = fails(&s, &["rotate"]).await;
    assert!(
        err.contains("501") && err.contains("CAIRN_KMS_SECRET_KEY"),
        "{err}"
    );
    drop(s);

    let s = server_with(vec![], vec![]).await;
    let err = fails(&s, &["status"]).await;
    assert!(err.contains("no KMS is configured"), "{err}");
    drop(s);

    // two KMS at once: the server refuses to start
    let keys = tempfile::tempdir().unwrap();
    let r = Server::start(StartOpts {
        env: vec![
            (
                "CAIRN_KMS_SECRET_KEY".into(),
                format!(
                    "k:{}",
                    base64::engine::general_purpose::STANDARD.encode([1u8; 32])
                ),
            ),
            (
                "CAIRN_KMS_KEY_FILE".into(),
                keys.path().join("k.json").display().to_string(),
            ),
        ],
        ..StartOpts::default()
    })
    .await;
    assert!(r.is_err(), "started with two KMS");
}

#[tokio::test]
async fn admin_kms_with_openbao() {
    let bao = OpenBao::start().unwrap();
    let (role_id, secret_id) = bao.approle("cairn", POLICY, "1h").unwrap();
    let s = server_with(
        vec![
            ("CAIRN_KMS_VAULT_APPROLE_ID".into(), role_id),
            ("CAIRN_KMS_VAULT_APPROLE_SECRET".into(), secret_id),
        ],
        vec![
            "--kms-vault-endpoint".into(),
            bao.addr().into(),
            "--kms-default-key".into(),
            "cairn-sse".into(),
        ],
    )
    .await;
    let out = ok(&s, &["status"]).await;
    assert!(out.contains("KMS vault at"), "{out}");
    assert!(out.contains("cairn-sse        1  (default)"), "{out}");
    ok(&s, &["create-key", "tenant-b"]).await;
    let bucket = put_encrypted(&s, Some("tenant-b")).await;
    assert!(
        sealed_on_disk(&s, &bucket)
            .iter()
            .all(|k| k.starts_with("vault:v1:"))
    );
    let out = ok(&s, &["rotate", "tenant-b"]).await;
    assert!(
        out.starts_with("rotated KMS key tenant-b to version 2: 1 object keys re-sealed, 0 failed"),
        "{out}"
    );
    assert_eq!(get_body(&s, &bucket).await, BODY);
    let after = sealed_on_disk(&s, &bucket);
    assert!(
        after.iter().all(|k| k.starts_with("vault:v2:")),
        "{after:?}"
    );
    // Vault agrees
    let latest = bao
        .run(&["read", "-field=latest_version", "transit/keys/tenant-b"])
        .unwrap();
    assert_eq!(latest.trim(), "2");
    let err = fails(&s, &["create-key", "tenant-b"]).await;
    assert!(err.contains("already exists"), "{err}");
}
