//! GET/HEAD with `partNumber=N` as AWS answers them: the part's bytes
//! (206 with its Content-Range) and `x-amz-mp-parts-count` for multipart
//! objects, part 1 = the whole object for a single PUT, 416
//! InvalidPartNumber past the parts, 400 InvalidArgument for a number out
//! of 1..=10000 or with a Range.

use anyhow::{Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::data::random_bytes;
use cairn_tests::{Server, bucket_name, expect_err, multipart};

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
    let datas: Vec<Vec<u8>> = sizes
        .iter()
        .zip(50..)
        .map(|(n, seed)| random_bytes(*n, seed))
        .collect();
    let parts: Vec<&[u8]> = datas.iter().map(Vec::as_slice).collect();
    multipart::put(&c, &b, "mp", &parts).await?;
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

/// HEAD `?partNumber=N` of a multipart object answers 206 with the part's
/// Content-Range, as GET does; an empty last part reads as no bytes (206,
/// Content-Length 0), never the whole object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_part_is_206_and_empty_parts_are_empty() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("hparts");
    c.create_bucket().bucket(&b).send().await?;
    let first = random_bytes(5 << 20, 3);
    let second = random_bytes(777, 4);
    multipart::put(&c, &b, "mp", &[&first, &second]).await?;
    let total = first.len() + second.len();
    let raw = s.raw();
    let r = raw
        .send("HEAD", &format!("/{b}/mp?partNumber=2"), &[], b"")
        .await?;
    let want = format!("bytes {}-{}/{total}", first.len(), total - 1);
    ensure!(
        r.status == 206
            && r.header("content-range") == Some(want.as_str())
            && r.header("content-length") == Some("777")
            && r.header("x-amz-mp-parts-count") == Some("2"),
        "HEAD part 2: {} {:?}",
        r.status,
        r.headers
    );
    let h = c
        .head_object()
        .bucket(&b)
        .key("mp")
        .part_number(1)
        .send()
        .await?;
    ensure!(
        h.content_length == Some(5 << 20)
            && h.content_range.as_deref()
                == Some(format!("bytes 0-{}/{total}", (5 << 20) - 1).as_str()),
        "SDK HEAD part 1: {h:?}"
    );
    // a plain object's part 1 is the whole object: 200, as GET answers
    c.put_object()
        .bucket(&b)
        .key("plain")
        .body(ByteStream::from_static(b"abc"))
        .send()
        .await?;
    let r = raw
        .send("HEAD", &format!("/{b}/plain?partNumber=1"), &[], b"")
        .await?;
    ensure!(
        r.status == 200 && r.header("content-length") == Some("3"),
        "{}",
        r.describe()
    );

    // an empty last part
    multipart::put(&c, &b, "tail", &[&first, b""]).await?;
    let r = raw
        .send("GET", &format!("/{b}/tail?partNumber=2"), &[], b"")
        .await?;
    ensure!(
        r.status == 206
            && r.body.is_empty()
            && r.header("content-length") == Some("0")
            && r.header("x-amz-mp-parts-count") == Some("2"),
        "GET of the empty part: {} {:?} ({} bytes)",
        r.status,
        r.headers,
        r.body.len()
    );
    let r = raw
        .send("HEAD", &format!("/{b}/tail?partNumber=2"), &[], b"")
        .await?;
    ensure!(
        r.status == 206 && r.header("content-length") == Some("0"),
        "HEAD of the empty part: {} {:?}",
        r.status,
        r.headers
    );
    let g = c
        .get_object()
        .bucket(&b)
        .key("tail")
        .part_number(1)
        .send()
        .await?;
    ensure!(g.body.collect().await?.into_bytes().as_ref() == first.as_slice());
    Ok(())
}
