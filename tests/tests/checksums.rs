//! Checksums of multipart uploads (COMPOSITE and FULL_OBJECT, each
//! algorithm AWS allows), their errors, the object checksum on GET/HEAD
//! with `x-amz-checksum-mode`, CopyObject's checksum, and
//! GetObjectAttributes (ETag, Checksum, ObjectParts with paging,
//! StorageClass, ObjectSize) on plain, versioned and SSE-C objects, with
//! aws-sdk-s3, boto3 and awscli. Expected values are computed here with
//! the algorithms' own crates, never by the server's code.

use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ObjectAttributes,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_tests::cmd::{require_tool, run_stdout};
use cairn_tests::data::{MIB, random_bytes};
use cairn_tests::{Server, StartOpts, expect_err, new_bucket, new_versioned_bucket};
use md5::{Digest as _, Md5};

fn sum(alg: &ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
    match alg {
        ChecksumAlgorithm::Crc32 => crc32fast::hash(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Crc32C => crc32c::crc32c(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Crc64Nvme => {
            let mut d = crc64fast_nvme::Digest::new();
            d.write(data);
            d.sum64().to_be_bytes().to_vec()
        }
        ChecksumAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        _ => sha2::Sha256::digest(data).to_vec(),
    }
}

fn sum64(alg: &ChecksumAlgorithm, data: &[u8]) -> String {
    B64.encode(sum(alg, data))
}

/// COMPOSITE: the checksum of the parts' raw checksums, `-N`.
fn composite(alg: &ChecksumAlgorithm, parts: &[Vec<u8>]) -> String {
    let raw: Vec<u8> = parts.iter().flat_map(|p| sum(alg, p)).collect();
    format!("{}-{}", sum64(alg, &raw), parts.len())
}

/// The value of `alg` among a response's five checksum fields.
macro_rules! pick {
    ($r:expr, $alg:expr) => {{
        let r = &$r;
        match $alg {
            ChecksumAlgorithm::Crc32 => r.checksum_crc32(),
            ChecksumAlgorithm::Crc32C => r.checksum_crc32_c(),
            ChecksumAlgorithm::Crc64Nvme => r.checksum_crc64_nvme(),
            ChecksumAlgorithm::Sha1 => r.checksum_sha1(),
            _ => r.checksum_sha256(),
        }
        .map(str::to_owned)
    }};
}

/// A CompletedPart carrying `alg`'s checksum `v`.
fn completed(
    n: i32,
    etag: Option<String>,
    alg: &ChecksumAlgorithm,
    v: Option<String>,
) -> CompletedPart {
    let b = CompletedPart::builder().part_number(n).set_e_tag(etag);
    match alg {
        ChecksumAlgorithm::Crc32 => b.set_checksum_crc32(v),
        ChecksumAlgorithm::Crc32C => b.set_checksum_crc32_c(v),
        ChecksumAlgorithm::Crc64Nvme => b.set_checksum_crc64_nvme(v),
        ChecksumAlgorithm::Sha1 => b.set_checksum_sha1(v),
        _ => b.set_checksum_sha256(v),
    }
    .build()
}

/// An upload of `parts` with `alg`/`kind`; the CompletedParts as the SDK
/// user lists them (with each part's checksum as UploadPart answered it).
async fn upload(
    c: &Client,
    b: &str,
    key: &str,
    alg: &ChecksumAlgorithm,
    kind: Option<ChecksumType>,
    parts: &[Vec<u8>],
) -> Result<(String, Vec<CompletedPart>)> {
    let created = c
        .create_multipart_upload()
        .bucket(b)
        .key(key)
        .checksum_algorithm(alg.clone())
        .set_checksum_type(kind.clone())
        .send()
        .await
        .with_context(|| format!("create {alg:?} {kind:?}"))?;
    ensure!(
        created.checksum_algorithm() == Some(alg),
        "create answered {:?}",
        created.checksum_algorithm()
    );
    let id = created.upload_id().unwrap_or_default().to_owned();
    let mut done = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket(b)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(alg.clone())
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .with_context(|| format!("part {n} with {alg:?}"))?;
        let got = pick!(r, alg);
        ensure!(
            got.as_deref() == Some(sum64(alg, data).as_str()),
            "part {n} {alg:?}: answered {got:?}"
        );
        done.push(completed(n, r.e_tag().map(str::to_owned), alg, got));
    }
    Ok((id, done))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_checksums_every_algorithm_and_type() -> Result<()> {
    let mut s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "mpsum").await?;
    let parts = vec![random_bytes(5 * MIB, 1), random_bytes(MIB / 3, 2)];
    let whole: Vec<u8> = parts.concat();
    let cases = [
        (ChecksumAlgorithm::Crc32, ChecksumType::Composite),
        (ChecksumAlgorithm::Crc32C, ChecksumType::Composite),
        (ChecksumAlgorithm::Sha1, ChecksumType::Composite),
        (ChecksumAlgorithm::Sha256, ChecksumType::Composite),
        (ChecksumAlgorithm::Crc32, ChecksumType::FullObject),
        (ChecksumAlgorithm::Crc32C, ChecksumType::FullObject),
        (ChecksumAlgorithm::Crc64Nvme, ChecksumType::FullObject),
    ];
    let mut stored = Vec::new();
    for (alg, kind) in cases {
        let key = format!("{}-{}", alg.as_str(), kind.as_str());
        let (id, done) = upload(&c, &b, &key, &alg, Some(kind.clone()), &parts).await?;
        // ListParts returns each part's checksum
        let lp = c
            .list_parts()
            .bucket(&b)
            .key(&key)
            .upload_id(&id)
            .send()
            .await?;
        for (p, data) in lp.parts().iter().zip(&parts) {
            ensure!(
                pick!(p, &alg).as_deref() == Some(sum64(&alg, data).as_str()),
                "{key}: ListParts {p:?}"
            );
        }
        let want = match kind {
            ChecksumType::Composite => composite(&alg, &parts),
            _ => sum64(&alg, &whole),
        };
        let mut complete = c
            .complete_multipart_upload()
            .bucket(&b)
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            );
        if kind == ChecksumType::FullObject {
            // the client names the whole object's CRC; it is checked
            complete = complete
                .checksum_type(kind.clone())
                .set_checksum_crc32((alg == ChecksumAlgorithm::Crc32).then(|| sum64(&alg, &whole)))
                .set_checksum_crc32_c(
                    (alg == ChecksumAlgorithm::Crc32C).then(|| sum64(&alg, &whole)),
                )
                .set_checksum_crc64_nvme(
                    (alg == ChecksumAlgorithm::Crc64Nvme).then(|| sum64(&alg, &whole)),
                );
        }
        let r = complete
            .send()
            .await
            .with_context(|| format!("complete {key}"))?;
        ensure!(
            pick!(r, &alg).as_deref() == Some(want.as_str()) && r.checksum_type() == Some(&kind),
            "{key}: complete answered {:?} {:?}, want {want}",
            pick!(r, &alg),
            r.checksum_type()
        );
        stored.push((key, alg, kind, want));
    }
    // the checksums are kept with the object: HEAD and GET with checksum
    // mode, before and after a restart
    for round in ["before restart", "after restart"] {
        let c = s.s3();
        for (key, alg, kind, want) in &stored {
            let h = c
                .head_object()
                .bucket(&b)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await?;
            ensure!(
                pick!(h, alg).as_deref() == Some(want.as_str()) && h.checksum_type() == Some(kind),
                "{round} {key}: HEAD {:?} {:?}",
                pick!(h, alg),
                h.checksum_type()
            );
            let g = c
                .get_object()
                .bucket(&b)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await?;
            ensure!(
                pick!(g, alg).as_deref() == Some(want.as_str()),
                "{round} {key}: GET {:?}",
                pick!(g, alg)
            );
            ensure!(g.body.collect().await?.into_bytes().as_ref() == whole.as_slice());
        }
        if round == "before restart" {
            s.restart().await?;
        }
    }
    let c = s.s3();
    // without checksum mode, and for a range, no whole-object checksum
    let (key, alg, _, _) = &stored[0];
    let h = c.head_object().bucket(&b).key(key).send().await?;
    ensure!(pick!(h, alg).is_none(), "HEAD without checksum mode: {h:?}");
    let g = c
        .get_object()
        .bucket(&b)
        .key(key)
        .range("bytes=0-99")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    ensure!(pick!(g, alg).is_none(), "range GET: {:?}", pick!(g, alg));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_checksum_errors() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "mperr").await?;
    let parts = vec![random_bytes(5 * MIB, 3), random_bytes(1000, 4)];
    let sha = ChecksumAlgorithm::Sha256;

    // types AWS does not allow
    for (alg, kind) in [
        (ChecksumAlgorithm::Sha256, ChecksumType::FullObject),
        (ChecksumAlgorithm::Sha1, ChecksumType::FullObject),
        (ChecksumAlgorithm::Crc64Nvme, ChecksumType::Composite),
    ] {
        expect_err(
            &format!("create with {alg:?} {kind:?}"),
            c.create_multipart_upload()
                .bucket(&b)
                .key("k")
                .checksum_algorithm(alg.clone())
                .checksum_type(kind.clone())
                .send()
                .await,
            400,
            Some("InvalidRequest"),
        )?;
    }

    let (id, done) = upload(&c, &b, "k", &sha, None, &parts).await?;
    // a part whose body does not match its checksum: BadDigest, and the
    // part stored before stays
    expect_err(
        "part with a wrong SHA256",
        c.upload_part()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .part_number(2)
            .checksum_sha256(sum64(&sha, b"other"))
            .body(ByteStream::from(parts[1].clone()))
            .send()
            .await,
        400,
        Some("BadDigest"),
    )?;
    // a part with another algorithm than the upload's
    expect_err(
        "part with CRC32 in a SHA256 upload",
        c.upload_part()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .part_number(2)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(parts[1].clone()))
            .send()
            .await,
        400,
        Some("InvalidRequest"),
    )?;
    let lp = c
        .list_parts()
        .bucket(&b)
        .key("k")
        .upload_id(&id)
        .send()
        .await?;
    ensure!(
        lp.parts().get(1).and_then(|p| p.checksum_sha256())
            == Some(sum64(&sha, &parts[1]).as_str()),
        "part 2 after refused re-uploads: {lp:?}"
    );

    let complete = |parts: Vec<CompletedPart>| {
        c.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
    };
    // a COMPOSITE complete must list each part's checksum
    let mut missing = done.clone();
    missing[1] = CompletedPart::builder()
        .part_number(2)
        .set_e_tag(done[1].e_tag().map(str::to_owned))
        .build();
    expect_err(
        "complete without part 2's checksum",
        complete(missing).send().await,
        400,
        Some("InvalidRequest"),
    )?;
    // a part checksum that differs from the stored one
    let mut wrong = done.clone();
    wrong[1] = completed(
        2,
        done[1].e_tag().map(str::to_owned),
        &sha,
        Some(sum64(&sha, b"not the part")),
    );
    expect_err(
        "complete with a wrong part checksum",
        complete(wrong).send().await,
        400,
        Some("InvalidPart"),
    )?;
    // the wrong type, and a wrong object checksum
    expect_err(
        "complete naming FULL_OBJECT for a COMPOSITE upload",
        complete(done.clone())
            .checksum_type(ChecksumType::FullObject)
            .send()
            .await,
        400,
        Some("BadDigest"),
    )?;
    expect_err(
        "complete with a wrong object checksum",
        complete(done.clone())
            .checksum_sha256(format!("{}-2", sum64(&sha, b"wrong")))
            .send()
            .await,
        400,
        Some("BadDigest"),
    )?;
    expect_err(
        "HEAD after refused completes",
        c.head_object().bucket(&b).key("k").send().await,
        404,
        None,
    )?;
    // the upload is intact: the right list completes it
    let r = complete(done)
        .checksum_sha256(composite(&sha, &parts))
        .send()
        .await
        .context("complete with the right checksums")?;
    ensure!(r.checksum_sha256() == Some(composite(&sha, &parts).as_str()));

    // a FULL_OBJECT complete whose CRC disagrees with the parts': nothing
    let crc = ChecksumAlgorithm::Crc64Nvme;
    let (id, done) = upload(&c, &b, "full", &crc, None, &parts).await?;
    expect_err(
        "FULL_OBJECT complete with a wrong CRC64NVME",
        c.complete_multipart_upload()
            .bucket(&b)
            .key("full")
            .upload_id(&id)
            .checksum_crc64_nvme(sum64(&crc, b"wrong"))
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await,
        400,
        Some("BadDigest"),
    )?;
    expect_err(
        "HEAD after the refused FULL_OBJECT complete",
        c.head_object().bucket(&b).key("full").send().await,
        404,
        None,
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_keeps_or_changes_the_checksum() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "cpsum").await?;
    let data = random_bytes(100_000, 9);
    let sha = ChecksumAlgorithm::Sha256;
    c.put_object()
        .bucket(&b)
        .key("src")
        .checksum_algorithm(sha.clone())
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    // a plain copy keeps the algorithm (recomputed over the bytes)
    let r = c
        .copy_object()
        .bucket(&b)
        .key("same")
        .copy_source(format!("{b}/src"))
        .send()
        .await?;
    let got = r.copy_object_result().and_then(|x| x.checksum_sha256());
    ensure!(got == Some(sum64(&sha, &data).as_str()), "copy: {got:?}");
    // x-amz-checksum-algorithm picks another
    let crc = ChecksumAlgorithm::Crc32C;
    c.copy_object()
        .bucket(&b)
        .key("other")
        .copy_source(format!("{b}/src"))
        .checksum_algorithm(crc.clone())
        .send()
        .await
        .context("copy with CRC32C")?;
    let h = c
        .head_object()
        .bucket(&b)
        .key("other")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    ensure!(
        h.checksum_crc32_c() == Some(sum64(&crc, &data).as_str()) && h.checksum_sha256().is_none(),
        "copy with CRC32C: {h:?}"
    );
    // a composite source becomes a whole-object checksum of the copy
    let parts = vec![random_bytes(5 * MIB, 10), random_bytes(10, 11)];
    let (id, done) = upload(&c, &b, "mp", &sha, None, &parts).await?;
    c.complete_multipart_upload()
        .bucket(&b)
        .key("mp")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await?;
    c.copy_object()
        .bucket(&b)
        .key("mp-copy")
        .copy_source(format!("{b}/mp"))
        .send()
        .await?;
    let h = c
        .head_object()
        .bucket(&b)
        .key("mp-copy")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    ensure!(
        h.checksum_sha256() == Some(sum64(&sha, &parts.concat()).as_str())
            && h.checksum_type() == Some(&ChecksumType::FullObject),
        "copy of a composite object: {h:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_attributes() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_versioned_bucket(&c, "attrs").await?;
    let all = [
        ObjectAttributes::Etag,
        ObjectAttributes::Checksum,
        ObjectAttributes::ObjectParts,
        ObjectAttributes::StorageClass,
        ObjectAttributes::ObjectSize,
    ];

    // a single PUT: no parts
    let one = b"single put".to_vec();
    let put = c
        .put_object()
        .bucket(&b)
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(one.clone()))
        .send()
        .await?;
    let v1 = put.version_id().unwrap_or_default().to_owned();
    let a = c
        .get_object_attributes()
        .bucket(&b)
        .key("k")
        .set_object_attributes(Some(all.to_vec()))
        .send()
        .await?;
    let md5 = hex::encode(Md5::digest(&one));
    ensure!(
        a.e_tag().map(|e| e.trim_matches('"')) == Some(md5.as_str())
            && a.object_size() == Some(one.len() as i64)
            && a.storage_class().map(|c| c.as_str()) == Some("STANDARD")
            && a.checksum().and_then(|x| x.checksum_crc32())
                == Some(sum64(&ChecksumAlgorithm::Crc32, &one).as_str())
            && a.object_parts().is_none()
            && a.version_id() == Some(v1.as_str()),
        "single PUT: {a:?}"
    );

    // a multipart object over it: parts paged two at a time
    let sha = ChecksumAlgorithm::Sha256;
    let parts = vec![
        random_bytes(5 * MIB, 20),
        random_bytes(5 * MIB + 1, 21),
        random_bytes(777, 22),
    ];
    let (id, done) = upload(&c, &b, "k", &sha, None, &parts).await?;
    let r = c
        .complete_multipart_upload()
        .bucket(&b)
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await?;
    let v2 = r.version_id().unwrap_or_default().to_owned();
    let a = c
        .get_object_attributes()
        .bucket(&b)
        .key("k")
        .set_object_attributes(Some(all.to_vec()))
        .max_parts(2)
        .send()
        .await?;
    let op = a.object_parts().context("no ObjectParts")?;
    ensure!(
        op.total_parts_count() == Some(3)
            && op.is_truncated() == Some(true)
            && op.next_part_number_marker() == Some("2")
            && op.parts().len() == 2
            && a.object_size() == Some(parts.concat().len() as i64)
            && a.checksum().and_then(|x| x.checksum_sha256())
                == Some(composite(&sha, &parts).as_str())
            && a.version_id() == Some(v2.as_str()),
        "multipart, page 1: {a:?}"
    );
    for (p, data) in op.parts().iter().zip(&parts) {
        ensure!(
            p.size() == Some(data.len() as i64)
                && p.checksum_sha256() == Some(sum64(&sha, data).as_str()),
            "part {p:?}"
        );
    }
    let a = c
        .get_object_attributes()
        .bucket(&b)
        .key("k")
        .object_attributes(ObjectAttributes::ObjectParts)
        .max_parts(2)
        .part_number_marker("2")
        .send()
        .await?;
    let op = a.object_parts().context("no ObjectParts on page 2")?;
    ensure!(
        op.is_truncated() == Some(false)
            && op.parts().len() == 1
            && op.parts()[0].part_number() == Some(3)
            && op.parts()[0].size() == Some(777)
            && a.e_tag().is_none()
            && a.object_size().is_none(),
        "multipart, page 2: {a:?}"
    );

    // the older version by id
    let a = c
        .get_object_attributes()
        .bucket(&b)
        .key("k")
        .version_id(&v1)
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await?;
    ensure!(
        a.object_size() == Some(one.len() as i64),
        "version 1: {a:?}"
    );

    // a delete marker: 404 with x-amz-delete-marker
    c.delete_object().bucket(&b).key("k").send().await?;
    let r = s
        .raw()
        .send(
            "GET",
            &format!("/{b}/k?attributes"),
            &[("x-amz-object-attributes", "ETag")],
            b"",
        )
        .await?;
    ensure!(
        r.status == 404 && r.header("x-amz-delete-marker") == Some("true"),
        "attributes of a delete marker: {}",
        r.describe()
    );
    expect_err(
        "attribute name that does not exist",
        c.get_object_attributes()
            .bucket(&b)
            .key("k")
            .version_id(&v1)
            .object_attributes(ObjectAttributes::from("Body"))
            .send()
            .await,
        400,
        Some("InvalidArgument"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_attributes_of_sse_c_objects() -> Result<()> {
    let s = Server::start(StartOpts::default()).await?;
    let c = s.s3();
    let b = new_bucket(&c, "attrsc").await?;
    let key = [0x42u8; 32];
    let key_b64 = B64.encode(key);
    let key_md5 = B64.encode(Md5::digest(key));
    let data = random_bytes(70_000, 30);
    c.put_object()
        .bucket(&b)
        .key("secret")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    expect_err(
        "attributes of an SSE-C object without its key",
        c.get_object_attributes()
            .bucket(&b)
            .key("secret")
            .object_attributes(ObjectAttributes::ObjectSize)
            .send()
            .await,
        400,
        Some("InvalidRequest"),
    )?;
    let a = c
        .get_object_attributes()
        .bucket(&b)
        .key("secret")
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::Checksum)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await?;
    ensure!(
        a.object_size() == Some(data.len() as i64)
            && a.checksum().and_then(|x| x.checksum_crc32_c())
                == Some(sum64(&ChecksumAlgorithm::Crc32C, &data).as_str()),
        "SSE-C attributes: {a:?}"
    );
    // the checksum of an SSE-C object is of its plaintext, on HEAD too
    let h = c
        .head_object()
        .bucket(&b)
        .key("secret")
        .checksum_mode(ChecksumMode::Enabled)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await?;
    ensure!(h.checksum_crc32_c() == Some(sum64(&ChecksumAlgorithm::Crc32C, &data).as_str()));
    Ok(())
}

/// boto3's managed upload (s3transfer: multipart with its default
/// checksum) and awscli's get-object-attributes see the same checksums.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_awscli() -> Result<()> {
    require_tool("python3")?;
    require_tool("aws")?;
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sumpy").await?;
    let data = random_bytes(12 * MIB + 5, 40);
    let path = s.dir().join("big.bin");
    std::fs::write(&path, &data)?;
    let script = r#"
import sys, boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
ep, user, secret, b, path = sys.argv[1:6]
c = boto3.client("s3", endpoint_url=ep, aws_access_key_id=user,
                 aws_secret_access_key=secret, region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"}))
cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
c.upload_file(path, b, "big", Config=cfg, ExtraArgs={"ChecksumAlgorithm": "SHA256"})
h = c.head_object(Bucket=b, Key="big", ChecksumMode="ENABLED")
print(h["ChecksumSHA256"], h["ChecksumType"])
"#;
    let out = run_stdout(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(s.endpoint())
            .arg(s.access_key())
            .arg(s.secret_key())
            .arg(&b)
            .arg(&path),
    )?;
    let sha = ChecksumAlgorithm::Sha256;
    let chunks: Vec<Vec<u8>> = data.chunks(5 * MIB).map(<[u8]>::to_vec).collect();
    let want = format!("{} COMPOSITE\n", composite(&sha, &chunks));
    ensure!(out == want, "boto3: {out:?}, want {want:?}");

    let out = run_stdout(s.tool("aws").args([
        "s3api",
        "get-object-attributes",
        "--endpoint-url",
        &s.endpoint(),
        "--bucket",
        &b,
        "--key",
        "big",
        "--object-attributes",
        "ObjectParts",
        "Checksum",
        "ObjectSize",
        "--max-parts",
        "1",
    ]))?;
    let v: serde_json::Value = serde_json::from_str(&out).context(out.clone())?;
    ensure!(
        v["ObjectSize"] == data.len()
            && v["ObjectParts"]["TotalPartsCount"] == 3
            && v["ObjectParts"]["IsTruncated"] == true
            && v["ObjectParts"]["Parts"][0]["Size"] == 5 * MIB
            && v["ObjectParts"]["Parts"][0]["ChecksumSHA256"] == sum64(&sha, &chunks[0]).as_str()
            && v["Checksum"]["ChecksumSHA256"] == composite(&sha, &chunks).as_str(),
        "awscli: {v}"
    );
    Ok(())
}

/// The NAS gateway: FULL_OBJECT and COMPOSITE multipart checksums are kept
/// (HEAD with checksum mode); GetObjectAttributes answers every attribute
/// but a multipart object's part list, which it does not keep (501).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_gateway_checksums_and_attributes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let share = dir.path().join("share");
    std::fs::create_dir_all(&share)?;
    let s = Server::start(StartOpts::gateway([
        "nas".to_string(),
        share.display().to_string(),
    ]))
    .await?;
    let c = s.s3();
    let b = new_bucket(&c, "nassum").await?;
    let parts = vec![random_bytes(5 * MIB, 50), random_bytes(4321, 51)];
    let whole = parts.concat();
    for (alg, kind) in [
        (ChecksumAlgorithm::Crc32, ChecksumType::FullObject),
        (ChecksumAlgorithm::Sha1, ChecksumType::Composite),
    ] {
        let key = kind.as_str().to_owned();
        let (id, done) = upload(&c, &b, &key, &alg, Some(kind.clone()), &parts).await?;
        c.complete_multipart_upload()
            .bucket(&b)
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("complete {key}"))?;
        let want = match kind {
            ChecksumType::Composite => composite(&alg, &parts),
            _ => sum64(&alg, &whole),
        };
        let h = c
            .head_object()
            .bucket(&b)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await?;
        ensure!(
            pick!(h, &alg).as_deref() == Some(want.as_str()) && h.checksum_type() == Some(&kind),
            "NAS {key}: HEAD {h:?}"
        );
        let a = c
            .get_object_attributes()
            .bucket(&b)
            .key(&key)
            .object_attributes(ObjectAttributes::ObjectSize)
            .object_attributes(ObjectAttributes::Checksum)
            .send()
            .await?;
        ensure!(
            a.object_size() == Some(whole.len() as i64) && a.checksum().is_some(),
            "NAS {key}: attributes {a:?}"
        );
        expect_err(
            "NAS: a multipart object's part list",
            c.get_object_attributes()
                .bucket(&b)
                .key(&key)
                .object_attributes(ObjectAttributes::ObjectParts)
                .send()
                .await,
            501,
            Some("NotImplemented"),
        )?;
    }
    Ok(())
}

/// An SSE-C multipart upload with a FULL_OBJECT CRC32C: the parts and the
/// object's attributes need the key; the checksums are of the plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_multipart_checksums_and_parts() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sumsc").await?;
    let key = [0x24u8; 32];
    let (k64, kmd5) = (B64.encode(key), B64.encode(Md5::digest(key)));
    let alg = ChecksumAlgorithm::Crc32C;
    let parts = [random_bytes(5 * MIB, 60), random_bytes(999, 61)];
    let id = c
        .create_multipart_upload()
        .bucket(&b)
        .key("enc")
        .checksum_algorithm(alg.clone())
        .checksum_type(ChecksumType::FullObject)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k64)
        .sse_customer_key_md5(&kmd5)
        .send()
        .await?
        .upload_id()
        .unwrap_or_default()
        .to_owned();
    let mut done = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket(&b)
            .key("enc")
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(alg.clone())
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&k64)
            .sse_customer_key_md5(&kmd5)
            .body(ByteStream::from(data.clone()))
            .send()
            .await?;
        done.push(completed(
            n,
            r.e_tag().map(str::to_owned),
            &alg,
            pick!(r, &alg),
        ));
    }
    let whole = parts.concat();
    c.complete_multipart_upload()
        .bucket(&b)
        .key("enc")
        .upload_id(&id)
        .checksum_crc32_c(sum64(&alg, &whole))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k64)
        .sse_customer_key_md5(&kmd5)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .context("complete of an SSE-C upload")?;
    expect_err(
        "attributes of an SSE-C multipart object without the key",
        c.get_object_attributes()
            .bucket(&b)
            .key("enc")
            .object_attributes(ObjectAttributes::ObjectParts)
            .send()
            .await,
        400,
        Some("InvalidRequest"),
    )?;
    let a = c
        .get_object_attributes()
        .bucket(&b)
        .key("enc")
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::Checksum)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k64)
        .sse_customer_key_md5(&kmd5)
        .send()
        .await?;
    let op = a.object_parts().context("no ObjectParts")?;
    ensure!(
        a.checksum().and_then(|x| x.checksum_crc32_c()) == Some(sum64(&alg, &whole).as_str())
            && op.total_parts_count() == Some(2)
            && op.parts().len() == 2
            && op.parts()[1].size() == Some(999)
            && op.parts()[1].checksum_crc32_c() == Some(sum64(&alg, &parts[1]).as_str()),
        "SSE-C multipart attributes: {a:?}"
    );
    Ok(())
}
