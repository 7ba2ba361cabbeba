//! GET/HEAD with `partNumber=N` as AWS answers them: the part's bytes
//! (206 with its Content-Range) and `x-amz-mp-parts-count` for multipart
//! objects, part 1 = the whole object for a single PUT, 416
//! InvalidPartNumber past the parts, 400 InvalidArgument for a number out
//! of 1..=10000 or with a Range.

use anyhow::{Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use cairn_tests::data::random_bytes;
use cairn_tests::{Server, bucket_name, expect_err};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_number_reads() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("parts");
    c.create_bucket().bucket(&b).send().await?;
    c.put_object()
        .bucket(&b)
        .key("plain")
        .body(ByteStream::from_static(b"whole object"))
        .send()
        .await?;
    let g = c
        .get_object()
        .bucket(&b)
        .key("plain")
        .part_number(1)
        .send()
        .await?;
    ensure!(g.content_length == Some(12));
    ensure!(g.body.collect().await?.into_bytes().as_ref() == b"whole object");
    expect_err(
        "part 2 of a single-PUT object",
        c.get_object()
            .bucket(&b)
            .key("plain")
            .part_number(2)
            .send()
            .await,
        416,
        Some("InvalidPartNumber"),
    )?;

    let sizes = [5 << 20, (5 << 20) + 3, 1234];
    let id = c
        .create_multipart_upload()
        .bucket(&b)
        .key("mp")
        .send()
        .await?
        .upload_id
        .unwrap_or_default();
    let mut datas = Vec::new();
    let mut parts = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let data = random_bytes(*n, 50 + i as u64);
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket(&b)
            .key("mp")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(r.e_tag)
                .build(),
        );
        datas.push(data);
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
    let total: usize = sizes.iter().sum();
    let g = c
        .get_object()
        .bucket(&b)
        .key("mp")
        .part_number(2)
        .send()
        .await?;
    ensure!(g.parts_count == Some(3), "parts count {:?}", g.parts_count);
    let want_range = format!("bytes {}-{}/{total}", sizes[0], sizes[0] + sizes[1] - 1);
    ensure!(
        g.content_range.as_deref() == Some(want_range.as_str()),
        "content-range {:?}",
        g.content_range
    );
    ensure!(g.content_length == Some(sizes[1] as i64));
    ensure!(g.body.collect().await?.into_bytes().as_ref() == datas[1].as_slice());
    let h = c
        .head_object()
        .bucket(&b)
        .key("mp")
        .part_number(3)
        .send()
        .await?;
    ensure!(
        h.parts_count == Some(3) && h.content_length == Some(1234),
        "{h:?}"
    );
    let g = c
        .get_object()
        .bucket(&b)
        .key("mp")
        .part_number(1)
        .send()
        .await?;
    ensure!(g.body.collect().await?.into_bytes().as_ref() == datas[0].as_slice());
    expect_err(
        "part 4 of 3",
        c.get_object()
            .bucket(&b)
            .key("mp")
            .part_number(4)
            .send()
            .await,
        416,
        Some("InvalidPartNumber"),
    )?;
    expect_err(
        "HEAD part 4 of 3",
        c.head_object()
            .bucket(&b)
            .key("mp")
            .part_number(4)
            .send()
            .await,
        416,
        None,
    )?;
    for n in [0, 10_001] {
        expect_err(
            "part number out of range",
            c.get_object()
                .bucket(&b)
                .key("mp")
                .part_number(n)
                .send()
                .await,
            400,
            Some("InvalidArgument"),
        )?;
    }
    expect_err(
        "partNumber with a Range",
        c.get_object()
            .bucket(&b)
            .key("mp")
            .part_number(1)
            .range("bytes=0-1")
            .send()
            .await,
        400,
        Some("InvalidArgument"),
    )?;
    Ok(())
}
