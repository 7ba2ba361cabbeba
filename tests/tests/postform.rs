//! Browser POST uploads (POST object with a signed policy), sent as raw
//! `multipart/form-data` the way a browser sends a form: SigV4 and SigV2
//! forms, every kind of policy condition, the success answers
//! (`success_action_status`, `success_action_redirect`), the form's
//! metadata, tags, checksum and SSE fields, and AWS's code for each
//! violation (nothing stored then).

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use cairn_tests::browser::{form_body, post_form_v2, post_form_v4};
use cairn_tests::raw::{self, Creds, Response};
use cairn_tests::{REGION, Server, StartOpts, bucket_name, get_bytes};
use serde_json::json;
use sha2::Digest as _;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

async fn post(
    s: &Server,
    b: &str,
    fields: &[(String, String)],
    name: &str,
    data: &[u8],
) -> Result<Response> {
    let (boundary, body) = form_body(fields, name, data);
    let ct = format!("multipart/form-data; boundary={boundary}");
    raw::send_url(
        "POST",
        &format!("{}/{b}", s.endpoint()),
        &[("content-type", &ct)],
        &body,
    )
    .await
}

fn minutes(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

fn fields_v4(
    s: &Server,
    fields: &[(&str, &str)],
    conds: &[serde_json::Value],
) -> Result<Vec<(String, String)>> {
    post_form_v4(&s.credentials(), REGION, fields, conds, minutes(5))
}

async fn exists(c: &aws_sdk_s3::Client, b: &str, k: &str) -> bool {
    c.head_object().bucket(b).key(k).send().await.is_ok()
}

/// SigV4 and SigV2 forms: what the form says is stored (key with
/// `${filename}`, Content-Type, metadata, tags, checksum, SSE), and each
/// success answer is AWS's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_uploads_store_what_the_form_says() -> Result<()> {
    let s = Server::start(StartOpts {
        env: vec![(
            "CAIRN_KMS_SECRET_KEY".into(),
            format!("cairn-default:{}", B64.encode([0x5au8; 32])),
        )],
        ..StartOpts::default()
    })
    .await?;
    let c = s.s3();
    let b = bucket_name("form");
    c.create_bucket().bucket(&b).send().await?;

    // SigV4: 201 with the PostResponse XML, everything the form set stored
    let data = b"quarterly numbers";
    let sha = B64.encode(sha2::Sha256::digest(data));
    let tagging =
        "<Tagging><TagSet><Tag><Key>team</Key><Value>finance</Value></Tag></TagSet></Tagging>";
    let f = fields_v4(
        &s,
        &[
            ("key", "docs/${filename}"),
            ("Content-Type", "text/plain"),
            ("x-amz-meta-owner", "ann"),
            ("tagging", tagging),
            ("success_action_status", "201"),
            ("x-amz-checksum-sha256", &sha),
            ("x-amz-server-side-encryption", "AES256"),
        ],
        &[
            json!({ "bucket": b }),
            json!(["starts-with", "$key", "docs/"]),
            json!(["starts-with", "$Content-Type", "text/"]),
            json!({"x-amz-meta-owner": "ann"}),
            json!({ "tagging": tagging }),
            json!({"success_action_status": "201"}),
            json!(["starts-with", "$x-amz-checksum-sha256", ""]),
            json!(["content-length-range", 1, 1000]),
        ],
    )?;
    let r = post(&s, &b, &f, "q3.txt", data).await?;
    ensure!(r.status == 201, "201 form: {}", r.describe());
    let text = r.text();
    ensure!(
        raw::xml_tag(&text, "Key").as_deref() == Some("docs/q3.txt")
            && raw::xml_tag(&text, "Bucket").as_deref() == Some(b.as_str()),
        "PostResponse: {text}"
    );
    let etag = r.header("etag").context("no ETag header")?.to_owned();
    ensure!(etag.starts_with('"') && etag.len() == 34, "ETag {etag}");
    ensure!(
        raw::xml_tag(&text, "ETag").is_some_and(|e| e.replace("&quot;", "\"") == etag),
        "PostResponse ETag: {text}"
    );
    ensure!(get_bytes(&c, &b, "docs/q3.txt").await? == data);
    let head = c
        .head_object()
        .bucket(&b)
        .key("docs/q3.txt")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await?;
    ensure!(head.content_type() == Some("text/plain"), "{head:?}");
    ensure!(
        head.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str)
            == Some("ann"),
        "{head:?}"
    );
    ensure!(
        head.server_side_encryption() == Some(&aws_sdk_s3::types::ServerSideEncryption::Aes256),
        "SSE from the form: {head:?}"
    );
    ensure!(
        head.checksum_sha256() == Some(sha.as_str()),
        "checksum: {head:?}"
    );
    let tags = c
        .get_object_tagging()
        .bucket(&b)
        .key("docs/q3.txt")
        .send()
        .await?;
    ensure!(
        tags.tag_set().len() == 1
            && tags.tag_set()[0].key() == "team"
            && tags.tag_set()[0].value() == "finance",
        "tags from the form: {tags:?}"
    );

    // a checksum the file does not match: refused, nothing stored
    let wrong = B64.encode(sha2::Sha256::digest(b"other"));
    let f = fields_v4(
        &s,
        &[("key", "docs/bad-sum"), ("x-amz-checksum-sha256", &wrong)],
        &[
            json!(["starts-with", "$key", "docs/"]),
            json!({ "x-amz-checksum-sha256": wrong }),
        ],
    )?;
    let r = post(&s, &b, &f, "x", data).await?;
    ensure!(
        r.status == 400 && r.code().as_deref() == Some("BadDigest"),
        "wrong checksum: {}",
        r.describe()
    );
    ensure!(
        !exists(&c, &b, "docs/bad-sum").await,
        "stored despite its checksum"
    );

    // 200: empty; default: 204 with ETag and Location
    let f = fields_v4(
        &s,
        &[("key", "s200"), ("success_action_status", "200")],
        &[
            json!({"key": "s200"}),
            json!({"success_action_status": "200"}),
        ],
    )?;
    let r = post(&s, &b, &f, "f", b"two hundred").await?;
    ensure!(
        r.status == 200 && r.body.is_empty(),
        "200 form: {}",
        r.describe()
    );
    let f = fields_v4(&s, &[("key", "s204")], &[json!({"key": "s204"})])?;
    let r = post(&s, &b, &f, "f", b"no content").await?;
    ensure!(
        r.status == 204
            && r.header("etag").is_some()
            && r.header("location") == Some(&format!("/{b}/s204")[..]),
        "204 form: {} {:?}",
        r.describe(),
        r.headers
    );
    ensure!(get_bytes(&c, &b, "s204").await? == b"no content");

    // a redirect: 303 to the URL with bucket, key and the quoted ETag
    let f = fields_v4(
        &s,
        &[
            ("key", "redir"),
            ("success_action_redirect", "https://app.test/done?x=1"),
        ],
        &[
            json!({"key": "redir"}),
            json!({"success_action_redirect": "https://app.test/done?x=1"}),
        ],
    )?;
    let r = post(&s, &b, &f, "f", b"redirected").await?;
    let loc = r.header("location").unwrap_or("").to_owned();
    ensure!(
        r.status == 303
            && loc.starts_with("https://app.test/done?x=1&")
            && loc.contains(&format!("bucket={b}"))
            && loc.contains("key=redir")
            && loc.contains("etag=%22"),
        "redirect: {} {loc}",
        r.describe()
    );

    // SigV2 form (older SDKs)
    let f = post_form_v2(
        &s.credentials(),
        &[("key", "v2/${filename}"), ("x-amz-meta-sig", "v2")],
        &[
            json!({ "bucket": b }),
            json!(["starts-with", "$key", "v2/"]),
            json!({"x-amz-meta-sig": "v2"}),
        ],
        minutes(5),
    )?;
    let r = post(&s, &b, &f, "old.bin", b"signed the old way").await?;
    ensure!(r.status == 204, "V2 form: {}", r.describe());
    ensure!(get_bytes(&c, &b, "v2/old.bin").await? == b"signed the old way");
    Ok(())
}

/// Each policy violation gets AWS's status and code, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_refusals_have_aws_codes() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("formbad");
    c.create_bucket().bucket(&b).send().await?;
    let data = b"0123456789".repeat(10); // 100 bytes

    let check =
        |what: &'static str, r: Response, status: u16, code: &'static str, msg: &'static str| {
            ensure!(
                r.status == status && r.code().as_deref() == Some(code) && r.text().contains(msg),
                "{what}: expected {status} {code} {msg:?}, got {}",
                r.describe()
            );
            Ok::<(), anyhow::Error>(())
        };
    let policy_failed = "Invalid according to Policy: Policy Condition failed";

    let f = fields_v4(&s, &[("key", "other/k")], &[json!({"key": "uploads/k"})])?;
    check(
        "eq key",
        post(&s, &b, &f, "f", &data).await?,
        403,
        "AccessDenied",
        policy_failed,
    )?;
    let f = fields_v4(
        &s,
        &[("key", "other/k")],
        &[json!(["starts-with", "$key", "uploads/"])],
    )?;
    check(
        "starts-with key",
        post(&s, &b, &f, "f", &data).await?,
        403,
        "AccessDenied",
        policy_failed,
    )?;
    let f = fields_v4(
        &s,
        &[("key", "k")],
        &[json!({"key": "k"}), json!({"bucket": "another-bucket"})],
    )?;
    check(
        "bucket",
        post(&s, &b, &f, "f", &data).await?,
        403,
        "AccessDenied",
        policy_failed,
    )?;
    let f = fields_v4(
        &s,
        &[("key", "k"), ("Content-Type", "application/pdf")],
        &[
            json!({"key": "k"}),
            json!(["starts-with", "$Content-Type", "image/"]),
        ],
    )?;
    check(
        "Content-Type",
        post(&s, &b, &f, "f", &data).await?,
        403,
        "AccessDenied",
        policy_failed,
    )?;
    let f = fields_v4(
        &s,
        &[("key", "k"), ("x-amz-meta-extra", "1")],
        &[json!({"key": "k"})],
    )?;
    check(
        "a field the policy does not name",
        post(&s, &b, &f, "f", &data).await?,
        403,
        "AccessDenied",
        "Invalid according to Policy: Extra input fields: x-amz-meta-extra",
    )?;
    let f = post_form_v4(
        &s.credentials(),
        REGION,
        &[("key", "k")],
        &[json!({"key": "k"})],
        minutes(-1),
    )?;
    check(
        "expired",
        post(&s, &b, &f, "f", &data).await?,
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )?;

    let wrong = Creds {
        access_key: s.access_key().to_owned(),
        secret_key: "not-the-secret".to_owned(),
    };
    let f = post_form_v4(
        &wrong,
        REGION,
        &[("key", "k")],
        &[json!({"key": "k"})],
        minutes(5),
    )?;
    check(
        "V4 signature",
        post(&s, &b, &f, "f", &data).await?,
        403,
        "SignatureDoesNotMatch",
        "",
    )?;
    let f = post_form_v2(&wrong, &[("key", "k")], &[json!({"key": "k"})], minutes(5))?;
    check(
        "V2 signature",
        post(&s, &b, &f, "f", &data).await?,
        403,
        "SignatureDoesNotMatch",
        "",
    )?;
    let mut f = fields_v4(&s, &[("key", "k")], &[json!({"key": "k"})])?;
    for (k, v) in &mut f {
        if k == "policy" {
            *v = "not a policy".to_owned();
        }
    }
    check(
        "an unreadable policy",
        post(&s, &b, &f, "f", &data).await?,
        400,
        "InvalidPolicyDocument",
        "Invalid Policy",
    )?;

    // content-length-range: checked as the file streams
    let f = fields_v4(
        &s,
        &[("key", "big")],
        &[
            json!({"key": "big"}),
            json!(["content-length-range", 1, 50]),
        ],
    )?;
    check(
        "too large",
        post(&s, &b, &f, "f", &data).await?,
        400,
        "EntityTooLarge",
        "exceeds the maximum",
    )?;
    let f = fields_v4(
        &s,
        &[("key", "small")],
        &[
            json!({"key": "small"}),
            json!(["content-length-range", 101, 200]),
        ],
    )?;
    check(
        "too small",
        post(&s, &b, &f, "f", &data).await?,
        400,
        "EntityTooSmall",
        "smaller than the minimum",
    )?;
    let f = fields_v4(
        &s,
        &[("key", "exact")],
        &[
            json!({"key": "exact"}),
            json!(["content-length-range", 100, 100]),
        ],
    )?;
    let r = post(&s, &b, &f, "f", &data).await?;
    ensure!(r.status == 204, "a size at both bounds: {}", r.describe());

    for k in ["other/k", "k", "big", "small"] {
        ensure!(!exists(&c, &b, k).await, "{k} was stored by a refused form");
    }
    ensure!(get_bytes(&c, &b, "exact").await? == data);
    Ok(())
}

/// A large form upload streams: the server's memory does not grow by the
/// file's size (s3s used to hold the whole file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_form_upload_streams() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("formbig");
    c.create_bucket().bucket(&b).send().await?;
    let size = 128usize << 20;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let f = fields_v4(
        &s,
        &[("key", "large")],
        &[
            json!({"key": "large"}),
            json!(["content-length-range", 1, size]),
        ],
    )?;
    let before = rss_kib(&s)?;
    let r = post(&s, &b, &f, "large.bin", &data).await?;
    ensure!(r.status == 204, "large form: {}", r.describe());
    let peak = peak_kib(&s)?;
    eprintln!(
        "large form upload: {} MiB; server RSS before {before} KiB, peak {peak} KiB",
        size >> 20
    );
    ensure!(
        peak.saturating_sub(before) < (size as u64 / 1024) / 2,
        "server memory grew from {before} KiB to a peak of {peak} KiB for a {} MiB form",
        size >> 20
    );
    let got = get_bytes(&c, &b, "large").await?;
    ensure!(
        got.len() == size && got == data,
        "large form object differs"
    );
    Ok(())
}

fn status_kib(s: &Server, field: &str) -> Result<u64> {
    let pid = s.pid().context("server pid")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} of the server"))
}

fn rss_kib(s: &Server) -> Result<u64> {
    status_kib(s, "VmRSS:")
}

fn peak_kib(s: &Server) -> Result<u64> {
    status_kib(s, "VmHWM:")
}

/// A form is the signer's request: an IAM user allowed to write one bucket
/// cannot upload to another with a form (SigV4 or SigV2) it signed, nor set
/// CORS rules it has no right to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_go_through_iam() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let (mine, theirs) = (bucket_name("mine"), bucket_name("theirs"));
    for b in [&mine, &theirs] {
        c.create_bucket().bucket(b).send().await?;
    }
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject"],
            "Resource": [format!("arn:aws:s3:::{mine}/*")]
        }]
    })
    .to_string();
    s.aws_iam(&["create-user", "--user-name", "former"])?;
    s.aws_iam(&[
        "put-user-policy",
        "--user-name",
        "former",
        "--policy-name",
        "p",
        "--policy-document",
        &policy,
    ])?;
    let key = s.aws_iam(&["create-access-key", "--user-name", "former"])?;
    let creds = Creds {
        access_key: key["AccessKey"]["AccessKeyId"]
            .as_str()
            .context("key id")?
            .to_owned(),
        secret_key: key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .context("secret")?
            .to_owned(),
    };

    for b in [&mine, &theirs] {
        let forms = [
            (
                "V4",
                post_form_v4(
                    &creds,
                    REGION,
                    &[("key", "k")],
                    &[json!({"key": "k"})],
                    minutes(5),
                )?,
            ),
            (
                "V2",
                post_form_v2(
                    &creds,
                    &[("key", "k2")],
                    &[json!({"key": "k2"})],
                    minutes(5),
                )?,
            ),
        ];
        for (sig, f) in &forms {
            let r = post(&s, b, f, "f", b"by the user").await?;
            if b == &mine {
                ensure!(
                    r.status == 204,
                    "{sig} form to the user's bucket: {}",
                    r.describe()
                );
            } else {
                ensure!(
                    r.status == 403 && r.code().as_deref() == Some("AccessDenied"),
                    "{sig} form to another bucket: {}",
                    r.describe()
                );
            }
        }
    }
    ensure!(get_bytes(&c, &mine, "k").await? == b"by the user");
    ensure!(get_bytes(&c, &mine, "k2").await? == b"by the user");
    ensure!(!exists(&c, &theirs, "k").await && !exists(&c, &theirs, "k2").await);

    let user = aws_sdk_s3::Client::from_conf(
        s.s3_config_with(&creds.access_key, &creds.secret_key)
            .build(),
    );
    let rule = aws_sdk_s3::types::CorsRule::builder()
        .allowed_origins("*")
        .allowed_methods("GET")
        .build()?;
    let r = user
        .put_bucket_cors()
        .bucket(&mine)
        .cors_configuration(
            aws_sdk_s3::types::CorsConfiguration::builder()
                .cors_rules(rule)
                .build()?,
        )
        .send()
        .await;
    cairn_tests::expect_err(
        "PutBucketCors without s3:PutBucketCORS",
        r,
        403,
        Some("AccessDenied"),
    )?;
    Ok(())
}
