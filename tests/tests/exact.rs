//! Exact answers (issue 19): the headers, codes and bodies AWS documents
//! for tag counts, delete markers and versions, non-ASCII metadata,
//! request ids in error bodies, lifecycle and object lock validation,
//! chunked PUTs without a length, and re-creating a bucket.

use anyhow::{Context, Result, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_tests::boto::boto3;
use cairn_tests::data::random_bytes;
use cairn_tests::raw::{self, Response, xml_tag};
use cairn_tests::{
    Server, bucket_name, expect_err, get_bytes, multipart, new_bucket, new_versioned_bucket,
};
use tokio::io::{AsyncWriteExt, BufReader};

/// Fails unless `r` has this status and (when given) this error code.
fn expect(what: &str, r: &Response, status: u16, code: Option<&str>) -> Result<()> {
    ensure!(
        r.status == status && (code.is_none() || r.code().as_deref() == code),
        "{what}: wanted {status} {}, got {}",
        code.unwrap_or(""),
        r.describe()
    );
    Ok(())
}

fn header_is(r: &Response, name: &str, want: Option<&str>, what: &str) -> Result<()> {
    ensure!(
        r.header(name) == want,
        "{what}: {name} is {:?}, wanted {want:?}",
        r.header(name)
    );
    Ok(())
}

/// GET and HEAD of a tagged object carry `x-amz-tagging-count`; an
/// untagged one none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_count_on_get_and_head() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "tagcount").await?;
    c.put_object()
        .bucket(&b)
        .key("t")
        .tagging("a=1&b=2&c=3")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    c.put_object()
        .bucket(&b)
        .key("u")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let g = c.get_object().bucket(&b).key("t").send().await?;
    ensure!(
        g.tag_count() == Some(3),
        "SDK GET tag count {:?}",
        g.tag_count()
    );
    let raw = s.raw();
    for method in ["GET", "HEAD"] {
        let r = raw.send(method, &format!("/{b}/t"), &[], b"").await?;
        expect(method, &r, 200, None)?;
        header_is(&r, "x-amz-tagging-count", Some("3"), method)?;
        let r = raw.send(method, &format!("/{b}/u"), &[], b"").await?;
        header_is(&r, "x-amz-tagging-count", None, method)?;
    }
    // boto3 sees it on HEAD too (the header; HeadObject's model has no field)
    let out = boto3(
        &s,
        "print(c.head_object(Bucket=sys.argv[1], Key='t')['ResponseMetadata']['HTTPHeaders'].get('x-amz-tagging-count'))",
        &[&b],
    )?;
    ensure!(out.trim() == "3", "boto3 HEAD: {out}");
    Ok(())
}

/// `x-amz-version-id` and `x-amz-delete-marker` where AWS sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_delete_marker_headers() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let raw = s.raw();
    let plain = new_bucket(&c, "plain").await?;
    let r = raw.send("PUT", &format!("/{plain}/k"), &[], b"x").await?;
    expect("unversioned PUT", &r, 200, None)?;
    header_is(&r, "x-amz-version-id", None, "unversioned PUT")?;

    let b = new_versioned_bucket(&c, "verhdr").await?;
    let r = raw.send("PUT", &format!("/{b}/k"), &[], b"one").await?;
    expect("PUT", &r, 200, None)?;
    let v1 = r
        .header("x-amz-version-id")
        .context("PUT version id")?
        .to_owned();
    let cp = c
        .copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/k"))
        .send()
        .await?;
    ensure!(
        cp.version_id().is_some_and(|v| v != v1),
        "CopyObject version id {:?}",
        cp.version_id()
    );
    let done = multipart::put(&c, &b, "mp", &[b"part"]).await?;
    ensure!(done.version_id().is_some(), "Complete has a version id");

    // a delete without a version makes a marker
    let r = raw.send("DELETE", &format!("/{b}/k"), &[], b"").await?;
    expect("DELETE", &r, 204, None)?;
    header_is(&r, "x-amz-delete-marker", Some("true"), "DELETE")?;
    let marker = r
        .header("x-amz-version-id")
        .context("marker id")?
        .to_owned();
    ensure!(marker != v1);
    // the current version is a marker: 404 NoSuchKey with the headers
    let r = raw.send("GET", &format!("/{b}/k"), &[], b"").await?;
    expect("GET of a deleted key", &r, 404, Some("NoSuchKey"))?;
    header_is(&r, "x-amz-delete-marker", Some("true"), "GET 404")?;
    header_is(&r, "x-amz-version-id", Some(&marker), "GET 404")?;
    let r = raw.send("HEAD", &format!("/{b}/k"), &[], b"").await?;
    expect("HEAD of a deleted key", &r, 404, None)?;
    header_is(&r, "x-amz-delete-marker", Some("true"), "HEAD 404")?;
    header_is(&r, "x-amz-version-id", Some(&marker), "HEAD 404")?;
    // the marker by id: 405 MethodNotAllowed with the headers
    let by_id = format!("/{b}/k?versionId={}", raw::encode_query(&marker));
    let r = raw.send("GET", &by_id, &[], b"").await?;
    expect("GET of the marker", &r, 405, Some("MethodNotAllowed"))?;
    header_is(&r, "x-amz-delete-marker", Some("true"), "GET 405")?;
    header_is(&r, "x-amz-version-id", Some(&marker), "GET 405")?;
    // with the marker's Last-Modified, as ListObjectVersions shows it
    let listed = c
        .list_object_versions()
        .bucket(&b)
        .prefix("k")
        .send()
        .await?;
    let when = listed
        .delete_markers()
        .iter()
        .find(|m| m.version_id() == Some(marker.as_str()))
        .and_then(|m| m.last_modified())
        .context("the marker's LastModified in ListObjectVersions")?
        .secs();
    let sent = |r: &Response| {
        r.header("last-modified").and_then(|d| {
            aws_smithy_types::DateTime::from_str(d, aws_smithy_types::date_time::Format::HttpDate)
                .ok()
        })
    };
    ensure!(
        sent(&r).map(|d| d.secs()) == Some(when),
        "GET 405 Last-Modified {:?}, marker made at {when}",
        r.header("last-modified")
    );
    let r = raw.send("HEAD", &by_id, &[], b"").await?;
    expect("HEAD of the marker", &r, 405, None)?;
    ensure!(
        sent(&r).map(|d| d.secs()) == Some(when),
        "HEAD 405 Last-Modified"
    );
    header_is(&r, "x-amz-delete-marker", Some("true"), "HEAD 405")?;
    // the SDK sees the same
    expect_err(
        "SDK HEAD of the marker",
        c.head_object()
            .bucket(&b)
            .key("k")
            .version_id(&marker)
            .send()
            .await,
        405,
        None,
    )?;
    // deleting a version by id names it; only a marker's says so
    let r = raw
        .send(
            "DELETE",
            &format!("/{b}/k?versionId={}", raw::encode_query(&v1)),
            &[],
            b"",
        )
        .await?;
    expect("DELETE of a version", &r, 204, None)?;
    header_is(&r, "x-amz-version-id", Some(&v1), "DELETE of a version")?;
    header_is(&r, "x-amz-delete-marker", None, "DELETE of a version")?;
    let r = raw.send("DELETE", &by_id, &[], b"").await?;
    expect("DELETE of the marker", &r, 204, None)?;
    header_is(
        &r,
        "x-amz-version-id",
        Some(&marker),
        "DELETE of the marker",
    )?;
    header_is(
        &r,
        "x-amz-delete-marker",
        Some("true"),
        "DELETE of the marker",
    )?;

    // DeleteObjects says the same per key: a new marker, a marker removed
    // by id (DeleteMarkerVersionId names it), a version removed by id
    let d = c.delete_object().bucket(&b).key("copy").send().await?;
    let copy_marker = d.version_id().context("copy's marker")?.to_owned();
    let mp_version = done.version_id().context("mp version")?.to_owned();
    let id = |k: &str, v: Option<&str>| {
        aws_sdk_s3::types::ObjectIdentifier::builder()
            .key(k)
            .set_version_id(v.map(str::to_owned))
            .build()
    };
    let r = c
        .delete_objects()
        .bucket(&b)
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .objects(id("fresh", None)?)
                .objects(id("copy", Some(&copy_marker))?)
                .objects(id("mp", Some(&mp_version))?)
                .build()?,
        )
        .send()
        .await?;
    ensure!(r.errors().is_empty(), "{:?}", r.errors());
    let got = |k: &str| r.deleted().iter().find(|d| d.key() == Some(k)).cloned();
    let fresh = got("fresh").context("fresh")?;
    ensure!(
        fresh.delete_marker() == Some(true)
            && fresh.delete_marker_version_id().is_some()
            && fresh.version_id().is_none(),
        "new marker: {fresh:?}"
    );
    let removed = got("copy").context("copy")?;
    ensure!(
        removed.delete_marker() == Some(true)
            && removed.delete_marker_version_id() == Some(copy_marker.as_str())
            && removed.version_id() == Some(copy_marker.as_str()),
        "marker removed by id: {removed:?}"
    );
    let version = got("mp").context("mp")?;
    ensure!(
        version.delete_marker().is_none()
            && version.delete_marker_version_id().is_none()
            && version.version_id() == Some(mp_version.as_str()),
        "version removed by id: {version:?}"
    );
    Ok(())
}

/// Non-ASCII metadata: AWS decodes RFC 2047 encoded-words before storing
/// and encodes a value that is not printable ASCII as `=?UTF-8?B?...?=`
/// when returning it; raw UTF-8 (what aws-sdk-s3 sends) is kept as UTF-8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_metadata() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "meta").await?;
    let value = "café ☕ 日本";
    let encoded = format!("=?UTF-8?B?{}?=", B64.encode(value));
    c.put_object()
        .bucket(&b)
        .key("sdk")
        .metadata("note", value)
        .metadata("plain", "ascii only")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let h = c.head_object().bucket(&b).key("sdk").send().await?;
    let m = h.metadata().context("metadata")?;
    ensure!(
        m.get("note") == Some(&encoded) && m.get("plain").map(String::as_str) == Some("ascii only"),
        "HEAD metadata {m:?}"
    );
    let g = c.get_object().bucket(&b).key("sdk").send().await?;
    ensure!(g.metadata().and_then(|m| m.get("note")) == Some(&encoded));
    // a copy keeps the stored value; a replacing copy stores the new one
    c.copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/sdk"))
        .send()
        .await?;
    let h = c.head_object().bucket(&b).key("copy").send().await?;
    ensure!(h.metadata().and_then(|m| m.get("note")) == Some(&encoded));

    // boto3 refuses non-ASCII metadata itself; its users send encoded-words
    // (B or Q) and get the B form of the same text back
    let out = boto3(
        &s,
        r#"
import base64
b = sys.argv[1]
v = "café ☕ 日本"
enc = "=?UTF-8?B?" + base64.b64encode(v.encode()).decode() + "?="
c.put_object(Bucket=b, Key="py", Body=b"x", Metadata={"note": enc, "q": "=?UTF-8?Q?caf=C3=A9?="})
m = c.head_object(Bucket=b, Key="py")["Metadata"]
print(m["note"] == enc, m["q"] == "=?UTF-8?B?" + base64.b64encode("café".encode()).decode() + "?=")
try:
    c.put_object(Bucket=b, Key="py2", Body=b"x", Metadata={"note": v})
    print("sent")
except Exception as e:
    print(type(e).__name__)
"#,
        &[&b],
    )?;
    ensure!(out == "True True\nParamValidationError\n", "boto3: {out}");
    // the stored text is the decoded one: the SDK's object reads the same
    let h = c.head_object().bucket(&b).key("py").send().await?;
    ensure!(h.metadata().and_then(|m| m.get("note")) == Some(&encoded));

    // bytes that are not UTF-8 (a Latin-1 "café") cannot be signed
    // (signing libraries and the server's check take text): refused, not
    // stored (an x-amz-* header must be signed)
    let host = s.addr();
    let target = format!("/{b}/latin1");
    let mut headers = vec![("host".to_owned(), host.clone())];
    let signed = raw::sign_v4(
        &s.credentials(),
        &raw::SigV4 {
            exclude: &["x-amz-meta-l1"],
            ..raw::SigV4::HEADER
        },
        "PUT",
        &host,
        &target,
        &headers,
        raw::Payload::Signed(b"x"),
    )?;
    headers.extend(signed.headers);
    let mut req = format!("PUT {target} HTTP/1.1\r\n").into_bytes();
    for (k, v) in &headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(
        b"x-amz-meta-l1: caf\xe9\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx",
    );
    let mut sock = tokio::net::TcpStream::connect(&host).await?;
    sock.write_all(&req).await?;
    let r = raw::read_response(&mut BufReader::new(sock), false).await?;
    expect("PUT with Latin-1 metadata", &r, 403, Some("AccessDenied"))?;
    ensure!(
        r.text()
            .contains("<HeadersNotSigned>x-amz-meta-l1</HeadersNotSigned>"),
        "{}",
        r.describe()
    );
    expect_err(
        "the refused object",
        c.head_object().bucket(&b).key("latin1").send().await,
        404,
        None,
    )?;
    Ok(())
}

/// Every error body's `<RequestId>` is the `x-amz-request-id` header and
/// its `<HostId>` the `x-amz-id-2` header, whoever answered the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_name_the_request_id() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "reqid").await?;
    let raw = s.raw();
    let bad_sig = raw::Client::new(
        s.addr(),
        Some(raw::Creds {
            access_key: s.access_key().to_owned(),
            secret_key: "wrong-secret".into(),
        }),
    );
    let cases = [
        (
            raw.send("GET", &format!("/{b}/missing"), &[], b"").await?,
            404,
            "NoSuchKey",
        ),
        (
            raw.send("GET", "/no-such-bucket-here/k", &[], b"").await?,
            404,
            "NoSuchBucket",
        ),
        (
            raw.send("PUT", &format!("/{b}?tagging"), &[], b"<Tagging><oops")
                .await?,
            400,
            "MalformedXML",
        ),
        (
            bad_sig.send("GET", &format!("/{b}/k"), &[], b"").await?,
            403,
            "SignatureDoesNotMatch",
        ),
    ];
    let mut ids = Vec::new();
    for (r, status, code) in &cases {
        expect(code, r, *status, Some(code))?;
        let id = r.header("x-amz-request-id").context("request id header")?;
        let host = r.header("x-amz-id-2").context("x-amz-id-2 header")?;
        let text = r.text();
        ensure!(
            xml_tag(&text, "RequestId").as_deref() == Some(id),
            "{code}: body RequestId differs from {id}: {text}"
        );
        ensure!(
            xml_tag(&text, "HostId").as_deref() == Some(host),
            "{code}: body HostId differs from {host}: {text}"
        );
        ensure!(text.trim_end().ends_with("</Error>"), "{code}: body {text}");
        ids.push(id.to_owned());
    }
    ids.sort();
    ids.dedup();
    ensure!(ids.len() == cases.len(), "request ids repeat: {ids:?}");
    // a success names its request too
    let r = raw.send("HEAD", &format!("/{b}"), &[], b"").await?;
    ensure!(r.header("x-amz-request-id").is_some() && r.header("x-amz-id-2").is_some());
    // boto3's RequestId/HostId come from the body and the headers alike
    let out = boto3(
        &s,
        r#"
try:
    c.get_object(Bucket=sys.argv[1], Key="missing")
except ClientError as e:
    md = e.response["ResponseMetadata"]
    print(err(e), md["RequestId"] == md["HTTPHeaders"]["x-amz-request-id"], md["HostId"] == md["HTTPHeaders"]["x-amz-id-2"], len(md["RequestId"]) > 0)
"#,
        &[&b],
    )?;
    ensure!(out == "404 NoSuchKey True True True\n", "boto3: {out}");
    Ok(())
}

/// One lifecycle rule in a configuration body.
fn lifecycle(rules: &str) -> String {
    format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>")
}

fn rule(id: &str, status: &str, action: &str) -> String {
    format!(
        "<Rule><ID>{id}</ID><Filter><Prefix>p/</Prefix></Filter><Status>{status}</Status>{action}</Rule>"
    )
}

/// PutBucketLifecycleConfiguration refuses what AWS refuses, with its
/// codes, and keeps nothing of a refused configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_validation_codes() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "lcval").await?;
    let raw = s.raw();
    let days = |n: &str| format!("<Expiration><Days>{n}</Days></Expiration>");
    let long_id = "i".repeat(256);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "Status enabled",
            lifecycle(&rule("a", "enabled", &days("1"))),
            400,
            "MalformedXML",
        ),
        (
            "Status Invalid",
            lifecycle(&rule("a", "Invalid", &days("1"))),
            400,
            "MalformedXML",
        ),
        (
            "ID of 256",
            lifecycle(&rule(&long_id, "Enabled", &days("1"))),
            400,
            "InvalidArgument",
        ),
        (
            "same ID twice",
            lifecycle(&format!(
                "{}{}",
                rule("same", "Enabled", &days("1")),
                rule("same", "Enabled", &days("2"))
            )),
            400,
            "InvalidArgument",
        ),
        (
            "Days 0",
            lifecycle(&rule("a", "Enabled", &days("0"))),
            400,
            "InvalidArgument",
        ),
        (
            "Days -1",
            lifecycle(&rule("a", "Enabled", &days("-1"))),
            400,
            "InvalidArgument",
        ),
        (
            "Date not at midnight",
            lifecycle(&rule(
                "a",
                "Enabled",
                "<Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>",
            )),
            400,
            "InvalidArgument",
        ),
        (
            "NoncurrentDays 0",
            lifecycle(&rule(
                "a",
                "Enabled",
                "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>",
            )),
            400,
            "InvalidArgument",
        ),
        (
            "DaysAfterInitiation 0",
            lifecycle(&rule(
                "a",
                "Enabled",
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
            )),
            400,
            "InvalidArgument",
        ),
        (
            "transition to an unknown class",
            lifecycle(&rule(
                "a",
                "Enabled",
                "<Transition><Days>30</Days><StorageClass>FAST_AND_CHEAP</StorageClass></Transition>",
            )),
            400,
            "MalformedXML",
        ),
        (
            "noncurrent transition to an unknown class",
            lifecycle(&rule(
                "a",
                "Enabled",
                "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays><StorageClass>NOPE</StorageClass></NoncurrentVersionTransition>",
            )),
            400,
            "MalformedXML",
        ),
        (
            "a rule without an action",
            lifecycle(&rule("a", "Enabled", "")),
            400,
            "InvalidRequest",
        ),
    ];
    for (what, body, status, code) in &cases {
        let r = raw
            .send("PUT", &format!("/{b}?lifecycle"), &[], body.as_bytes())
            .await?;
        expect(what, &r, *status, Some(code))?;
        let g = raw
            .send("GET", &format!("/{b}?lifecycle"), &[], b"")
            .await?;
        expect(
            &format!("{what}: nothing kept"),
            &g,
            404,
            Some("NoSuchLifecycleConfiguration"),
        )?;
    }
    // the limits themselves are accepted
    let ok = lifecycle(&format!(
        "{}{}",
        rule(&"i".repeat(255), "Disabled", &days("1")),
        rule(
            "midnight",
            "Enabled",
            "<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>"
        )
    ));
    let r = raw
        .send("PUT", &format!("/{b}?lifecycle"), &[], ok.as_bytes())
        .await?;
    expect("valid configuration", &r, 200, None)?;
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket(&b)
        .send()
        .await?;
    ensure!(got.rules().len() == 2, "{:?}", got.rules());
    Ok(())
}

fn lock_config(rule: &str) -> String {
    format!(
        "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>{rule}</ObjectLockConfiguration>"
    )
}

fn default_retention(inner: &str) -> String {
    lock_config(&format!(
        "<Rule><DefaultRetention>{inner}</DefaultRetention></Rule>"
    ))
}

/// Object lock configuration, retention and legal hold are refused with
/// AWS's codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lock_validation_codes() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("lockval");
    c.create_bucket()
        .bucket(&b)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await?;
    let plain = new_bucket(&c, "nolock").await?;
    let raw = s.raw();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "Days 0",
            default_retention("<Mode>GOVERNANCE</Mode><Days>0</Days>"),
            400,
            "InvalidRetentionPeriod",
        ),
        (
            "Years -1",
            default_retention("<Mode>GOVERNANCE</Mode><Years>-1</Years>"),
            400,
            "InvalidRetentionPeriod",
        ),
        (
            "Days and Years",
            default_retention("<Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years>"),
            400,
            "MalformedXML",
        ),
        (
            "neither Days nor Years",
            default_retention("<Mode>GOVERNANCE</Mode>"),
            400,
            "MalformedXML",
        ),
        (
            "Mode abc",
            default_retention("<Mode>abc</Mode><Days>1</Days>"),
            400,
            "MalformedXML",
        ),
        (
            "Mode governance",
            default_retention("<Mode>governance</Mode><Days>1</Days>"),
            400,
            "MalformedXML",
        ),
        (
            "ObjectLockEnabled Disabled",
            "<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>".into(),
            400,
            "MalformedXML",
        ),
    ];
    for (what, body, status, code) in &cases {
        let r = raw
            .send("PUT", &format!("/{b}?object-lock"), &[], body.as_bytes())
            .await?;
        expect(what, &r, *status, Some(code))?;
    }
    let g = c.get_object_lock_configuration().bucket(&b).send().await?;
    ensure!(
        g.object_lock_configuration()
            .and_then(|c| c.rule())
            .is_none(),
        "no refused rule was kept: {g:?}"
    );
    let ok = default_retention("<Mode>GOVERNANCE</Mode><Days>1</Days>");
    let r = raw
        .send("PUT", &format!("/{plain}?object-lock"), &[], ok.as_bytes())
        .await?;
    expect(
        "lock config on a bucket without lock",
        &r,
        409,
        Some("InvalidBucketState"),
    )?;
    let r = raw
        .send("PUT", &format!("/{b}?object-lock"), &[], ok.as_bytes())
        .await?;
    expect("a valid config", &r, 200, None)?;

    // retention of one version
    c.put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let retention = |mode: &str, date: &str| {
        format!(
            "<Retention><Mode>{mode}</Mode><RetainUntilDate>{date}</RetainUntilDate></Retention>"
        )
    };
    let r = raw
        .send(
            "PUT",
            &format!("/{b}/k?retention"),
            &[],
            retention("GOVERNANCE", "2001-01-01T00:00:00Z").as_bytes(),
        )
        .await?;
    expect("retention in the past", &r, 400, Some("InvalidArgument"))?;
    let r = raw
        .send(
            "PUT",
            &format!("/{b}/k?retention"),
            &[],
            retention("governance", "2099-01-01T00:00:00Z").as_bytes(),
        )
        .await?;
    expect("retention mode governance", &r, 400, Some("MalformedXML"))?;
    let r = raw
        .send(
            "PUT",
            &format!("/{b}/k?legal-hold"),
            &[],
            b"<LegalHold><Status>abc</Status></LegalHold>",
        )
        .await?;
    expect("legal hold abc", &r, 400, Some("MalformedXML"))?;
    c.put_object()
        .bucket(&plain)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let r = raw
        .send(
            "PUT",
            &format!("/{plain}/k?retention"),
            &[],
            retention("GOVERNANCE", "2099-01-01T00:00:00Z").as_bytes(),
        )
        .await?;
    expect("retention without lock", &r, 400, Some("InvalidRequest"))?;
    // a PUT with a retention date in the past is refused the same way
    let r = raw
        .send(
            "PUT",
            &format!("/{b}/past"),
            &[
                ("x-amz-object-lock-mode", "GOVERNANCE"),
                (
                    "x-amz-object-lock-retain-until-date",
                    "2001-01-01T00:00:00Z",
                ),
            ],
            b"x",
        )
        .await?;
    expect(
        "PUT with a past retention",
        &r,
        400,
        Some("InvalidArgument"),
    )?;
    Ok(())
}

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM")
}

/// Sends a PUT whose body goes `Transfer-Encoding: chunked` with no
/// Content-Length, in chunks of `chunk` bytes.
async fn chunked_put(
    s: &Server,
    target: &str,
    payload: raw::Payload<'_>,
    data: &[u8],
    chunk: usize,
) -> Result<Response> {
    let creds = s.credentials();
    let host = s.addr();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.clone()),
        ("transfer-encoding".into(), "chunked".into()),
    ];
    raw::sign_headers(&creds, "PUT", &host, target, &mut headers, payload)?;
    let mut head = format!("PUT {target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let mut sock = tokio::net::TcpStream::connect(&host).await?;
    sock.write_all(head.as_bytes()).await?;
    for part in data.chunks(chunk) {
        sock.write_all(format!("{:x}\r\n", part.len()).as_bytes())
            .await?;
        sock.write_all(part).await?;
        sock.write_all(b"\r\n").await?;
    }
    sock.write_all(b"0\r\n\r\n").await?;
    sock.flush().await?;
    raw::read_response(&mut BufReader::new(sock), false).await
}

/// A PUT with `Transfer-Encoding: chunked` and no Content-Length is
/// stored exactly, signed (the hash checked at the end) or unsigned, and
/// streamed (the server does not hold the body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_put_without_content_length() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "chunked").await?;
    let small = random_bytes(1_000_003, 7);
    let r = chunked_put(
        &s,
        &format!("/{b}/unsigned"),
        raw::Payload::Unsigned,
        &small,
        65_536,
    )
    .await?;
    expect("unsigned chunked PUT", &r, 200, None)?;
    ensure!(
        get_bytes(&c, &b, "unsigned").await? == small,
        "unsigned body differs"
    );
    let r = chunked_put(
        &s,
        &format!("/{b}/signed"),
        raw::Payload::Signed(&small),
        &small,
        10_000,
    )
    .await?;
    expect("signed chunked PUT", &r, 200, None)?;
    ensure!(
        get_bytes(&c, &b, "signed").await? == small,
        "signed body differs"
    );
    let h = c.head_object().bucket(&b).key("signed").send().await?;
    ensure!(h.content_length() == Some(small.len() as i64));
    // a wrong hash is found at the end: nothing stored
    let r = chunked_put(
        &s,
        &format!("/{b}/wrong"),
        raw::Payload::Signed(b"other"),
        &small,
        65_536,
    )
    .await?;
    expect("wrong hash", &r, 400, Some("XAmzContentSHA256Mismatch"))?;
    expect_err(
        "the refused object",
        c.head_object().bucket(&b).key("wrong").send().await,
        404,
        None,
    )?;
    // an empty chunked body is an empty object
    let r = chunked_put(&s, &format!("/{b}/empty"), raw::Payload::Unsigned, b"", 1).await?;
    expect("empty chunked PUT", &r, 200, None)?;
    ensure!(get_bytes(&c, &b, "empty").await?.is_empty());

    // 128 MiB in: the server's peak memory grows by far less
    let pid = s.pid().context("server pid")?;
    let before = peak_rss_kib(pid)?;
    let big = random_bytes(128 << 20, 9);
    let r = chunked_put(
        &s,
        &format!("/{b}/big"),
        raw::Payload::Unsigned,
        &big,
        1 << 20,
    )
    .await?;
    expect("128 MiB chunked PUT", &r, 200, None)?;
    let after = peak_rss_kib(pid)?;
    eprintln!("peak RSS {before} KiB before, {after} KiB after a 128 MiB chunked PUT");
    ensure!(
        after.saturating_sub(before) < 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB for a 128 MiB body"
    );
    ensure!(get_bytes(&c, &b, "big").await? == big, "big body differs");
    Ok(())
}

/// Re-creating a bucket: in us-east-1 its owner gets 200 (AWS's legacy
/// answer), elsewhere 409 BucketAlreadyOwnedByYou; a caller who may not
/// use the bucket gets 409 BucketAlreadyExists everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_already_exists_or_owned() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "exists").await?;
    c.put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from_static(b"kept"))
        .send()
        .await?;
    // us-east-1: 200, and nothing in it changes
    c.create_bucket().bucket(&b).send().await?;
    ensure!(get_bytes(&c, &b, "k").await? == b"kept");
    let r = s.raw().send("PUT", &format!("/{b}"), &[], b"").await?;
    expect("raw re-create", &r, 200, None)?;
    // an IAM user that may create buckets and use only its own: another's
    // name is taken
    let own = bucket_name("mine");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::{own}","arn:aws:s3:::{own}/*"]}},{{"Effect":"Allow","Action":"s3:CreateBucket","Resource":"*"}}]}}"#
    );
    let u = s.iam_user("alice", Some(&policy))?;
    u.create_bucket().bucket(&own).send().await?;
    expect_err(
        "another's bucket",
        u.create_bucket().bucket(&b).send().await,
        409,
        Some("BucketAlreadyExists"),
    )?;
    ensure!(get_bytes(&c, &b, "k").await? == b"kept");
    // its own again: 200 as for the root
    u.create_bucket().bucket(&own).send().await?;
    // boto3 sees the same codes
    let out = boto3(
        &s,
        r#"
for b in sys.argv[1:]:
    try:
        c.create_bucket(Bucket=b)
        print("ok")
    except ClientError as e:
        print(err(e))
"#,
        &[&b],
    )?;
    ensure!(out == "ok\n", "boto3: {out}");

    // another region: BucketAlreadyOwnedByYou for the owner
    let mut s = s;
    s.restart_with_args(vec!["--region".into(), "eu-west-1".into()])
        .await?;
    let eu = Client::from_conf(
        s.s3_config()
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .build(),
    );
    expect_err(
        "re-create in eu-west-1",
        eu.create_bucket()
            .bucket(&b)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await,
        409,
        Some("BucketAlreadyOwnedByYou"),
    )?;
    Ok(())
}
