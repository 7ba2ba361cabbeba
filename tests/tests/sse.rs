//! Server-side encryption end to end: SSE-S3, SSE-KMS and SSE-C through
//! aws-sdk-s3 and awscli against the real binary and its built-in KMS
//! (`CAIRN_KMS_SECRET_KEY`). Every test checks what the client sees (bytes,
//! response headers, errors) and, where it can, that encryption really
//! happened: an SSE-C object does not read without its key, and no file
//! under the drives holds a known plaintext.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
    ServerSideEncryptionConfiguration,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_tests::cmd::run_stdout;
use cairn_tests::data::{
    Generator, KIB, MIB, assert_files_equal, files_holding, list_tree, random_bytes, same_bytes,
};
use cairn_tests::sse::encryption_rule;
use cairn_tests::{
    Server, StartOpts, bucket_name, err_code, err_status, expect_err, new_bucket, raw,
    require_tool, run, run_status,
};
use md5::{Digest, Md5};

/// The built-in KMS's (default) master key in these tests.
const KMS_KEY: &str = "cairn-default";

fn kms_env() -> Vec<(String, String)> {
    vec![(
        "CAIRN_KMS_SECRET_KEY".into(),
        format!("{KMS_KEY}:{}", B64.encode([0x5au8; 32])),
    )]
}

async fn start_kms() -> Result<Server> {
    Server::start(StartOpts {
        env: kms_env(),
        ..StartOpts::default()
    })
    .await
}

const KEY1: [u8; 32] = [0x11; 32];
const KEY2: [u8; 32] = [0x22; 32];

fn key_md5(k: &[u8; 32]) -> String {
    B64.encode(Md5::digest(k))
}

/// How an object is (to be) encrypted.
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    S3,
    Kms(String),
    Customer([u8; 32]),
}

impl Mode {
    fn kms() -> Self {
        Mode::Kms(KMS_KEY.into())
    }
}

/// Sets a write request's SSE headers (PutObject, CopyObject's
/// destination, CreateMultipartUpload).
macro_rules! sse {
    ($b:expr, $mode:expr) => {{
        let b = $b;
        match $mode {
            Mode::S3 => b.server_side_encryption(ServerSideEncryption::Aes256),
            Mode::Kms(k) => b
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(k.clone()),
            Mode::Customer(k) => b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(B64.encode(k))
                .sse_customer_key_md5(key_md5(k)),
        }
    }};
}

/// Sets the SSE-C headers of a request that reads or adds to an SSE-C
/// object (GET, HEAD, UploadPart); nothing for the other modes.
macro_rules! sse_c {
    ($b:expr, $mode:expr) => {{
        let b = $b;
        match $mode {
            Mode::Customer(k) => b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(B64.encode(k))
                .sse_customer_key_md5(key_md5(k)),
            _ => b,
        }
    }};
}

/// Sets the copy-source SSE-C headers.
macro_rules! sse_c_src {
    ($b:expr, $mode:expr) => {{
        let b = $b;
        match $mode {
            Mode::Customer(k) => b
                .copy_source_sse_customer_algorithm("AES256")
                .copy_source_sse_customer_key(B64.encode(k))
                .copy_source_sse_customer_key_md5(key_md5(k)),
            _ => b,
        }
    }};
}

/// The SSE response headers of an SDK output.
macro_rules! hdrs {
    ($o:expr) => {{
        let o = &$o;
        Headers {
            sse: o.server_side_encryption().map(|s| s.as_str().to_owned()),
            kms_key: o.ssekms_key_id().map(str::to_owned),
            c_alg: o.sse_customer_algorithm().map(str::to_owned),
            c_md5: o.sse_customer_key_md5().map(str::to_owned),
        }
    }};
}

#[derive(Debug, Default)]
struct Headers {
    sse: Option<String>,
    kms_key: Option<String>,
    c_alg: Option<String>,
    c_md5: Option<String>,
}

impl Headers {
    /// Fails unless the headers are what S3 sends for `mode` (`None`: a
    /// plain object, no SSE header at all).
    fn expect(&self, what: &str, mode: Option<&Mode>) -> Result<()> {
        let ok = match mode {
            None => {
                self.sse.is_none()
                    && self.kms_key.is_none()
                    && self.c_alg.is_none()
                    && self.c_md5.is_none()
            }
            Some(Mode::S3) => {
                self.sse.as_deref() == Some("AES256")
                    && self.kms_key.is_none()
                    && self.c_alg.is_none()
            }
            Some(Mode::Kms(k)) => {
                self.sse.as_deref() == Some("aws:kms")
                    && self.kms_key.as_deref() == Some(k.as_str())
                    && self.c_alg.is_none()
            }
            Some(Mode::Customer(k)) => {
                self.sse.is_none()
                    && self.c_alg.as_deref() == Some("AES256")
                    && self.c_md5.as_deref() == Some(key_md5(k).as_str())
            }
        };
        ensure!(
            ok,
            "{what}: SSE response headers {self:?}, expected {mode:?}"
        );
        Ok(())
    }
}

async fn put(c: &Client, b: &str, k: &str, data: &[u8], mode: Option<&Mode>) -> Result<Headers> {
    let req = c
        .put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(data.to_vec()));
    let req = match mode {
        Some(m) => sse!(req, m),
        None => req,
    };
    let o = req
        .send()
        .await
        .with_context(|| format!("PUT {k} ({mode:?})"))?;
    Ok(hdrs!(o))
}

async fn get(
    c: &Client,
    b: &str,
    k: &str,
    mode: Option<&Mode>,
    range: Option<String>,
) -> Result<(Vec<u8>, Headers)> {
    let req = c.get_object().bucket(b).key(k).set_range(range.clone());
    let req = match mode {
        Some(m) => sse_c!(req, m),
        None => req,
    };
    let o = req
        .send()
        .await
        .with_context(|| format!("GET {k} {range:?} ({mode:?})"))?;
    let h = hdrs!(o);
    Ok((o.body.collect().await?.into_bytes().to_vec(), h))
}

async fn head(c: &Client, b: &str, k: &str, mode: Option<&Mode>) -> Result<(i64, Headers)> {
    let req = c.head_object().bucket(b).key(k);
    let req = match mode {
        Some(m) => sse_c!(req, m),
        None => req,
    };
    let o = req
        .send()
        .await
        .with_context(|| format!("HEAD {k} ({mode:?})"))?;
    Ok((o.content_length().unwrap_or(-1), hdrs!(o)))
}

/// Reads `k` back (GET and HEAD) and checks bytes, size and SSE headers.
async fn check_object(
    c: &Client,
    b: &str,
    k: &str,
    data: &[u8],
    mode: Option<&Mode>,
) -> Result<()> {
    let (got, h) = get(c, b, k, mode, None).await?;
    same_bytes(&format!("GET {k}"), &got, data)?;
    h.expect(&format!("GET {k}"), mode)?;
    let (len, h) = head(c, b, k, mode).await?;
    ensure!(len == data.len() as i64, "HEAD {k}: Content-Length {len}");
    h.expect(&format!("HEAD {k}"), mode)
}

/// Inclusive ranges worth reading from an object of `size` bytes: the
/// first and last byte, both sides of every 64 KiB package boundary and
/// 1 MiB block boundary it has (capped), a span over several packages,
/// and a suffix.
fn ranges(size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if size == 0 {
        return out;
    }
    out.push((0, 0));
    out.push((size - 1, size - 1));
    let pkg = 64 * KIB as u64;
    let mut boundaries: Vec<u64> = (1..=3).map(|i| i * pkg).collect();
    boundaries.extend([MIB as u64, 2 * MIB as u64, 4 * MIB as u64]);
    for b in boundaries.into_iter().filter(|b| *b < size) {
        out.push((b - 1, b));
        out.push((b.saturating_sub(10), (b + 9).min(size - 1)));
    }
    if size > 400_000 {
        out.push((100_000, 400_000));
        out.push((pkg - 7, 5 * pkg + 3));
    }
    out
}

/// Every mode: objects of 0 B, 1 B, 64 KiB - 1, 64 KiB, 64 KiB + 1 and
/// 5 MiB round-trip with the right headers; ranged reads across package
/// boundaries return the right bytes; listings show plaintext sizes.
async fn sizes_round_trip(mode: Mode) -> Result<()> {
    let s = start_kms().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sse-sizes").await?;
    let sizes = [0, 1, 64 * KIB - 1, 64 * KIB, 64 * KIB + 1, 5 * MIB];
    for (i, &size) in sizes.iter().enumerate() {
        let k = format!("obj-{size}");
        let data = random_bytes(size, 100 + i as u64);
        put(&c, &b, &k, &data, Some(&mode))
            .await?
            .expect(&format!("PUT {k}"), Some(&mode))?;
        check_object(&c, &b, &k, &data, Some(&mode)).await?;
        for (first, last) in ranges(size as u64) {
            let (got, h) = get(
                &c,
                &b,
                &k,
                Some(&mode),
                Some(format!("bytes={first}-{last}")),
            )
            .await?;
            let what = format!("GET {k} bytes={first}-{last}");
            same_bytes(&what, &got, &data[first as usize..=last as usize])?;
            h.expect(&what, Some(&mode))?;
        }
        if size > 70_000 {
            let (got, _) = get(&c, &b, &k, Some(&mode), Some("bytes=-70000".into())).await?;
            same_bytes(
                &format!("GET {k} bytes=-70000"),
                &got,
                &data[size - 70_000..],
            )?;
        }
        if let Mode::Customer(_) = mode {
            // Really under the key: no read without it, none with another.
            let r = c.get_object().bucket(&b).key(&k).send().await;
            expect_err(
                &format!("GET {k} without its key"),
                r,
                400,
                Some("InvalidRequest"),
            )?;
            let r = sse_c!(c.get_object().bucket(&b).key(&k), &Mode::Customer(KEY2))
                .send()
                .await;
            expect_err(
                &format!("GET {k} with another key"),
                r,
                403,
                Some("AccessDenied"),
            )?;
        }
    }
    let listed = c.list_objects_v2().bucket(&b).send().await?;
    for o in listed.contents() {
        let k = o.key().unwrap_or_default();
        let want: i64 = k.trim_start_matches("obj-").parse()?;
        ensure!(
            o.size() == Some(want),
            "listing shows {k} with size {:?}, not its plaintext size",
            o.size()
        );
    }
    ensure!(
        listed.contents().len() == sizes.len(),
        "listing: {listed:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_sse_s3() -> Result<()> {
    sizes_round_trip(Mode::S3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_sse_kms() -> Result<()> {
    sizes_round_trip(Mode::kms()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_sse_c() -> Result<()> {
    sizes_round_trip(Mode::Customer(KEY1)).await
}

/// A 100 MiB multipart object in `mode`, streamed from a generator (never
/// held whole): parts of 7 MiB + 1 byte so part boundaries fall inside
/// packages; full read checked by MD5; ranges across every part boundary.
async fn multipart_100mib(mode: Mode) -> Result<()> {
    const TOTAL: u64 = 100 * MIB as u64;
    const PART: u64 = 7 * MIB as u64 + 1;
    const WINDOW: usize = 70_000;
    let s = start_kms().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sse-mpu").await?;
    let k = "big/object";

    let up = sse!(c.create_multipart_upload().bucket(&b).key(k), &mode)
        .send()
        .await?;
    hdrs!(up).expect("CreateMultipartUpload", Some(&mode))?;
    let id = up.upload_id().context("no UploadId")?.to_string();

    let mut g = Generator::new(TOTAL, 7);
    let mut windows: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut prev_tail: Vec<u8> = Vec::new();
    let mut parts = Vec::new();
    let mut off = 0u64;
    let mut n = 1;
    while g.remaining() > 0 {
        let mut buf = vec![0u8; PART.min(g.remaining()) as usize];
        g.fill(&mut buf);
        if off > 0 {
            let mut w = std::mem::take(&mut prev_tail);
            w.extend_from_slice(&buf[..WINDOW.min(buf.len())]);
            windows.push((off - WINDOW as u64, w));
        }
        prev_tail = buf[buf.len().saturating_sub(WINDOW)..].to_vec();
        let len = buf.len() as u64;
        let r = sse_c!(
            c.upload_part()
                .bucket(&b)
                .key(k)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(buf)),
            &mode
        )
        .send()
        .await
        .with_context(|| format!("UploadPart {n}"))?;
        if let Mode::Customer(_) = mode {
            hdrs!(r).expect(&format!("UploadPart {n}"), Some(&mode))?;
        }
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap_or_default())
                .build(),
        );
        off += len;
        n += 1;
    }
    let done = sse_c!(
        c.complete_multipart_upload()
            .bucket(&b)
            .key(k)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build()
            ),
        &mode
    )
    .send()
    .await?;
    // A wrong CompleteMultipartUpload header is reported at the end, after
    // the reads have been checked too.
    let complete_headers = if let Mode::Customer(_) = mode {
        match done.server_side_encryption() {
            None => Ok(()),
            Some(s) => Err(anyhow::anyhow!(
                "CompleteMultipartUpload of an SSE-C upload says {s:?}"
            )),
        }
    } else {
        Headers {
            sse: done.server_side_encryption().map(|s| s.as_str().to_owned()),
            kms_key: done.ssekms_key_id().map(str::to_owned),
            ..Headers::default()
        }
        .expect("CompleteMultipartUpload", Some(&mode))
    };

    let (len, h) = head(&c, &b, k, Some(&mode)).await?;
    ensure!(len == TOTAL as i64, "HEAD: Content-Length {len}");
    h.expect("HEAD", Some(&mode))?;

    // The whole object, streamed.
    let o = sse_c!(c.get_object().bucket(&b).key(k), &mode)
        .send()
        .await?;
    hdrs!(o).expect("GET", Some(&mode))?;
    let mut body = o.body;
    let mut md5 = Md5::new();
    let mut got = 0u64;
    while let Some(chunk) = body.try_next().await? {
        md5.update(&chunk);
        got += chunk.len() as u64;
    }
    ensure!(got == TOTAL, "GET returned {got} bytes of {TOTAL}");
    let got_md5 = hex::encode(md5.finalize());
    ensure!(
        got_md5 == g.md5_hex(),
        "GET: MD5 {got_md5}, want {}",
        g.md5_hex()
    );

    // Ranges over each part boundary (and the packages around it).
    for (start, w) in &windows {
        let last = start + w.len() as u64 - 1;
        let (got, h) = get(
            &c,
            &b,
            k,
            Some(&mode),
            Some(format!("bytes={start}-{last}")),
        )
        .await?;
        let what = format!("GET bytes={start}-{last}");
        same_bytes(&what, &got, w)?;
        h.expect(&what, Some(&mode))?;
    }
    // A range spanning two whole part boundaries.
    let (start, w) = &windows[0];
    let (_, w2) = &windows[1];
    let (got, _) = get(
        &c,
        &b,
        k,
        Some(&mode),
        Some(format!(
            "bytes={start}-{}",
            start + PART + w2.len() as u64 - 1
        )),
    )
    .await?;
    ensure!(
        got.len() as u64 == PART + w2.len() as u64,
        "two-boundary range: {} bytes",
        got.len()
    );
    same_bytes("two-boundary range head", &got[..w.len()], w)?;
    same_bytes("two-boundary range tail", &got[got.len() - w2.len()..], w2)?;
    complete_headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_100mib_sse_s3() -> Result<()> {
    multipart_100mib(Mode::S3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_100mib_sse_kms() -> Result<()> {
    multipart_100mib(Mode::kms()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_100mib_sse_c() -> Result<()> {
    multipart_100mib(Mode::Customer(KEY1)).await
}

/// CopyObject and UploadPartCopy between modes: plain -> SSE-C,
/// SSE-C -> SSE-KMS, SSE-S3 -> plain, SSE-C -> SSE-C with a new key onto
/// itself, and SSE-C sources into SSE-KMS and SSE-C multipart uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_between_modes() -> Result<()> {
    let s = start_kms().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sse-copy").await?;
    let k1 = Mode::Customer(KEY1);
    let k2 = Mode::Customer(KEY2);
    let kms = Mode::kms();
    // An inline object and a streamed one.
    for size in [1000, 300 * KIB + 5] {
        let data = random_bytes(size, size as u64);
        let p = |n: &str| format!("{size}/{n}");

        put(&c, &b, &p("plain"), &data, None).await?;
        let r = sse!(
            c.copy_object()
                .bucket(&b)
                .key(p("to-c"))
                .copy_source(format!("{b}/{}", p("plain"))),
            &k1
        )
        .send()
        .await?;
        hdrs!(r).expect("copy plain -> SSE-C", Some(&k1))?;
        check_object(&c, &b, &p("to-c"), &data, Some(&k1)).await?;
        let r = c.get_object().bucket(&b).key(p("to-c")).send().await;
        expect_err(
            "GET of the SSE-C copy without a key",
            r,
            400,
            Some("InvalidRequest"),
        )?;

        // The source's key is needed to read it.
        let r = sse!(
            c.copy_object()
                .bucket(&b)
                .key(p("nope"))
                .copy_source(format!("{b}/{}", p("to-c"))),
            &kms
        )
        .send()
        .await;
        expect_err(
            "copy of an SSE-C source without its key",
            r,
            400,
            Some("InvalidRequest"),
        )?;

        let r = sse_c_src!(
            sse!(
                c.copy_object()
                    .bucket(&b)
                    .key(p("to-kms"))
                    .copy_source(format!("{b}/{}", p("to-c"))),
                &kms
            ),
            &k1
        )
        .send()
        .await?;
        hdrs!(r).expect("copy SSE-C -> SSE-KMS", Some(&kms))?;
        check_object(&c, &b, &p("to-kms"), &data, Some(&kms)).await?;

        put(&c, &b, &p("s3"), &data, Some(&Mode::S3)).await?;
        let r = c
            .copy_object()
            .bucket(&b)
            .key(p("to-plain"))
            .copy_source(format!("{b}/{}", p("s3")))
            .send()
            .await?;
        hdrs!(r).expect("copy SSE-S3 -> plain", None)?;
        check_object(&c, &b, &p("to-plain"), &data, None).await?;

        // Encrypting a plain object in place, and decrypting one: a copy
        // onto itself takes the encryption the request names (none here:
        // the bucket has no default), not the source's.
        let r = sse!(
            c.copy_object()
                .bucket(&b)
                .key(p("plain"))
                .copy_source(format!("{b}/{}", p("plain"))),
            &Mode::S3
        )
        .send()
        .await?;
        hdrs!(r).expect("copy plain onto itself with SSE-S3", Some(&Mode::S3))?;
        check_object(&c, &b, &p("plain"), &data, Some(&Mode::S3)).await?;
        let r = c
            .copy_object()
            .bucket(&b)
            .key(p("to-kms"))
            .copy_source(format!("{b}/{}", p("to-kms")))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .metadata("note", "decrypted")
            .send()
            .await?;
        hdrs!(r).expect("copy SSE-KMS onto itself without SSE headers", None)?;
        check_object(&c, &b, &p("to-kms"), &data, None).await?;

        // Re-keying an SSE-C object in place.
        let r = sse_c_src!(
            sse!(
                c.copy_object()
                    .bucket(&b)
                    .key(p("to-c"))
                    .copy_source(format!("{b}/{}", p("to-c"))),
                &k2
            ),
            &k1
        )
        .send()
        .await?;
        hdrs!(r).expect("copy SSE-C onto itself with a new key", Some(&k2))?;
        check_object(&c, &b, &p("to-c"), &data, Some(&k2)).await?;
        let r = sse_c!(c.get_object().bucket(&b).key(p("to-c")), &k1)
            .send()
            .await;
        expect_err(
            "GET with the old key after re-keying",
            r,
            403,
            Some("AccessDenied"),
        )?;
    }

    // UploadPartCopy from an SSE-C source into SSE-KMS and SSE-C uploads.
    let src = random_bytes(6 * MIB + 3, 77);
    put(&c, &b, "mp-src", &src, Some(&k1)).await?;
    let tail = random_bytes(MIB + 1, 78);
    for dest in [kms.clone(), k2.clone()] {
        let key = format!("mp-{}", if dest == kms { "kms" } else { "c" });
        let up = sse!(c.create_multipart_upload().bucket(&b).key(&key), &dest)
            .send()
            .await?;
        hdrs!(up).expect("CreateMultipartUpload", Some(&dest))?;
        let id = up.upload_id().context("no UploadId")?.to_string();
        let first = 5 * MIB + 17;
        let r1 = sse_c_src!(
            sse_c!(
                c.upload_part_copy()
                    .bucket(&b)
                    .key(&key)
                    .upload_id(&id)
                    .part_number(1)
                    .copy_source(format!("{b}/mp-src"))
                    .copy_source_range(format!("bytes=3-{}", 3 + first - 1)),
                &dest
            ),
            &k1
        )
        .send()
        .await
        .context("UploadPartCopy")?;
        if let Mode::Customer(_) = dest {
            hdrs!(r1).expect("UploadPartCopy", Some(&dest))?;
        }
        let e1 = r1
            .copy_part_result()
            .and_then(|x| x.e_tag())
            .unwrap_or_default()
            .to_string();
        let r2 = sse_c!(
            c.upload_part()
                .bucket(&b)
                .key(&key)
                .upload_id(&id)
                .part_number(2)
                .body(ByteStream::from(tail.clone())),
            &dest
        )
        .send()
        .await?;
        let parts = vec![
            CompletedPart::builder().part_number(1).e_tag(e1).build(),
            CompletedPart::builder()
                .part_number(2)
                .e_tag(r2.e_tag().unwrap_or_default())
                .build(),
        ];
        sse_c!(
            c.complete_multipart_upload()
                .bucket(&b)
                .key(&key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build()
                ),
            &dest
        )
        .send()
        .await?;
        let mut want = src[3..3 + first].to_vec();
        want.extend_from_slice(&tail);
        check_object(&c, &b, &key, &want, Some(&dest)).await?;
    }
    Ok(())
}

/// Put/Get/DeleteBucketEncryption, and objects written without SSE headers
/// into a bucket with a default come back encrypted with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_default_encryption() -> Result<()> {
    let s = start_kms().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sse-default").await?;
    let data = random_bytes(300 * KIB + 1, 5);

    let r = c.get_bucket_encryption().bucket(&b).send().await;
    expect_err(
        "GetBucketEncryption with none set",
        r,
        404,
        Some("ServerSideEncryptionConfigurationNotFoundError"),
    )?;

    c.put_bucket_encryption()
        .bucket(&b)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(encryption_rule(ServerSideEncryption::Aes256, None)?)
                .build()?,
        )
        .send()
        .await?;
    let got = c.get_bucket_encryption().bucket(&b).send().await?;
    let rules = got
        .server_side_encryption_configuration()
        .map(|c| c.rules())
        .unwrap_or_default();
    ensure!(
        rules.len() == 1
            && rules[0]
                .apply_server_side_encryption_by_default()
                .map(|d| d.sse_algorithm().as_str())
                == Some("AES256"),
        "GetBucketEncryption: {got:?}"
    );

    put(&c, &b, "d1", &data, None).await?.expect(
        "PUT without SSE headers in an SSE-S3 bucket",
        Some(&Mode::S3),
    )?;
    check_object(&c, &b, "d1", &data, Some(&Mode::S3)).await?;
    put(&c, &b, "d1-small", &data[..100], None)
        .await?
        .expect("small PUT in an SSE-S3 bucket", Some(&Mode::S3))?;
    check_object(&c, &b, "d1-small", &data[..100], Some(&Mode::S3)).await?;

    // Multipart without headers.
    let up = c
        .create_multipart_upload()
        .bucket(&b)
        .key("d1-mpu")
        .send()
        .await?;
    hdrs!(up).expect("CreateMultipartUpload in an SSE-S3 bucket", Some(&Mode::S3))?;
    let id = up.upload_id().context("no UploadId")?.to_string();
    let r = c
        .upload_part()
        .bucket(&b)
        .key("d1-mpu")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    let done = c
        .complete_multipart_upload()
        .bucket(&b)
        .key("d1-mpu")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(r.e_tag().unwrap_or_default())
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    // Reported at the end, after the rest has been checked.
    let complete_headers = if done.server_side_encryption() == Some(&ServerSideEncryption::Aes256) {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "CompleteMultipartUpload in an SSE-S3 bucket: {:?}",
            done.server_side_encryption()
        ))
    };
    check_object(&c, &b, "d1-mpu", &data, Some(&Mode::S3)).await?;

    // An explicit request wins over the default.
    let k1 = Mode::Customer(KEY1);
    put(&c, &b, "explicit-c", &data, Some(&k1))
        .await?
        .expect("SSE-C PUT in an SSE-S3 bucket", Some(&k1))?;
    check_object(&c, &b, "explicit-c", &data, Some(&k1)).await?;

    // SSE-KMS default with a key id.
    c.put_bucket_encryption()
        .bucket(&b)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(encryption_rule(
                    ServerSideEncryption::AwsKms,
                    Some(KMS_KEY),
                )?)
                .build()?,
        )
        .send()
        .await?;
    let got = c.get_bucket_encryption().bucket(&b).send().await?;
    let d = got
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .context("no default rule")?;
    ensure!(
        d.sse_algorithm().as_str() == "aws:kms" && d.kms_master_key_id() == Some(KMS_KEY),
        "GetBucketEncryption: {d:?}"
    );
    put(&c, &b, "d2", &data, None)
        .await?
        .expect("PUT in an SSE-KMS bucket", Some(&Mode::kms()))?;
    check_object(&c, &b, "d2", &data, Some(&Mode::kms())).await?;

    // More than one rule is refused.
    let r = c
        .put_bucket_encryption()
        .bucket(&b)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(encryption_rule(ServerSideEncryption::Aes256, None)?)
                .rules(encryption_rule(ServerSideEncryption::AwsKms, None)?)
                .build()?,
        )
        .send()
        .await;
    ensure!(
        r.as_ref().err().and_then(err_status) == Some(400),
        "two rules: {:?}",
        r.map_err(|e| err_code(&e))
    );

    c.delete_bucket_encryption().bucket(&b).send().await?;
    let r = c.get_bucket_encryption().bucket(&b).send().await;
    expect_err(
        "GetBucketEncryption after delete",
        r,
        404,
        Some("ServerSideEncryptionConfigurationNotFoundError"),
    )?;
    put(&c, &b, "d3", &data, None)
        .await?
        .expect("PUT after the default was removed", None)?;
    check_object(&c, &b, "d3", &data, None).await?;
    // Objects written before keep their encryption.
    check_object(&c, &b, "d1", &data, Some(&Mode::S3)).await?;
    check_object(&c, &b, "d2", &data, Some(&Mode::kms())).await?;
    complete_headers
}

/// The errors S3 clients rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_errors() -> Result<()> {
    let s = start_kms().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sse-errors").await?;
    let k1 = Mode::Customer(KEY1);
    let k2 = Mode::Customer(KEY2);
    let data = random_bytes(200 * KIB, 9);
    put(&c, &b, "c", &data, Some(&k1)).await?;
    put(&c, &b, "plain", &data, None).await?;

    let r = c.get_object().bucket(&b).key("c").send().await;
    expect_err("GET SSE-C without key", r, 400, Some("InvalidRequest"))?;
    let r = c.head_object().bucket(&b).key("c").send().await;
    expect_err("HEAD SSE-C without key", r, 400, None)?;
    let r = sse_c!(c.get_object().bucket(&b).key("c"), &k2).send().await;
    expect_err("GET SSE-C with a wrong key", r, 403, Some("AccessDenied"))?;
    let r = sse_c!(
        c.get_object()
            .bucket(&b)
            .key("c")
            .range("bytes=70000-70100"),
        &k2
    )
    .send()
    .await;
    expect_err(
        "ranged GET SSE-C with a wrong key",
        r,
        403,
        Some("AccessDenied"),
    )?;
    let r = sse_c!(c.head_object().bucket(&b).key("c"), &k2)
        .send()
        .await;
    expect_err("HEAD SSE-C with a wrong key", r, 403, None)?;
    let r = sse_c!(c.get_object().bucket(&b).key("plain"), &k1)
        .send()
        .await;
    expect_err(
        "GET of a plain object with a key",
        r,
        400,
        Some("InvalidRequest"),
    )?;

    let r = c
        .put_object()
        .bucket(&b)
        .key("x")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("no-such-key")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    expect_err(
        "SSE-KMS with an unknown key",
        r,
        400,
        Some("KMS.NotFoundException"),
    )?;
    let r = c
        .create_multipart_upload()
        .bucket(&b)
        .key("x")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("no-such-key")
        .send()
        .await;
    expect_err(
        "CreateMultipartUpload SSE-KMS with an unknown key",
        r,
        400,
        Some("KMS.NotFoundException"),
    )?;
    let r = c
        .put_object()
        .bucket(&b)
        .key("x")
        .server_side_encryption(ServerSideEncryption::from("AES128"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    expect_err(
        "unknown algorithm",
        r,
        400,
        Some("InvalidEncryptionAlgorithmError"),
    )?;
    let r = sse!(
        c.put_object()
            .bucket(&b)
            .key("x")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from_static(b"x")),
        &k1
    )
    .send()
    .await;
    expect_err("SSE-C and SSE-S3 together", r, 400, Some("InvalidArgument"))?;
    let r = c
        .put_object()
        .bucket(&b)
        .key("x")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(B64.encode(KEY1))
        .sse_customer_key_md5(key_md5(&KEY2))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    expect_err("SSE-C key with another key's MD5", r, 400, None)?;
    let r = c
        .put_object()
        .bucket(&b)
        .key("x")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(B64.encode([1u8; 16]))
        .sse_customer_key_md5(B64.encode(Md5::digest([1u8; 16])))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    expect_err("128-bit SSE-C key", r, 400, None)?;
    let r = c
        .put_object()
        .bucket(&b)
        .key("x")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_encryption_context(B64.encode("not json"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    expect_err("bad encryption context", r, 400, Some("InvalidArgument"))?;
    let r = c.head_object().bucket(&b).key("x").send().await;
    expect_err("no object after refused PUTs", r, 404, None)?;

    // An encryption context is taken and the object reads without it.
    let ctx = B64.encode(r#"{"app":"cairn-tests","tenant":"7"}"#);
    let o = c
        .put_object()
        .bucket(&b)
        .key("ctx")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(KMS_KEY)
        .ssekms_encryption_context(&ctx)
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    hdrs!(o).expect("PUT with a context", Some(&Mode::kms()))?;
    check_object(&c, &b, "ctx", &data, Some(&Mode::kms())).await?;

    // SSE-C multipart: parts need the upload's key.
    let up = sse!(c.create_multipart_upload().bucket(&b).key("mp"), &k1)
        .send()
        .await?;
    let id = up.upload_id().context("no UploadId")?.to_string();
    let r = c
        .upload_part()
        .bucket(&b)
        .key("mp")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(data.clone()))
        .send()
        .await;
    expect_err(
        "SSE-C UploadPart without the key",
        r,
        400,
        Some("InvalidRequest"),
    )?;
    let r = sse_c!(
        c.upload_part()
            .bucket(&b)
            .key("mp")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from(data.clone())),
        &k2
    )
    .send()
    .await;
    expect_err(
        "SSE-C UploadPart with a wrong key",
        r,
        403,
        Some("AccessDenied"),
    )?;
    c.abort_multipart_upload()
        .bucket(&b)
        .key("mp")
        .upload_id(&id)
        .send()
        .await?;
    Ok(())
}

/// Without a KMS, SSE-S3 and SSE-KMS are refused with 501 NotImplemented;
/// SSE-C needs no KMS and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_kms_only_sse_c() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sse-nokms").await?;
    let data = random_bytes(300 * KIB + 9, 11);
    for mode in [Mode::S3, Mode::kms()] {
        let r = sse!(
            c.put_object()
                .bucket(&b)
                .key("x")
                .body(ByteStream::from(data.clone())),
            &mode
        )
        .send()
        .await;
        expect_err(
            &format!("PUT {mode:?} without a KMS"),
            r,
            501,
            Some("NotImplemented"),
        )?;
        let r = sse!(c.create_multipart_upload().bucket(&b).key("x"), &mode)
            .send()
            .await;
        expect_err(
            &format!("CreateMultipartUpload {mode:?} without a KMS"),
            r,
            501,
            Some("NotImplemented"),
        )?;
    }
    // a bucket default no KMS can serve is refused as the requests are,
    // and plain PUTs go on working
    for alg in [ServerSideEncryption::Aes256, ServerSideEncryption::AwsKms] {
        let r = c
            .put_bucket_encryption()
            .bucket(&b)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(encryption_rule(alg.clone(), None)?)
                    .build()?,
            )
            .send()
            .await;
        expect_err(
            &format!("PutBucketEncryption {alg:?} without a KMS"),
            r,
            501,
            Some("NotImplemented"),
        )?;
    }
    put(&c, &b, "plain", &data, None)
        .await?
        .expect("plain PUT after a refused default", None)?;
    check_object(&c, &b, "plain", &data, None).await?;
    let k1 = Mode::Customer(KEY1);
    put(&c, &b, "c", &data, Some(&k1))
        .await?
        .expect("SSE-C PUT without a KMS", Some(&k1))?;
    check_object(&c, &b, "c", &data, Some(&k1)).await?;
    let r = c.get_object().bucket(&b).key("c").send().await;
    expect_err("GET SSE-C without key", r, 400, Some("InvalidRequest"))?;
    // tags are not encrypted: S3 reads and sets them without the key
    let tag = aws_sdk_s3::types::Tag::builder()
        .key("stage")
        .value("raw")
        .build()?;
    c.put_object_tagging()
        .bucket(&b)
        .key("c")
        .tagging(aws_sdk_s3::types::Tagging::builder().tag_set(tag).build()?)
        .send()
        .await
        .context("PutObjectTagging on an SSE-C object without its key")?;
    let tags = c
        .get_object_tagging()
        .bucket(&b)
        .key("c")
        .send()
        .await
        .context("GetObjectTagging on an SSE-C object without its key")?;
    ensure!(
        tags.tag_set().len() == 1 && tags.tag_set()[0].value() == "raw",
        "tags: {:?}",
        tags.tag_set()
    );
    check_object(&c, &b, "c", &data, Some(&k1)).await?;
    put(&c, &b, "c-small", &data[..10], Some(&k1)).await?;
    check_object(&c, &b, "c-small", &data[..10], Some(&k1)).await?;
    Ok(())
}

/// SSE-KMS with a named master key other than the default: a key file
/// KMS, a key made with `cairn admin kms create-key`, objects (single and
/// multipart) sealed under it, a bucket default naming it, a copy to
/// SSE-S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_kms_named_key_from_key_file() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let file = keys.path().join("keys.json");
    let s = Server::start(StartOpts {
        env: vec![("CAIRN_KMS_KEY_FILE".into(), file.display().to_string())],
        ..StartOpts::default()
    })
    .await?;
    let mut admin = Command::new(cairn_tests::cairn_bin()?);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            admin.env_remove(&k);
        }
    }
    run(admin
        .env("CAIRN_ROOT_USER", s.access_key())
        .env("CAIRN_ROOT_PASSWORD", s.secret_key())
        .args([
            "admin",
            "--endpoint",
            &s.endpoint(),
            "kms",
            "create-key",
            "app-key",
        ])
        .stdin(Stdio::null()))?;

    let c = s.s3();
    let b = new_bucket(&c, "sse-named").await?;
    let app = Mode::Kms("app-key".into());
    let data = random_bytes(300 * KIB + 11, 31);
    put(&c, &b, "a", &data, Some(&app))
        .await?
        .expect("PUT SSE-KMS app-key", Some(&app))?;
    check_object(&c, &b, "a", &data, Some(&app)).await?;
    put(&c, &b, "d", &data, Some(&Mode::S3))
        .await?
        .expect("PUT SSE-S3", Some(&Mode::S3))?;
    check_object(&c, &b, "d", &data, Some(&Mode::S3)).await?;
    let r = sse!(
        c.put_object()
            .bucket(&b)
            .key("x")
            .body(ByteStream::from_static(b"x")),
        &Mode::Kms("not-created".into())
    )
    .send()
    .await;
    expect_err(
        "SSE-KMS naming a key never created",
        r,
        400,
        Some("KMS.NotFoundException"),
    )?;

    // Multipart under the named key, read across the part boundary.
    let up = sse!(c.create_multipart_upload().bucket(&b).key("mp"), &app)
        .send()
        .await?;
    hdrs!(up).expect("CreateMultipartUpload app-key", Some(&app))?;
    let id = up.upload_id().context("no UploadId")?.to_string();
    let p1 = random_bytes(5 * MIB + 1, 32);
    let p2 = random_bytes(MIB, 33);
    let mut parts = Vec::new();
    for (n, p) in [(1, &p1), (2, &p2)] {
        let r = c
            .upload_part()
            .bucket(&b)
            .key("mp")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap_or_default())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(&b)
        .key("mp")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    check_object(&c, &b, "mp", &all, Some(&app)).await?;
    let (first, last) = (p1.len() - 70_000, p1.len() + 70_000);
    let (got, h) = get(&c, &b, "mp", None, Some(format!("bytes={first}-{last}"))).await?;
    same_bytes("range across the part boundary", &got, &all[first..=last])?;
    h.expect("range across the part boundary", Some(&app))?;

    // A copy to SSE-S3, and a bucket default naming the key.
    let r = sse!(
        c.copy_object()
            .bucket(&b)
            .key("a-to-s3")
            .copy_source(format!("{b}/a")),
        &Mode::S3
    )
    .send()
    .await?;
    hdrs!(r).expect("copy SSE-KMS app-key -> SSE-S3", Some(&Mode::S3))?;
    check_object(&c, &b, "a-to-s3", &data, Some(&Mode::S3)).await?;
    c.put_bucket_encryption()
        .bucket(&b)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(encryption_rule(
                    ServerSideEncryption::AwsKms,
                    Some("app-key"),
                )?)
                .build()?,
        )
        .send()
        .await?;
    put(&c, &b, "by-default", &data, None)
        .await?
        .expect("PUT into a bucket defaulting to app-key", Some(&app))?;
    check_object(&c, &b, "by-default", &data, Some(&app)).await?;
    Ok(())
}

/// `len` bytes of `marker` repeated.
fn marked(marker: &[u8; 32], len: usize) -> Vec<u8> {
    marker.iter().copied().cycle().take(len).collect()
}

/// Objects made of a repeated 32-byte marker, in every mode and through
/// a bucket default: no file under the drives holds the marker. A plain
/// object of another marker is found, so the search itself works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_on_disk() -> Result<()> {
    const SECRET: &[u8; 32] = b"cairn-sse-secret-marker-0123456!";
    const CONTROL: &[u8; 32] = b"cairn-sse-control-marker-987654!";
    let mut s = start_kms().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sse-disk").await?;
    let sizes = [100, 64 * KIB + 1, 300 * KIB, 6 * MIB];
    for (mi, mode) in [Mode::S3, Mode::kms(), Mode::Customer(KEY1)]
        .iter()
        .enumerate()
    {
        for size in sizes {
            let k = format!("{mi}/{size}");
            let data = marked(SECRET, size);
            put(&c, &b, &k, &data, Some(mode)).await?;
            check_object(&c, &b, &k, &data, Some(mode)).await?;
        }
        // And a multipart object.
        let k = format!("{mi}/mpu");
        let up = sse!(c.create_multipart_upload().bucket(&b).key(&k), mode)
            .send()
            .await?;
        let id = up.upload_id().context("no UploadId")?.to_string();
        let mut parts = Vec::new();
        for (n, len) in [(1, 5 * MIB), (2, MIB + 3)] {
            let r = sse_c!(
                c.upload_part()
                    .bucket(&b)
                    .key(&k)
                    .upload_id(&id)
                    .part_number(n)
                    .body(ByteStream::from(marked(SECRET, len))),
                mode
            )
            .send()
            .await?;
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(r.e_tag().unwrap_or_default())
                    .build(),
            );
        }
        sse_c!(
            c.complete_multipart_upload()
                .bucket(&b)
                .key(&k)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build()
                ),
            mode
        )
        .send()
        .await?;
        let mut want = marked(SECRET, 5 * MIB);
        want.extend(marked(SECRET, MIB + 3));
        check_object(&c, &b, &k, &want, Some(mode)).await?;
    }
    // Through the bucket default, and copied from a plain object.
    let bd = new_bucket(&c, "sse-disk-default").await?;
    c.put_bucket_encryption()
        .bucket(&bd)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(encryption_rule(ServerSideEncryption::Aes256, None)?)
                .build()?,
        )
        .send()
        .await?;
    for size in [100, 300 * KIB] {
        let data = marked(SECRET, size);
        put(&c, &bd, &format!("default-{size}"), &data, None)
            .await?
            .expect("PUT into an SSE-S3 bucket", Some(&Mode::S3))?;
    }
    // The control: a plain object, which must be found.
    let pb = new_bucket(&c, "sse-disk-plain").await?;
    put(&c, &pb, "control", &marked(CONTROL, 300 * KIB), None).await?;
    put(&c, &pb, "control-small", &marked(CONTROL, 200), None).await?;

    let hits = files_holding(s.drives(), SECRET)?;
    ensure!(
        hits.is_empty(),
        "plaintext of encrypted objects found on disk in {hits:?}"
    );
    let control = files_holding(s.drives(), CONTROL)?;
    ensure!(
        control.len() >= 2,
        "the plain control marker was found in only {control:?}: the search does not work"
    );

    // After a restart (keys from the same KMS secret) everything reads.
    s.restart().await?;
    let c = s.s3();
    for (mi, mode) in [Mode::S3, Mode::kms(), Mode::Customer(KEY1)]
        .iter()
        .enumerate()
    {
        for size in sizes {
            let k = format!("{mi}/{size}");
            check_object(&c, &b, &k, &marked(SECRET, size), Some(mode)).await?;
        }
    }
    check_object(
        &c,
        &bd,
        &format!("default-{}", 300 * KIB),
        &marked(SECRET, 300 * KIB),
        Some(&Mode::S3),
    )
    .await?;
    Ok(())
}

/// Each selectable cipher (`--sse-cipher`): objects round-trip in SSE-S3
/// and SSE-C, ranges across packages read right, and no plaintext reaches
/// the drives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cipher() -> Result<()> {
    const SECRET: &[u8; 32] = b"cairn-sse-cipher-marker-abcdefg!";
    let mut recorded = Vec::new();
    for cipher in [
        "aes-256-gcm",
        "chacha20-poly1305",
        "aes-256-cbc-hmac-sha256",
    ] {
        let mut env = kms_env();
        env.push(("CAIRN_SSE_CIPHER".into(), cipher.into()));
        let s = Server::start(StartOpts {
            env,
            ..StartOpts::default()
        })
        .await?;
        let c = s.s3();
        let b = new_bucket(&c, "sse-cipher").await?;
        for mode in [Mode::S3, Mode::Customer(KEY1)] {
            for size in [1, 64 * KIB + 1, 3 * MIB + 5] {
                let k = format!("{mode:?}/{size}");
                let data = marked(SECRET, size);
                put(&c, &b, &k, &data, Some(&mode))
                    .await?
                    .expect(&format!("{cipher}: PUT {k}"), Some(&mode))?;
                check_object(&c, &b, &k, &data, Some(&mode))
                    .await
                    .with_context(|| format!("cipher {cipher}"))?;
                for (first, last) in ranges(size as u64) {
                    let (got, _) = get(
                        &c,
                        &b,
                        &k,
                        Some(&mode),
                        Some(format!("bytes={first}-{last}")),
                    )
                    .await?;
                    same_bytes(
                        &format!("{cipher}: GET {k} bytes={first}-{last}"),
                        &got,
                        &data[first as usize..=last as usize],
                    )?;
                }
            }
        }
        let hits = files_holding(s.drives(), SECRET)?;
        ensure!(hits.is_empty(), "{cipher}: plaintext on disk in {hits:?}");
        recorded.push(recorded_ciphers(s.drives())?);
    }
    // The flag took effect: each run recorded one cipher, a different one.
    ensure!(
        recorded.iter().all(|r| r.len() == 1)
            && recorded[0] != recorded[1]
            && recorded[1] != recorded[2]
            && recorded[0] != recorded[2],
        "ciphers named in cairn.meta per run: {recorded:?}"
    );
    Ok(())
}

/// The `"cipher"` values named in the `cairn.meta` files under the drives.
fn recorded_ciphers(drives: &[PathBuf]) -> Result<std::collections::BTreeSet<String>> {
    const TAG: &[u8] = b"\"cipher\":\"";
    let mut files = Vec::new();
    for d in drives {
        files.extend(list_tree(d)?.into_iter().map(|rel| d.join(rel)));
    }
    let mut out = std::collections::BTreeSet::new();
    for f in files.iter().filter(|f| f.ends_with("cairn.meta")) {
        let bytes = std::fs::read(f)?;
        let mut rest = &bytes[..];
        while let Some(i) = rest.windows(TAG.len()).position(|w| w == TAG) {
            rest = &rest[i + TAG.len()..];
            let end = rest.iter().position(|&b| b == b'"').unwrap_or(0);
            out.insert(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
    }
    Ok(out)
}

/// A server started by hand (the harness binds to 127.0.0.1 only), here
/// on every address, so it can be reached from this machine's own
/// non-loopback address.
struct AnyAddrServer {
    _dir: tempfile::TempDir,
    child: Child,
    port: u16,
    user: String,
    password: String,
}

impl Drop for AnyAddrServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AnyAddrServer {
    async fn start() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("cairn-e2e-").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let drives: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("d{i}"))).collect();
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let user = "AKSSEINSECURETEST1".to_owned();
        let password = "sse-insecure-test-secret-0123456".to_owned();
        let mut cmd = Command::new(cairn_tests::cairn_bin()?);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAIRN_") {
                cmd.env_remove(&k);
            }
        }
        let child = cmd
            .arg("server")
            .arg("--address")
            .arg(format!("0.0.0.0:{port}"))
            .args(&drives)
            .current_dir(dir.path())
            .env("CAIRN_ROOT_USER", &user)
            .env("CAIRN_ROOT_PASSWORD", &password)
            .envs(kms_env())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let s = Self {
            _dir: dir,
            child,
            port,
            user,
            password,
        };
        let deadline = Instant::now() + cairn_tests::READY_TIMEOUT;
        loop {
            if let Ok(r) = raw::get(&format!("127.0.0.1:{port}"), "/_cairn/health/ready").await
                && r.status == 200
            {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!("server on 0.0.0.0:{port} not ready");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn client(&self, host: &str) -> Client {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(format!("http://{host}:{}", self.port))
            .force_path_style(true)
            .region(Region::new(cairn_tests::REGION))
            .credentials_provider(Credentials::new(
                &self.user,
                &self.password,
                None,
                None,
                "cairn-tests",
            ))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build();
        Client::from_conf(conf)
    }
}

/// This machine's first non-loopback IPv4 address (`hostname -I`).
fn non_loopback_ipv4() -> Result<std::net::Ipv4Addr> {
    let out = run_stdout(Command::new("hostname").arg("-I"))?;
    out.split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback() && !a.is_unspecified())
        .with_context(|| format!("no non-loopback IPv4 address in `hostname -I`: {out:?}"))
}

/// SSE-C over plain HTTP from another address is refused (the key would
/// cross the network in the clear); from loopback it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_refused_over_plain_http_from_non_loopback() -> Result<()> {
    let ip = non_loopback_ipv4()?;
    let s = AnyAddrServer::start().await?;
    let remote = s.client(&ip.to_string());
    let local = s.client("127.0.0.1");
    let b = bucket_name("sse-insecure");
    remote.create_bucket().bucket(&b).send().await?;
    let k1 = Mode::Customer(KEY1);
    let data = random_bytes(1000, 3);

    // Plain requests and SSE-S3 are fine from the other address.
    put(&remote, &b, "plain", &data, None).await?;
    put(&remote, &b, "s3", &data, Some(&Mode::S3))
        .await?
        .expect("SSE-S3 PUT from a non-loopback address", Some(&Mode::S3))?;

    let r = sse!(
        remote
            .put_object()
            .bucket(&b)
            .key("c")
            .body(ByteStream::from(data.clone())),
        &k1
    )
    .send()
    .await;
    expect_err(
        &format!("SSE-C PUT over plain HTTP from {ip}"),
        r,
        400,
        Some("InvalidRequest"),
    )?;
    let r = sse!(remote.create_multipart_upload().bucket(&b).key("c"), &k1)
        .send()
        .await;
    expect_err(
        &format!("SSE-C CreateMultipartUpload from {ip}"),
        r,
        400,
        Some("InvalidRequest"),
    )?;

    // The same request from loopback is served.
    put(&local, &b, "c", &data, Some(&k1))
        .await?
        .expect("SSE-C PUT over loopback", Some(&k1))?;
    check_object(&local, &b, "c", &data, Some(&k1)).await?;

    let r = sse_c!(remote.get_object().bucket(&b).key("c"), &k1)
        .send()
        .await;
    expect_err(
        &format!("SSE-C GET from {ip}"),
        r,
        400,
        Some("InvalidRequest"),
    )?;
    let r = sse_c!(remote.head_object().bucket(&b).key("c"), &k1)
        .send()
        .await;
    expect_err(&format!("SSE-C HEAD from {ip}"), r, 400, None)?;
    let r = sse_c_src!(
        remote
            .copy_object()
            .bucket(&b)
            .key("copy")
            .copy_source(format!("{b}/c")),
        &k1
    )
    .send()
    .await;
    expect_err(
        &format!("copy with an SSE-C source from {ip}"),
        r,
        400,
        Some("InvalidRequest"),
    )?;
    Ok(())
}

fn head_json(s: &Server, b: &str, k: &str, extra: &[&str]) -> Result<String> {
    run_stdout(
        s.tool("aws")
            .args(["s3api", "head-object", "--bucket", b, "--key", k])
            .args(extra)
            .args(["--endpoint-url", &s.endpoint()]),
    )
}

/// awscli: `aws s3 cp --sse AES256 | aws:kms | --sse-c` up (single and
/// multipart) and down, head-object output, a copy between modes, and
/// put/get-bucket-encryption.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awscli_modes() -> Result<()> {
    require_tool("aws")?;
    let s = start_kms().await?;
    let ep = s.endpoint();
    let d = s.dir();
    let b = bucket_name("sse-awscli");
    run(s
        .tool("aws")
        .args(["s3", "mb", &format!("s3://{b}"), "--endpoint-url", &ep]))?;
    let keyfile = d.join("sse-c.key");
    std::fs::write(&keyfile, KEY1)?;
    let key_arg = format!("fileb://{}", keyfile.display());

    let small = d.join("small.bin");
    std::fs::write(&small, random_bytes(100 * KIB + 3, 21))?;
    let big = d.join("big.bin");
    cairn_tests::data::write_random_file(&big, 20 * MIB as u64 + 5, 22)?;

    let modes: Vec<(&str, Vec<String>)> = vec![
        ("s3", vec!["--sse".into(), "AES256".into()]),
        (
            "kms",
            vec![
                "--sse".into(),
                "aws:kms".into(),
                "--sse-kms-key-id".into(),
                KMS_KEY.into(),
            ],
        ),
        (
            "c",
            vec![
                "--sse-c".into(),
                "AES256".into(),
                "--sse-c-key".into(),
                key_arg.clone(),
            ],
        ),
    ];
    for (name, args) in &modes {
        for f in [&small, &big] {
            let fname = f.file_name().and_then(|n| n.to_str()).unwrap_or("f");
            let url = format!("s3://{b}/{name}/{fname}");
            run(s
                .tool("aws")
                .args(["s3", "cp"])
                .arg(f)
                .arg(&url)
                .args(args)
                .args(["--endpoint-url", &ep, "--no-progress"]))?;
            let back = d.join(format!("{name}-{fname}.back"));
            let mut down = s.tool("aws");
            down.args(["s3", "cp", &url])
                .arg(&back)
                .args(["--endpoint-url", &ep, "--no-progress"]);
            if *name == "c" {
                down.args(["--sse-c", "AES256", "--sse-c-key", &key_arg]);
            }
            run(&mut down)?;
            assert_files_equal(f, &back)?;

            let k = format!("{name}/{fname}");
            let json = match *name {
                "c" => head_json(
                    &s,
                    &b,
                    &k,
                    &[
                        "--sse-customer-algorithm",
                        "AES256",
                        "--sse-customer-key",
                        &key_arg,
                    ],
                )?,
                _ => head_json(&s, &b, &k, &[])?,
            };
            let want: &[&str] = match *name {
                "s3" => &["\"ServerSideEncryption\": \"AES256\""],
                "kms" => &[
                    "\"ServerSideEncryption\": \"aws:kms\"",
                    "\"SSEKMSKeyId\": \"cairn-default\"",
                ],
                _ => &["\"SSECustomerAlgorithm\": \"AES256\""],
            };
            for w in want {
                ensure!(json.contains(w), "head-object {k}: {json}");
            }
        }
    }
    // An SSE-C object does not download without its key.
    let out = run_status(s.tool("aws").args([
        "s3",
        "cp",
        &format!("s3://{b}/c/big.bin"),
        "-",
        "--endpoint-url",
        &ep,
    ]))?;
    ensure!(
        !out.status.success(),
        "aws s3 cp of an SSE-C object without the key succeeded"
    );

    // Copy SSE-C -> SSE-KMS (multipart copy: awscli uses UploadPartCopy
    // above 8 MiB).
    run(s.tool("aws").args([
        "s3",
        "cp",
        &format!("s3://{b}/c/big.bin"),
        &format!("s3://{b}/copied/big.bin"),
        "--sse-c-copy-source",
        "AES256",
        "--sse-c-copy-source-key",
        &key_arg,
        "--sse",
        "aws:kms",
        "--sse-kms-key-id",
        KMS_KEY,
        "--endpoint-url",
        &ep,
        "--no-progress",
    ]))?;
    let json = head_json(&s, &b, "copied/big.bin", &[])?;
    ensure!(
        json.contains("\"ServerSideEncryption\": \"aws:kms\""),
        "head-object of the copy: {json}"
    );
    let back = d.join("copied.back");
    run(s
        .tool("aws")
        .args(["s3", "cp", &format!("s3://{b}/copied/big.bin")])
        .arg(&back)
        .args(["--endpoint-url", &ep, "--no-progress"]))?;
    assert_files_equal(&big, &back)?;

    // Bucket default encryption through s3api.
    run(s.tool("aws").args([
        "s3api",
        "put-bucket-encryption",
        "--bucket",
        &b,
        "--server-side-encryption-configuration",
        r#"{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}"#,
        "--endpoint-url",
        &ep,
    ]))?;
    let json = run_stdout(s.tool("aws").args([
        "s3api",
        "get-bucket-encryption",
        "--bucket",
        &b,
        "--endpoint-url",
        &ep,
    ]))?;
    ensure!(
        json.contains("\"SSEAlgorithm\": \"AES256\""),
        "get-bucket-encryption: {json}"
    );
    run(s
        .tool("aws")
        .args(["s3", "cp"])
        .arg(&small)
        .arg(format!("s3://{b}/defaulted.bin"))
        .args(["--endpoint-url", &ep, "--no-progress"]))?;
    let json = head_json(&s, &b, "defaulted.bin", &[])?;
    ensure!(
        json.contains("\"ServerSideEncryption\": \"AES256\""),
        "head-object of an object in an SSE-S3 bucket: {json}"
    );
    run(s.tool("aws").args([
        "s3api",
        "delete-bucket-encryption",
        "--bucket",
        &b,
        "--endpoint-url",
        &ep,
    ]))?;
    let out = run_status(s.tool("aws").args([
        "s3api",
        "get-bucket-encryption",
        "--bucket",
        &b,
        "--endpoint-url",
        &ep,
    ]))?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("ServerSideEncryptionConfigurationNotFoundError"),
        "get-bucket-encryption after delete: {err}"
    );
    Ok(())
}

/// Records the `Authorization` header of every request the SDK sends.
#[derive(Debug, Default, Clone)]
struct SeenAuthorization(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl aws_sdk_s3::config::Intercept for SeenAuthorization {
    fn name(&self) -> &'static str {
        "SeenAuthorization"
    }

    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        if let Some(a) = ctx.request().headers().get("authorization")
            && let Ok(mut seen) = self.0.lock()
        {
            seen.push(a.to_owned());
        }
        Ok(())
    }
}

/// With `CAIRN_LOG=trace` (every request is logged with its headers) the
/// log holds no secret a request carried: SSE-C keys (and their
/// copy-source twins), header and presigned signatures (the one sent, and
/// the one expected when a tampered URL is refused), session tokens. The
/// key MD5s, which are not secrets, may stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_log_holds_no_secrets() -> Result<()> {
    let s = Server::start(StartOpts {
        env: vec![("CAIRN_LOG".into(), "trace".into())],
        ..StartOpts::default()
    })
    .await?;
    let seen = SeenAuthorization::default();
    let c = Client::from_conf(s.s3_config().interceptor(seen.clone()).build());
    let b = new_bucket(&c, "logsecret").await?;
    let (k1, k2) = (Mode::Customer(KEY1), Mode::Customer(KEY2));
    let data = b"sse-c data whose keys must stay out of the log".to_vec();
    put(&c, &b, "o", &data, Some(&k1)).await?;
    let (got, _) = get(&c, &b, "o", Some(&k1), None).await?;
    ensure!(got == data, "SSE-C GET returned other bytes");
    sse_c_src!(sse!(c.copy_object(), &k2), &k1)
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/o"))
        .send()
        .await?;

    // A presigned GET, and the same URL with its signature changed (refused:
    // the server computes the right signature to compare).
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(600))?;
    let pre = sse_c!(c.get_object().bucket(&b).key("o"), &k1)
        .presigned(cfg)
        .await?;
    let headers: Vec<(&str, &str)> = pre.headers().collect();
    let r = raw::send_url("GET", pre.uri(), &headers, b"").await?;
    ensure!(r.status == 200, "presigned SSE-C GET: {}", r.describe());
    let url = pre.uri().to_string();
    let presig = url
        .split_once("X-Amz-Signature=")
        .map(|(_, v)| v.split('&').next().unwrap_or(v).to_owned())
        .context("no X-Amz-Signature in the presigned URL")?;
    let tampered = url.replace(&presig, &"0".repeat(presig.len()));
    let r = raw::send_url("GET", &tampered, &headers, b"").await?;
    ensure!(r.status == 403, "tampered presigned GET: {}", r.describe());

    // A session token (this server issues none: refused, but logged first).
    let token = "SessionTokenThatMustNotBeLogged0123456789";
    let with_token = Client::from_conf(
        s.s3_config()
            .credentials_provider(Credentials::new(
                s.access_key(),
                s.secret_key(),
                Some(token.into()),
                None,
                "token",
            ))
            .build(),
    );
    let _ = with_token.head_object().bucket(&b).key("o").send().await;

    let log = s.full_log();
    ensure!(
        log.contains("x-amz-server-side-encryption-customer-key-md5"),
        "the debug log does not show request headers at all:\n{}",
        s.log()
    );
    let mut secrets = vec![
        ("SSE-C key 1".to_owned(), B64.encode(KEY1)),
        ("SSE-C key 2".to_owned(), B64.encode(KEY2)),
        ("presigned signature".to_owned(), presig),
        ("session token".to_owned(), token.to_owned()),
    ];
    let auths = seen.0.lock().map(|v| v.clone()).unwrap_or_default();
    ensure!(
        auths.len() >= 4,
        "the SDK sent {} signed requests",
        auths.len()
    );
    for a in auths {
        let sig = a
            .split_once("Signature=")
            .map(|(_, s)| s.to_owned())
            .context("no Signature= in the SDK's Authorization")?;
        secrets.push((format!("header signature of {a}"), sig));
    }
    for (what, secret) in &secrets {
        if let Some(line) = log.lines().find(|l| l.contains(secret.as_str())) {
            bail!("the debug log holds the {what}: {line}");
        }
    }
    ensure!(
        log.contains(&key_md5(&KEY1)),
        "key MD5s may (and do) stay in the log"
    );
    Ok(())
}
