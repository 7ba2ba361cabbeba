//! Request signatures the server must refuse although the signature itself
//! is right (issue 15): stale SigV2 requests, long-lived presigned URLs,
//! SigV4 scopes for another region, and headers added after signing.
//!
//! SigV2 signatures are made here (HMAC-SHA1 over AWS's V2 string to sign);
//! SigV4 ones with aws-sigv4, so region, lifetime and signed headers can be
//! chosen freely (the SDK's presigner caps them itself).

use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_tests::cmd::run_stdout;
use cairn_tests::raw::{self, encode_query, xml_tag};
use cairn_tests::{REGION, Server, bucket_name, expect_err, get_bytes, require_tool, run};
use hmac::{Hmac, Mac};
use time::OffsetDateTime;

const HOUR: i64 = 3600;
const DAY: u64 = 24 * 3600;

async fn bucket_with(c: &Client, prefix: &str, objects: &[(&str, &[u8])]) -> Result<String> {
    let b = bucket_name(prefix);
    c.create_bucket().bucket(&b).send().await?;
    for (k, v) in objects {
        c.put_object()
            .bucket(&b)
            .key(*k)
            .body(ByteStream::from(v.to_vec()))
            .send()
            .await?;
    }
    Ok(b)
}

async fn exists(c: &Client, b: &str, k: &str) -> Result<bool> {
    match c.head_object().bucket(b).key(k).send().await {
        Ok(_) => Ok(true),
        Err(e) if cairn_tests::err_status(&e) == Some(404) => Ok(false),
        Err(e) => Err(anyhow!("HEAD {b}/{k}: {e:?}")),
    }
}

fn expect(what: &str, r: &raw::Response, status: u16, code: &str) -> Result<()> {
    ensure!(
        r.status == status && r.code().as_deref() == Some(code),
        "{what}: got {}, expected HTTP {status} {code}",
        r.describe()
    );
    Ok(())
}

fn expect_ok(what: &str, r: &raw::Response) -> Result<()> {
    ensure!(r.status == 200, "{what}: {}", r.describe());
    Ok(())
}

// --- SigV2 ---

/// base64(HMAC-SHA1(secret, string_to_sign)): a SigV2 signature.
fn v2_signature(secret: &str, string_to_sign: &str) -> Result<String> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .map_err(|e| anyhow!("hmac key: {e}"))?;
    mac.update(string_to_sign.as_bytes());
    Ok(B64.encode(mac.finalize().into_bytes()))
}

/// RFC 1123 date as HTTP clients send it (`Sun, 06 Dec 2026 12:00:00 GMT`).
fn http_date(t: OffsetDateTime) -> Result<String> {
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    Ok(t.format(&f)?)
}

/// A SigV2 header-signed request: `Authorization: AWS key:sig` over
/// method, Content-MD5, Content-Type, Date and every `x-amz-*` header
/// (`headers` must give names in lowercase), then the path.
struct V2Request<'a> {
    method: &'a str,
    path: &'a str,
    headers: Vec<(&'a str, String)>,
}

impl V2Request<'_> {
    fn string_to_sign(&self) -> String {
        let get = |n: &str| {
            self.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        let has_amz_date = self.headers.iter().any(|(k, _)| *k == "x-amz-date");
        let date = if has_amz_date { "" } else { get("date") };
        let mut amz: Vec<(&str, &str)> = self
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("x-amz-"))
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        amz.sort_unstable();
        let mut s = format!(
            "{}\n{}\n{}\n{date}\n",
            self.method,
            get("content-md5"),
            get("content-type")
        );
        for (k, v) in amz {
            s.push_str(&format!("{k}:{v}\n"));
        }
        s.push_str(self.path);
        s
    }

    /// Sends it signed by `s`'s root user, plus `unsigned` headers added
    /// after signing.
    async fn send(
        &self,
        s: &Server,
        unsigned: &[(&str, &str)],
        body: &[u8],
    ) -> Result<raw::Response> {
        let sig = v2_signature(s.secret_key(), &self.string_to_sign())?;
        let auth = format!("AWS {}:{sig}", s.access_key());
        let mut hs: Vec<(&str, &str)> =
            self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        hs.push(("authorization", &auth));
        hs.extend_from_slice(unsigned);
        raw::Client::new(s.addr(), None)
            .send(self.method, self.path, &hs, body)
            .await
    }
}

fn v2_dated<'a>(method: &'a str, path: &'a str, offset: i64) -> Result<V2Request<'a>> {
    let t = OffsetDateTime::now_utc() + time::Duration::seconds(offset);
    Ok(V2Request {
        method,
        path,
        headers: vec![("date", http_date(t)?)],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv2_requests_must_be_dated_now() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_with(&c, "v2", &[("obj", b"v2 object")]).await?;
    let obj = format!("/{b}/obj");

    // Dated now: accepted (GET, and PUT with x-amz-date in s3cmd's format).
    let r = v2_dated("GET", &obj, 0)?.send(&s, &[], b"").await?;
    expect_ok("V2 GET dated now", &r)?;
    ensure!(r.body == b"v2 object", "V2 GET body: {}", r.text());
    let fresh = format!("/{b}/fresh");
    let put = V2Request {
        method: "PUT",
        path: &fresh,
        headers: vec![(
            "x-amz-date",
            OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc2822)?,
        )],
    };
    expect_ok(
        "V2 PUT with x-amz-date now",
        &put.send(&s, &[], b"new").await?,
    )?;
    ensure!(get_bytes(&c, &b, "fresh").await? == b"new", "V2 PUT stored");

    // An hour off either way, a year back: refused, and nothing changes.
    for offset in [-HOUR, HOUR, -365 * 24 * HOUR] {
        let r = v2_dated("GET", &obj, offset)?.send(&s, &[], b"").await?;
        expect(
            &format!("V2 GET dated {offset} s off"),
            &r,
            403,
            "RequestTimeTooSkewed",
        )?;
        ensure!(
            xml_tag(&r.text(), "MaxAllowedSkewMilliseconds").as_deref() == Some("900000"),
            "skew error names the allowed skew: {}",
            r.text()
        );
    }
    let stale = format!("/{b}/stale");
    let r = v2_dated("PUT", &stale, -HOUR)?.send(&s, &[], b"x").await?;
    expect("V2 PUT dated an hour ago", &r, 403, "RequestTimeTooSkewed")?;
    ensure!(!exists(&c, &b, "stale").await?, "stale V2 PUT stored");
    let r = v2_dated("DELETE", &obj, -HOUR)?.send(&s, &[], b"").await?;
    expect(
        "V2 DELETE dated an hour ago",
        &r,
        403,
        "RequestTimeTooSkewed",
    )?;
    ensure!(exists(&c, &b, "obj").await?, "stale V2 DELETE deleted");
    // x-amz-date is the signed time when present: a stale one is refused
    // even beside a current Date.
    let mut both = v2_dated("DELETE", &obj, 0)?;
    both.headers.push((
        "x-amz-date",
        http_date(OffsetDateTime::now_utc() - time::Duration::days(30))?,
    ));
    let r = both.send(&s, &[], b"").await?;
    expect(
        "V2 DELETE with a stale x-amz-date",
        &r,
        403,
        "RequestTimeTooSkewed",
    )?;
    // No date at all.
    let undated = V2Request {
        method: "GET",
        path: &obj,
        headers: Vec::new(),
    };
    expect(
        "V2 GET without a date",
        &undated.send(&s, &[], b"").await?,
        403,
        "AccessDenied",
    )?;

    // x-amz-* headers are inside the V2 string to sign: one added after
    // signing breaks the signature.
    let r = v2_dated("PUT", &stale, 0)?
        .send(&s, &[("x-amz-meta-added", "1")], b"x")
        .await?;
    expect(
        "V2 PUT with an added x-amz-meta header",
        &r,
        403,
        "SignatureDoesNotMatch",
    )?;
    ensure!(!exists(&c, &b, "stale").await?, "tampered V2 PUT stored");

    // A sub-resource the V2 string to sign leaves out: a V2 PUT could be
    // replayed as PutObjectRetention / PutObjectLegalHold.
    let retention = format!("/{b}/obj?retention");
    let r = v2_dated("PUT", &retention, 0)?
        .send(&s, &[], b"<Retention><Mode>COMPLIANCE</Mode></Retention>")
        .await?;
    expect("V2 PUT ?retention", &r, 400, "InvalidRequest")?;
    let r = v2_dated("GET", &format!("/{b}/obj?tagging"), 0)?
        .send(&s, &[], b"")
        .await?;
    expect_ok("V2 GET ?tagging (a signed sub-resource)", &r)?;

    // The admin API (a custom route behind s3s) follows the same rule.
    let info = "/_cairn/admin/v1/info";
    expect_ok(
        "V2 admin info dated now",
        &v2_dated("GET", info, 0)?.send(&s, &[], b"").await?,
    )?;
    let r = v2_dated("GET", info, -HOUR)?.send(&s, &[], b"").await?;
    expect(
        "V2 admin info dated an hour ago",
        &r,
        403,
        "RequestTimeTooSkewed",
    )?;
    Ok(())
}

/// A V2 presigned URL path+query for GET `path` expiring at `expires`.
fn v2_presigned(s: &Server, method: &str, path: &str, expires: i64) -> Result<String> {
    let sig = v2_signature(s.secret_key(), &format!("{method}\n\n\n{expires}\n{path}"))?;
    Ok(format!(
        "{path}?AWSAccessKeyId={}&Expires={expires}&Signature={}",
        encode_query(s.access_key()),
        encode_query(&sig)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv2_presigned_urls_live_at_most_a_week() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_with(&c, "v2pre", &[("obj", b"presigned v2")]).await?;
    let obj = format!("/{b}/obj");
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let get = |expires: i64| {
        let target = v2_presigned(&s, "GET", &obj, expires);
        let client = raw::Client::new(s.addr(), None);
        async move { client.send("GET", &target?, &[], b"").await }
    };

    let r = get(now + 600).await?;
    expect_ok("V2 presigned GET for 10 minutes", &r)?;
    ensure!(r.body == b"presigned v2", "presigned V2 body");
    expect_ok(
        "V2 presigned GET for 7 days",
        &get(now + 7 * DAY as i64 - 60).await?,
    )?;

    let r = get(now + 31 * 365 * 24 * HOUR).await?;
    expect(
        "V2 presigned GET for 31 years",
        &r,
        400,
        "AuthorizationQueryParametersError",
    )?;
    let r = get(now + 8 * DAY as i64).await?;
    expect(
        "V2 presigned GET for 8 days",
        &r,
        400,
        "AuthorizationQueryParametersError",
    )?;
    let r = get(now - 60).await?;
    expect("expired V2 presigned GET", &r, 403, "AccessDenied")?;
    ensure!(
        xml_tag(&r.text(), "Message").as_deref() == Some("Request has expired"),
        "expired message: {}",
        r.text()
    );

    // A long-lived V2 URL cannot delete either.
    let del = v2_presigned(&s, "DELETE", &obj, now + 31 * 365 * 24 * HOUR)?;
    let r = raw::Client::new(s.addr(), None)
        .send("DELETE", &del, &[], b"")
        .await?;
    expect(
        "V2 presigned DELETE for 31 years",
        &r,
        400,
        "AuthorizationQueryParametersError",
    )?;
    ensure!(exists(&c, &b, "obj").await?, "long-lived V2 DELETE deleted");
    Ok(())
}

// --- SigV4 ---

/// How a SigV4 test request is signed.
struct V4 {
    region: &'static str,
    /// Presigned for this long; `None`: header auth.
    presign: Option<Duration>,
    /// Headers left out of SignedHeaders (e.g. `host`).
    exclude: &'static [&'static str],
}

impl V4 {
    const PRESIGN_HOUR: V4 = V4 {
        region: REGION,
        presign: Some(Duration::from_secs(3600)),
        exclude: &[],
    };

    /// Signs `method http://<addr><path>` with `signed` headers as root.
    /// Returns the target (path and query) and the headers to send.
    fn sign(
        &self,
        s: &Server,
        method: &str,
        path: &str,
        signed: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(String, Vec<(String, String)>)> {
        let mut headers: Vec<(String, String)> = signed
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.push(("host".into(), s.addr()));
        let how = raw::SigV4 {
            region: self.region,
            presign: self.presign,
            exclude: self.exclude,
        };
        let payload = match self.presign {
            Some(_) => raw::Payload::Unsigned,
            None => raw::Payload::Signed(body),
        };
        let added = raw::sign_v4(
            &s.credentials(),
            &how,
            method,
            &s.addr(),
            path,
            &headers,
            payload,
        )?;
        // the raw client sends `host` itself
        headers.retain(|(k, _)| k != "host");
        headers.extend(added.headers);
        Ok((added.target, headers))
    }

    /// Signs and sends, adding `unsigned` headers after signing.
    async fn send(
        &self,
        s: &Server,
        method: &str,
        path: &str,
        signed: &[(&str, &str)],
        unsigned: &[(&str, &str)],
        body: &[u8],
    ) -> Result<raw::Response> {
        let (target, headers) = self.sign(s, method, path, signed, body)?;
        let mut hs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        hs.extend_from_slice(unsigned);
        raw::Client::new(s.addr(), None)
            .send(method, &target, &hs, body)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_added_after_signing_are_refused() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let other = bucket_with(&c, "other", &[("obj", b"another bucket's object")]).await?;
    let b = bucket_with(&c, "upload", &[]).await?;
    let target = format!("/{b}/target");
    let pre = V4::PRESIGN_HOUR;
    let copy_source = format!("/{other}/obj");

    // A presigned PUT turned into a copy by an unsigned x-amz-copy-source.
    let r = pre
        .send(
            &s,
            "PUT",
            &target,
            &[],
            &[("x-amz-copy-source", &copy_source)],
            b"",
        )
        .await?;
    expect(
        "presigned PUT + unsigned x-amz-copy-source",
        &r,
        403,
        "AccessDenied",
    )?;
    ensure!(
        xml_tag(&r.text(), "HeadersNotSigned").as_deref() == Some("x-amz-copy-source"),
        "HeadersNotSigned: {}",
        r.text()
    );
    ensure!(
        !exists(&c, &b, "target").await?,
        "the unsigned copy happened"
    );

    // Other request-changing headers, each unsigned.
    for h in [
        ("x-amz-tagging", "owner=attacker"),
        ("x-amz-meta-owner", "attacker"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-server-side-encryption", "AES256"),
    ] {
        let r = pre.send(&s, "PUT", &target, &[], &[h], b"body").await?;
        expect(
            &format!("presigned PUT + unsigned {}", h.0),
            &r,
            403,
            "AccessDenied",
        )?;
        ensure!(
            xml_tag(&r.text(), "HeadersNotSigned").as_deref() == Some(h.0),
            "HeadersNotSigned for {}: {}",
            h.0,
            r.text()
        );
    }
    ensure!(!exists(&c, &b, "target").await?, "a refused PUT stored");

    // The same header signed is obeyed; integrity headers and Content-Type
    // may come unsigned (a browser upload sets its own Content-Type).
    let crc = B64.encode(crc32fast::hash(b"body").to_be_bytes());
    let r = pre
        .send(
            &s,
            "PUT",
            &target,
            &[("x-amz-meta-owner", "signer")],
            &[
                ("content-type", "text/plain"),
                ("x-amz-checksum-crc32", &crc),
            ],
            b"body",
        )
        .await?;
    expect_ok("presigned PUT with a signed x-amz-meta header", &r)?;
    let head = c.head_object().bucket(&b).key("target").send().await?;
    ensure!(
        head.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str)
            == Some("signer"),
        "signed metadata: {:?}",
        head.metadata()
    );
    ensure!(head.content_type() == Some("text/plain"), "content type");
    // ... and an unsigned checksum that does not match the body is still checked.
    let r = pre
        .send(
            &s,
            "PUT",
            &target,
            &[],
            &[("x-amz-checksum-crc32", "AAAAAA==")],
            b"body",
        )
        .await?;
    expect(
        "presigned PUT with a wrong unsigned checksum",
        &r,
        400,
        "BadDigest",
    )?;

    // Header auth: the same rule.
    let hdr = V4 {
        region: REGION,
        presign: None,
        exclude: &[],
    };
    let copied = format!("/{b}/copied");
    let r = hdr
        .send(
            &s,
            "PUT",
            &copied,
            &[],
            &[("x-amz-copy-source", &copy_source)],
            b"",
        )
        .await?;
    expect(
        "signed PUT + unsigned x-amz-copy-source",
        &r,
        403,
        "AccessDenied",
    )?;
    ensure!(
        !exists(&c, &b, "copied").await?,
        "the unsigned copy happened"
    );
    let r = hdr
        .send(
            &s,
            "PUT",
            &copied,
            &[("x-amz-copy-source", &copy_source)],
            &[],
            b"",
        )
        .await?;
    expect_ok("signed copy", &r)?;
    ensure!(
        get_bytes(&c, &b, "copied").await? == b"another bucket's object",
        "signed copy content"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_lifetime_region_and_host_are_checked() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_with(&c, "v4", &[("obj", b"v4 object")]).await?;
    let obj = format!("/{b}/obj");
    let presign = |secs: u64| V4 {
        region: REGION,
        presign: Some(Duration::from_secs(secs)),
        exclude: &[],
    };

    // Lifetime: 7 days is the most.
    let r = presign(7 * DAY)
        .send(&s, "GET", &obj, &[], &[], b"")
        .await?;
    expect_ok("presigned GET for 7 days", &r)?;
    ensure!(r.body == b"v4 object", "presigned body");
    let r = presign(8 * DAY)
        .send(&s, "GET", &obj, &[], &[], b"")
        .await?;
    expect(
        "presigned GET for 8 days",
        &r,
        400,
        "AuthorizationQueryParametersError",
    )?;
    let r = presign(1_000_000_000)
        .send(&s, "DELETE", &obj, &[], &[], b"")
        .await?;
    expect(
        "presigned DELETE for 31 years",
        &r,
        400,
        "AuthorizationQueryParametersError",
    )?;
    ensure!(
        exists(&c, &b, "obj").await?,
        "long-lived presigned DELETE deleted"
    );

    // Region: the scope must name the server's, and the error says which.
    let eu = V4 {
        region: "eu-west-1",
        presign: Some(Duration::from_secs(600)),
        exclude: &[],
    };
    let r = eu.send(&s, "GET", &obj, &[], &[], b"").await?;
    expect(
        "presigned GET for eu-west-1",
        &r,
        400,
        "AuthorizationQueryParametersError",
    )?;
    ensure!(
        xml_tag(&r.text(), "Region").as_deref() == Some(REGION),
        "region error names the server's region: {}",
        r.text()
    );
    let eu_client = Client::from_conf(s.s3_config().region(Region::new("eu-west-1")).build());
    expect_err(
        "SDK GET signed for eu-west-1",
        eu_client.get_object().bucket(&b).key("obj").send().await,
        400,
        Some("AuthorizationHeaderMalformed"),
    )?;
    expect_err(
        "SDK DELETE signed for eu-west-1",
        eu_client.delete_object().bucket(&b).key("obj").send().await,
        400,
        Some("AuthorizationHeaderMalformed"),
    )?;
    ensure!(
        exists(&c, &b, "obj").await?,
        "a wrong-region DELETE deleted"
    );

    // host must be signed, presigned and header auth alike.
    let nohost = V4 {
        region: REGION,
        presign: Some(Duration::from_secs(600)),
        exclude: &["host"],
    };
    let r = nohost
        .send(&s, "GET", &obj, &[("x-amz-meta-a", "1")], &[], b"")
        .await?;
    expect(
        "presigned GET without a signed host",
        &r,
        403,
        "AccessDenied",
    )?;
    ensure!(
        xml_tag(&r.text(), "HeadersNotSigned").as_deref() == Some("host"),
        "HeadersNotSigned: {}",
        r.text()
    );
    let nohost_hdr = V4 {
        region: REGION,
        presign: None,
        exclude: &["host"],
    };
    let r = nohost_hdr.send(&s, "DELETE", &obj, &[], &[], b"").await?;
    expect("DELETE without a signed host", &r, 403, "AccessDenied")?;
    ensure!(exists(&c, &b, "obj").await?, "a host-less DELETE deleted");
    Ok(())
}

/// Real SigV2 clients still work under the clock-skew rule: s3cmd with
/// `--signature-v2` and botocore's HmacV1 signer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv2_clients_still_work() -> Result<()> {
    require_tool("s3cmd")?;
    require_tool("python3")?;
    let s = Server::start_default().await?;
    let b = bucket_name("v2cli");
    let d = s.dir();
    let cfg = s.s3cmd_config();
    let s3cmd = || {
        let mut c = s.tool("s3cmd");
        c.arg("-c").arg(&cfg).arg("--signature-v2");
        c
    };
    run(s3cmd().args(["mb", &format!("s3://{b}")]))?;
    let file = d.join("v2.txt");
    std::fs::write(&file, b"signed the old way\n")?;
    run(s3cmd()
        .arg("put")
        .arg(&file)
        .arg(format!("s3://{b}/v2.txt")))?;
    let ls = run_stdout(s3cmd().args(["ls", &format!("s3://{b}/")]))?;
    ensure!(ls.contains(&format!("s3://{b}/v2.txt")), "s3cmd ls: {ls}");
    let got = d.join("got.txt");
    run(s3cmd().args(["get", &format!("s3://{b}/v2.txt")]).arg(&got))?;
    ensure!(std::fs::read(&got)? == b"signed the old way\n", "s3cmd get");

    // botocore's HmacV1 signer (header-signed V2, `Date` in GMT form) on
    // objects: PUT with Content-Type and metadata (both in the string to
    // sign), GET, DELETE. (Bucket-level calls are left out: botocore signs
    // `/bucket/` for a path-style `/bucket`, which s3s does not accept.)
    let script = d.join("hmacv1.py");
    std::fs::write(
        &script,
        r#"import sys, botocore.session, botocore.config
endpoint, bucket = sys.argv[1], sys.argv[2]
c = botocore.session.get_session().create_client(
    "s3", endpoint_url=endpoint, region_name="us-east-1",
    config=botocore.config.Config(signature_version="s3", s3={"addressing_style": "path"},
                                  retries={"max_attempts": 1}))
c.put_object(Bucket=bucket, Key="hmacv1", Body=b"via botocore", ContentType="text/plain",
             Metadata={"signer": "hmacv1"})
r = c.get_object(Bucket=bucket, Key="hmacv1")
assert r["Body"].read() == b"via botocore"
assert r["ContentType"] == "text/plain", r["ContentType"]
assert r["Metadata"] == {"signer": "hmacv1"}, r["Metadata"]
c.delete_object(Bucket=bucket, Key="hmacv1")
print("ok")
"#,
    )?;
    let out = run_stdout(s.tool("python3").arg(&script).arg(s.endpoint()).arg(&b))?;
    ensure!(out.trim() == "ok", "botocore HmacV1: {out}");
    run(s3cmd().args(["del", &format!("s3://{b}/v2.txt")]))?;
    let ls = run_stdout(s3cmd().args(["ls", &format!("s3://{b}/")]))?;
    ensure!(ls.trim().is_empty(), "after the deletes: {ls}");
    Ok(())
}

/// s3cmd with `signature_v2 = True` in its config file (not the flag):
/// put, list, get; a wrong secret is 403 SignatureDoesNotMatch and changes
/// nothing. SigV4 edge cases: an empty Authorization header is refused
/// (not taken as anonymous), and with both `Date` and `X-Amz-Date` the
/// latter is the signed time (a stale `Date` beside it does not matter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv2_config_and_header_edge_cases() -> Result<()> {
    require_tool("s3cmd")?;
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_with(&c, "v2cfg", &[("obj", b"v4 object")]).await?;
    let d = s.dir();
    let cfg = std::fs::read_to_string(s.s3cmd_config())?;
    ensure!(cfg.contains("signature_v2 = False"), "s3cmd config: {cfg}");
    let v2cfg = d.join("s3cmd-v2.cfg");
    std::fs::write(
        &v2cfg,
        cfg.replace("signature_v2 = False", "signature_v2 = True"),
    )?;
    let s3cmd = |cfg: &std::path::Path| {
        let mut c = s.tool("s3cmd");
        c.arg("-c").arg(cfg);
        c
    };
    let file = d.join("cfg.txt");
    std::fs::write(&file, b"v2 from the config\n")?;
    run(s3cmd(&v2cfg)
        .arg("put")
        .arg(&file)
        .arg(format!("s3://{b}/cfg.txt")))?;
    let ls = run_stdout(s3cmd(&v2cfg).args(["ls", &format!("s3://{b}/")]))?;
    ensure!(
        ls.contains(&format!("s3://{b}/cfg.txt")) && ls.contains(&format!("s3://{b}/obj")),
        "s3cmd V2 ls: {ls}"
    );
    let got = d.join("cfg-got.txt");
    run(s3cmd(&v2cfg)
        .args(["get", &format!("s3://{b}/obj")])
        .arg(&got))?;
    ensure!(std::fs::read(&got)? == b"v4 object", "s3cmd V2 get");

    let secret_line = cfg
        .lines()
        .find(|l| l.starts_with("secret_key = "))
        .ok_or_else(|| anyhow!("no secret_key in {cfg}"))?;
    let badcfg = d.join("s3cmd-v2-bad.cfg");
    std::fs::write(
        &badcfg,
        cfg.replace("signature_v2 = False", "signature_v2 = True")
            .replace(secret_line, "secret_key = not-the-secret"),
    )?;
    let out = cairn_tests::run_status(
        s3cmd(&badcfg)
            .arg("put")
            .arg(&file)
            .arg(format!("s3://{b}/bad.txt")),
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("SignatureDoesNotMatch"),
        "s3cmd V2 with a wrong secret: {err}"
    );
    ensure!(
        !exists(&c, &b, "bad.txt").await?,
        "a badly signed V2 PUT stored"
    );

    // an empty Authorization header: refused, not anonymous
    let obj = format!("/{b}/obj");
    let anon = raw::Client::new(s.addr(), None);
    let r = anon
        .send("GET", &obj, &[("authorization", "")], b"")
        .await?;
    ensure!(
        r.status == 400
            && matches!(
                r.code().as_deref(),
                Some("AuthorizationHeaderMalformed" | "InvalidArgument")
            ),
        "empty Authorization: {}",
        r.describe()
    );
    // Date a month old beside a current (signed) X-Amz-Date: accepted
    let stale = http_date(OffsetDateTime::now_utc() - time::Duration::days(30))?;
    let r = s.raw().send("GET", &obj, &[("date", &stale)], b"").await?;
    expect_ok("SigV4 with a stale Date and a current X-Amz-Date", &r)?;
    ensure!(r.body == b"v4 object", "body: {}", r.text());
    Ok(())
}
