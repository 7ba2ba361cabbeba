//! CORS: the bucket configuration (aws-sdk-s3, awscli), preflights and the
//! response headers (raw HTTP), and a real browser (headless chromium) on
//! another origin uploading with fetch() to a presigned URL and with a
//! signed POST form, and refused from an origin the rules do not name.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use cairn_tests::browser::{PageServer, Report, post_form_v4, report_json, run_chromium};
use cairn_tests::raw::{self, Client};
use cairn_tests::{REGION, Server, bucket_name, expect_err, get_bytes};

fn rule(origins: &[&str], methods: &[&str], headers: &[&str], expose: &[&str]) -> CorsRule {
    let mut b = CorsRule::builder().max_age_seconds(600);
    for o in origins {
        b = b.allowed_origins(*o);
    }
    for m in methods {
        b = b.allowed_methods(*m);
    }
    for h in headers {
        b = b.allowed_headers(*h);
    }
    for e in expose {
        b = b.expose_headers(*e);
    }
    b.build().expect("a CORS rule with origins and methods")
}

/// awscli against the server.
fn aws(s: &Server) -> std::process::Command {
    let mut c = s.tool("aws");
    c.args(["--endpoint-url", &s.endpoint()]);
    c
}

async fn put_cors(c: &aws_sdk_s3::Client, b: &str, rules: Vec<CorsRule>) -> Result<()> {
    c.put_bucket_cors()
        .bucket(b)
        .cors_configuration(
            CorsConfiguration::builder()
                .set_cors_rules(Some(rules))
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Put/Get/DeleteBucketCors with the SDK and awscli: stored across a
/// restart, NoSuchCORSConfiguration when absent, AWS's codes for rules it
/// refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_configuration() -> Result<()> {
    let mut s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("corscfg");
    c.create_bucket().bucket(&b).send().await?;

    expect_err(
        "GetBucketCors before any",
        c.get_bucket_cors().bucket(&b).send().await,
        404,
        Some("NoSuchCORSConfiguration"),
    )?;
    put_cors(
        &c,
        &b,
        vec![
            rule(
                &["http://*.example.com"],
                &["PUT", "POST"],
                &["*"],
                &["ETag"],
            ),
            rule(&["*"], &["GET"], &[], &[]),
        ],
    )
    .await?;

    // refused rules, each with AWS's code; the stored one stays
    for (what, bad) in [
        ("a PATCH method", rule(&["*"], &["PATCH"], &[], &[])),
        (
            "two wildcards in an origin",
            rule(&["http://*.*.com"], &["GET"], &[], &[]),
        ),
        (
            "two wildcards in a header",
            rule(&["*"], &["GET"], &["x-*-*"], &[]),
        ),
        (
            "a wildcard expose header",
            rule(&["*"], &["GET"], &[], &["x-amz-*"]),
        ),
    ] {
        expect_err(
            what,
            put_cors(&c, &b, vec![bad]).await.map_err(|e| {
                e.downcast::<aws_sdk_s3::error::SdkError<
                    aws_sdk_s3::operation::put_bucket_cors::PutBucketCorsError,
                    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
                >>()
                .expect("an SDK error")
            }),
            400,
            Some("InvalidRequest"),
        )?;
    }
    // a rule without AllowedMethod: the XML is malformed
    let xml = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>";
    let md5 = {
        use base64::Engine as _;
        use md5::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(xml.as_bytes()))
    };
    let r = s
        .raw()
        .send(
            "PUT",
            &format!("/{b}?cors"),
            &[("content-md5", &md5)],
            xml.as_bytes(),
        )
        .await?;
    ensure!(
        r.status == 400 && r.code().as_deref() == Some("MalformedXML"),
        "a rule without a method: {}",
        r.describe()
    );

    s.restart().await?;
    let c = s.s3();
    let got = c.get_bucket_cors().bucket(&b).send().await?;
    let rules = got.cors_rules();
    ensure!(rules.len() == 2, "rules after a restart: {rules:?}");
    ensure!(
        rules[0].allowed_origins() == ["http://*.example.com"],
        "{rules:?}"
    );
    ensure!(rules[0].allowed_methods() == ["PUT", "POST"], "{rules:?}");
    ensure!(rules[0].expose_headers() == ["ETag"], "{rules:?}");
    ensure!(rules[0].max_age_seconds() == Some(600), "{rules:?}");
    ensure!(rules[1].allowed_origins() == ["*"], "{rules:?}");

    // awscli reads, replaces and deletes it
    let out = cairn_tests::run(aws(&s).args(["s3api", "get-bucket-cors", "--bucket", &b]))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        v["CORSRules"][1]["AllowedMethods"] == serde_json::json!(["GET"]),
        "awscli get-bucket-cors: {v}"
    );
    let cfg = r#"{"CORSRules":[{"AllowedOrigins":["https://app.test"],"AllowedMethods":["GET","HEAD"],"ID":"app"}]}"#;
    cairn_tests::run(aws(&s).args([
        "s3api",
        "put-bucket-cors",
        "--bucket",
        &b,
        "--cors-configuration",
        cfg,
    ]))?;
    let got = c.get_bucket_cors().bucket(&b).send().await?;
    ensure!(
        got.cors_rules().len() == 1 && got.cors_rules()[0].id() == Some("app"),
        "after awscli put: {got:?}"
    );
    cairn_tests::run(aws(&s).args(["s3api", "delete-bucket-cors", "--bucket", &b]))?;
    let out = cairn_tests::run_status(aws(&s).args(["s3api", "get-bucket-cors", "--bucket", &b]))?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("NoSuchCORSConfiguration"),
        "get-bucket-cors after delete: {err}"
    );
    Ok(())
}

/// Preflights answered from the rules (unsigned), and the CORS headers on
/// signed, presigned and error responses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_and_response_headers() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("corshdr");
    c.create_bucket().bucket(&b).send().await?;
    c.put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await?;
    let anon = Client::new(s.addr(), None);
    let target = format!("/{b}/k");
    let preflight = |origin: &'static str, method: &'static str, headers: Option<&'static str>| {
        let anon = anon.clone();
        let target = target.clone();
        async move {
            let mut hs = vec![
                ("origin", origin),
                ("access-control-request-method", method),
            ];
            if let Some(h) = headers {
                hs.push(("access-control-request-headers", h));
            }
            anon.send("OPTIONS", &target, &hs, b"").await
        }
    };

    // no rules yet
    let r = preflight("http://app.example.com", "PUT", None).await?;
    ensure!(
        r.status == 403 && r.code().as_deref() == Some("CORSResponse"),
        "preflight without rules: {}",
        r.describe()
    );

    put_cors(
        &c,
        &b,
        vec![
            rule(
                &["http://*.example.com"],
                &["PUT", "POST", "GET"],
                &["content-type", "x-amz-*"],
                &["ETag", "x-amz-request-id"],
            ),
            rule(&["*"], &["GET", "HEAD"], &[], &[]),
        ],
    )
    .await?;

    let r = preflight(
        "http://app.example.com",
        "PUT",
        Some("Content-Type, X-Amz-Date"),
    )
    .await?;
    ensure!(r.status == 200, "allowed preflight: {}", r.describe());
    let h = |name: &str| r.header(name).unwrap_or("").to_owned();
    ensure!(
        h("access-control-allow-origin") == "http://app.example.com",
        "{:?}",
        r.headers
    );
    ensure!(
        h("access-control-allow-methods") == "PUT, POST, GET",
        "{:?}",
        r.headers
    );
    ensure!(
        h("access-control-allow-headers") == "content-type, x-amz-date",
        "{:?}",
        r.headers
    );
    ensure!(
        h("access-control-expose-headers") == "ETag, x-amz-request-id",
        "{:?}",
        r.headers
    );
    ensure!(h("access-control-max-age") == "600", "{:?}", r.headers);
    ensure!(
        h("access-control-allow-credentials") == "true",
        "{:?}",
        r.headers
    );
    ensure!(h("vary").contains("Origin"), "{:?}", r.headers);

    for (what, origin, method, headers) in [
        (
            "a header no rule allows",
            "http://app.example.com",
            "PUT",
            Some("authorization"),
        ),
        ("an origin no rule names", "http://evil.test", "PUT", None),
        (
            "a method the wildcard rule lacks",
            "http://evil.test",
            "DELETE",
            None,
        ),
        ("the scheme differs", "https://app.example.com", "PUT", None),
    ] {
        let r = preflight(origin, method, headers).await?;
        ensure!(
            r.status == 403
                && r.code().as_deref() == Some("CORSResponse")
                && r.text().contains("This CORS request is not allowed")
                && r.header("access-control-allow-origin").is_none(),
            "{what}: {}",
            r.describe()
        );
    }
    let r = preflight("http://evil.test", "GET", None).await?;
    ensure!(
        r.status == 200
            && r.header("access-control-allow-origin") == Some("*")
            && r.header("access-control-allow-credentials").is_none(),
        "wildcard origin: {} {:?}",
        r.describe(),
        r.headers
    );
    let r = anon
        .send(
            "OPTIONS",
            &target,
            &[("access-control-request-method", "GET")],
            b"",
        )
        .await?;
    ensure!(
        r.status == 400,
        "preflight without Origin: {}",
        r.describe()
    );
    let r = preflight("http://app.example.com", "PATCH", None).await?;
    ensure!(r.status == 400, "preflight for PATCH: {}", r.describe());

    // actual requests from a page: signed, presigned, failing
    let origin = [("origin", "http://app.example.com")];
    let raw = s.raw();
    let r = raw.send("GET", &target, &origin, b"").await?;
    ensure!(
        r.status == 200
            && r.header("access-control-allow-origin") == Some("http://app.example.com")
            && r.header("access-control-expose-headers") == Some("ETag, x-amz-request-id")
            && r.header("access-control-allow-credentials") == Some("true")
            && r.header("vary").is_some_and(|v| v.contains("Origin")),
        "signed GET from a page: {:?}",
        r.headers
    );
    let r = raw
        .send("GET", &format!("/{b}/missing"), &origin, b"")
        .await?;
    ensure!(
        r.status == 404
            && r.code().as_deref() == Some("NoSuchKey")
            && r.header("access-control-allow-origin") == Some("http://app.example.com"),
        "error answer to a page: {} {:?}",
        r.describe(),
        r.headers
    );
    let pre = c
        .get_object()
        .bucket(&b)
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300))?)
        .await?;
    let r = raw::send_url("GET", pre.uri(), &origin, b"").await?;
    ensure!(
        r.status == 200
            && r.body == b"hello"
            && r.header("access-control-allow-origin") == Some("http://app.example.com"),
        "presigned GET from a page: {} {:?}",
        r.describe(),
        r.headers
    );
    // a broken signature: refused, and the page may read why
    let bad = Client::new(
        s.addr(),
        Some(raw::Creds {
            access_key: s.access_key().to_owned(),
            secret_key: "wrong-secret".to_owned(),
        }),
    );
    let r = bad.send("GET", &target, &origin, b"").await?;
    ensure!(
        r.status == 403
            && r.code().as_deref() == Some("SignatureDoesNotMatch")
            && r.header("access-control-allow-origin") == Some("http://app.example.com"),
        "bad signature from a page: {} {:?}",
        r.describe(),
        r.headers
    );
    // DELETE: no rule allows it from that origin; it is done (CORS is the
    // browser's business) but gets no CORS headers
    c.put_object()
        .bucket(&b)
        .key("gone")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let r = raw
        .send("DELETE", &format!("/{b}/gone"), &origin, b"")
        .await?;
    ensure!(
        r.status == 204 && r.header("access-control-allow-origin").is_none(),
        "DELETE from a page: {} {:?}",
        r.describe(),
        r.headers
    );
    // no Origin: no CORS headers
    let r = raw.send("GET", &target, &[], b"").await?;
    ensure!(
        r.status == 200 && r.header("access-control-allow-origin").is_none(),
        "GET without Origin: {:?}",
        r.headers
    );
    Ok(())
}

/// The page the browser runs: a fetch() PUT to a presigned URL, a fetch()
/// POST of a signed form (both reported to `/result`), then, when `form`
/// fields are given, a real form submission whose redirect lands on
/// `/done`.
fn page(cfg: &serde_json::Value) -> String {
    format!(
        r#"<!doctype html><html><body><p id="state">running</p><script>
const cfg = {cfg};
async function run() {{
  const out = {{}};
  try {{
    const r = await fetch(cfg.put_url, {{method: 'PUT', body: cfg.put_body}});
    out.put_status = r.status;
    out.put_etag = r.headers.get('ETag');
  }} catch (e) {{ out.put_error = String(e); }}
  if (cfg.post_url) {{
    try {{
      const fd = new FormData();
      for (const [k, v] of cfg.post_fields) fd.append(k, v);
      fd.append('file', new Blob([cfg.post_body], {{type: 'text/plain'}}), 'from page.txt');
      const r = await fetch(cfg.post_url, {{method: 'POST', body: fd}});
      out.post_status = r.status;
      out.post_text = await r.text();
    }} catch (e) {{ out.post_error = String(e); }}
  }}
  await fetch('/result', {{method: 'POST', body: JSON.stringify(out)}});
  if (cfg.form_fields) {{
    const f = document.createElement('form');
    f.method = 'POST';
    f.action = cfg.post_url;
    f.enctype = 'multipart/form-data';
    for (const [k, v] of cfg.form_fields) {{
      const i = document.createElement('input');
      i.type = 'hidden'; i.name = k; i.value = v;
      f.appendChild(i);
    }}
    const file = document.createElement('input');
    file.type = 'file'; file.name = 'file';
    const dt = new DataTransfer();
    dt.items.add(new File([cfg.form_body], 'form.txt', {{type: 'text/plain'}}));
    file.files = dt.files;
    f.appendChild(file);
    document.body.appendChild(f);
    f.submit();
  }}
}}
run();
</script></body></html>"#
    )
}

/// Headless chromium on another origin: fetch() PUT to a presigned URL
/// and fetch() POST of a signed form (201 with its XML), a real form
/// submission redirected with bucket, key and ETag; from an origin the
/// rules do not name, the browser refuses the upload after the preflight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_uploads() -> Result<()> {
    cairn_tests::require_tool("chromium")?;
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("browser");
    c.create_bucket().bucket(&b).send().await?;

    // the page's origin: the page server on 127.0.0.1; `localhost` on the
    // same port is another origin, which the rules do not name
    let mut pages = PageServer::start().await?;
    let allowed = format!("http://127.0.0.1:{}", pages.port);
    let other = format!("http://localhost:{}", pages.port);
    put_cors(
        &c,
        &b,
        vec![rule(
            &[&allowed],
            &["PUT", "POST", "GET"],
            &["*"],
            &["ETag"],
        )],
    )
    .await?;

    let presign = |key: &'static str| {
        let c = c.clone();
        let b = b.clone();
        async move {
            Ok::<String, anyhow::Error>(
                c.put_object()
                    .bucket(&b)
                    .key(key)
                    .presigned(PresigningConfig::expires_in(Duration::from_secs(300))?)
                    .await?
                    .uri()
                    .to_owned(),
            )
        }
    };
    let creds = s.credentials();
    let done = format!("{allowed}/done");
    let fetch_fields = post_form_v4(
        &creds,
        REGION,
        &[
            ("key", "page/${filename}"),
            ("success_action_status", "201"),
            ("x-amz-meta-from", "fetch"),
        ],
        &[
            serde_json::json!({ "bucket": b }),
            serde_json::json!(["starts-with", "$key", "page/"]),
            serde_json::json!({"success_action_status": "201"}),
            serde_json::json!({"x-amz-meta-from": "fetch"}),
            serde_json::json!(["content-length-range", 1, 1024]),
        ],
        time::Duration::minutes(5),
    )?;
    let form_fields = post_form_v4(
        &creds,
        REGION,
        &[
            ("key", "form/${filename}"),
            ("success_action_redirect", &done),
            ("Content-Type", "text/plain"),
        ],
        &[
            serde_json::json!({ "bucket": b }),
            serde_json::json!(["starts-with", "$key", "form/"]),
            serde_json::json!({ "success_action_redirect": done }),
            serde_json::json!(["starts-with", "$Content-Type", "text/"]),
        ],
        time::Duration::minutes(5),
    )?;
    let post_url = format!("{}/{b}", s.endpoint());
    pages.set_page(
        "/good.html",
        page(&serde_json::json!({
            "put_url": presign("fetched.txt").await?,
            "put_body": "put by a page",
            "post_url": post_url,
            "post_fields": fetch_fields,
            "post_body": "posted by a page",
            "form_fields": form_fields,
            "form_body": "a form upload",
        })),
    );
    pages.set_page(
        "/evil.html",
        page(&serde_json::json!({
            "put_url": presign("refused.txt").await?,
            "put_body": "must not arrive",
        })),
    );

    let wait = Duration::from_secs(60);
    {
        let _browser = run_chromium(&format!("{allowed}/good.html"))?;
        let v = report_json(&pages.report(wait).await?)?;
        ensure!(
            v["put_status"] == 200 && v["put_etag"].as_str().is_some_and(|e| e.len() > 2),
            "fetch PUT from an allowed origin (the ETag exposed): {v}"
        );
        ensure!(
            v["post_status"] == 201
                && v["post_text"]
                    .as_str()
                    .is_some_and(|t| t.contains("<Key>page/from page.txt</Key>")),
            "fetch POST form from an allowed origin: {v}"
        );
        let Report::Done(query) = pages.report(wait).await? else {
            bail!("expected the form's redirect to /done");
        };
        ensure!(
            query.contains(&format!("bucket={b}"))
                && query.contains("key=form%2Fform.txt")
                && query.contains("etag="),
            "form redirect query: {query}"
        );
    }
    ensure!(get_bytes(&c, &b, "fetched.txt").await? == b"put by a page");
    ensure!(get_bytes(&c, &b, "page/from page.txt").await? == b"posted by a page");
    let head = c
        .head_object()
        .bucket(&b)
        .key("page/from page.txt")
        .send()
        .await?;
    ensure!(
        head.metadata()
            .and_then(|m| m.get("from"))
            .map(String::as_str)
            == Some("fetch"),
        "form metadata: {head:?}"
    );
    ensure!(get_bytes(&c, &b, "form/form.txt").await? == b"a form upload");
    let head = c
        .head_object()
        .bucket(&b)
        .key("form/form.txt")
        .send()
        .await?;
    ensure!(
        head.content_type() == Some("text/plain"),
        "form Content-Type: {head:?}"
    );

    {
        let _browser = run_chromium(&format!("{other}/evil.html"))?;
        let v = report_json(&pages.report(wait).await?)?;
        ensure!(
            v["put_error"]
                .as_str()
                .is_some_and(|e| e.contains("Failed to fetch"))
                && v.get("put_status").is_none(),
            "fetch PUT from an origin the rules do not name: {v}"
        );
    }
    let gone = c.head_object().bucket(&b).key("refused.txt").send().await;
    ensure!(gone.is_err(), "the refused upload was stored");
    let log = s.log();
    ensure!(
        !log.contains("ERROR"),
        "the browser's requests logged errors:\n{log}"
    );
    Ok(())
}
