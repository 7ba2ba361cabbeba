//! MinIO's ListenBucketNotification (`GET /bucket?events=...`, issue 22)
//! through a real client, minio-py's `listen_bucket_notification`: every
//! committed write of the bucket under the prefix is heard, in order, as
//! it happens; nothing of other buckets or prefixes; refusals get S3's
//! codes and a user needs `s3:ListenBucketNotification`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use cairn_tests::{Server, new_bucket, new_versioned_bucket, require_tool, upload_in_parts};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// Listens with minio-py and prints `EVENT KEY` per record (`error CODE`
/// if refused) until it hears the key `stop`.
const LISTENER: &str = r#"
import sys
from minio import Minio
from minio.error import S3Error
endpoint, ak, sk, bucket, prefix, stop = sys.argv[1:7]
c = Minio(endpoint, access_key=ak, secret_key=sk, secure=False, region="us-east-1")
events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:ObjectTagging:*"]
try:
    with c.listen_bucket_notification(bucket, prefix=prefix, events=events) as heard:
        for ev in heard:
            for r in ev["Records"]:
                key = r["s3"]["object"]["key"]
                print(r["eventName"], key, flush=True)
                if key == stop:
                    sys.exit(0)
except S3Error as e:
    print("error", e.code, flush=True)
    sys.exit(3)
"#;

const STOP: &str = "in/zz-end";

struct Listener {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Listener {
    fn start(s: &Server, keys: (&str, &str), bucket: &str) -> Result<Listener> {
        require_tool("python3")?;
        let mut cmd = tokio::process::Command::from(s.tool("python3"));
        cmd.arg("-c")
            .arg(LISTENER)
            .args([&s.addr(), keys.0, keys.1, bucket, "in/", STOP])
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("python3 (minio-py)")?;
        let out = child.stdout.take().context("listener stdout")?;
        Ok(Listener {
            child,
            lines: BufReader::new(out).lines(),
        })
    }

    async fn line(&mut self, within: Duration) -> Result<Option<String>> {
        match tokio::time::timeout(within, self.lines.next_line()).await {
            Err(_) => Ok(None),
            Ok(line) => Ok(Some(line?.context("the listener ended")?)),
        }
    }

    /// PUTs `in/warm-N` until the listener hears one: it is listening.
    async fn wait_listening(&mut self, c: &Client, bucket: &str) -> Result<()> {
        for i in 0..100 {
            put(c, bucket, &format!("in/warm-{i}")).await?;
            if let Some(l) = self.line(Duration::from_millis(300)).await? {
                ensure!(l.contains("in/warm-"), "first line heard: {l}");
                return Ok(());
            }
        }
        bail!("the listener heard nothing in 100 PUTs")
    }

    /// Every line up to the stop key, warm-up lines left out.
    async fn heard_until_stop(&mut self) -> Result<Vec<String>> {
        let mut heard = Vec::new();
        loop {
            let Some(l) = self.line(Duration::from_secs(20)).await? else {
                bail!("stop key not heard in 20 s; heard {heard:?}");
            };
            if l.contains("in/warm-") {
                continue;
            }
            let stop = l.ends_with(STOP);
            heard.push(l);
            if stop {
                self.child.wait().await?;
                return Ok(heard);
            }
        }
    }
}

async fn put(c: &Client, bucket: &str, key: &str) -> Result<String> {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(b"heard"))
        .send()
        .await?;
    Ok(out.version_id().unwrap_or_default().to_owned())
}

fn root_keys(s: &Server) -> (String, String) {
    (s.access_key().to_owned(), s.secret_key().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_py_hears_every_write_of_the_bucket_as_it_happens() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_versioned_bucket(&c, "listen").await?;
    let other = new_bucket(&c, "elsewhere").await?;
    let (ak, sk) = root_keys(&s);
    let mut l = Listener::start(&s, (&ak, &sk), &b)?;
    l.wait_listening(&c, &b).await?;

    let v1 = put(&c, &b, "in/a").await?;
    c.copy_object()
        .bucket(&b)
        .key("in/b")
        .copy_source(format!("{b}/in/a"))
        .send()
        .await?;
    upload_in_parts(&c, &b, "in/m", &[b"one part"]).await?;
    let tags = Tagging::builder()
        .tag_set(Tag::builder().key("k").value("v").build()?)
        .build()?;
    c.put_object_tagging()
        .bucket(&b)
        .key("in/a")
        .tagging(tags)
        .send()
        .await?;
    c.delete_object().bucket(&b).key("in/b").send().await?;
    c.delete_object()
        .bucket(&b)
        .key("in/a")
        .version_id(&v1)
        .send()
        .await?;
    // another prefix, another bucket: not heard
    put(&c, &b, "out/x").await?;
    put(&c, &other, "in/a").await?;
    put(&c, &b, STOP).await?;

    let heard = l.heard_until_stop().await?;
    let want = [
        "ObjectCreated:Put in/a",
        "ObjectCreated:Copy in/b",
        "ObjectCreated:CompleteMultipartUpload in/m",
        "ObjectTagging:Put in/a",
        "ObjectRemoved:DeleteMarkerCreated in/b",
        "ObjectRemoved:Delete in/a",
        "ObjectCreated:Put in/zz-end",
    ];
    assert_eq!(heard, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listening_needs_a_bucket_known_events_and_the_right() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "listen").await?;
    let raw = s.raw();
    let r = raw
        .send(
            "GET",
            "/no-such-bucket-here?events=s3:ObjectCreated:*",
            &[],
            b"",
        )
        .await?;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (404, Some("NoSuchBucket")),
        "{}",
        r.describe()
    );
    let r = raw
        .send("GET", &format!("/{b}?events=s3:ObjectEaten:*"), &[], b"")
        .await?;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("InvalidArgument")),
        "{}",
        r.describe()
    );

    // a user whose policy does not name the action is refused
    let reader = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],
        "Resource":["arn:aws:s3:::{b}","arn:aws:s3:::{b}/*"]}}]}}"#
    );
    let keys = s.iam_user_keys("reader", Some(&reader))?;
    let mut l = Listener::start(&s, (&keys.0, &keys.1), &b)?;
    let line = l.line(Duration::from_secs(20)).await?;
    assert_eq!(line.as_deref(), Some("error AccessDenied"));

    // one whose policy does hears the bucket
    let listener = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:ListenBucketNotification",
        "Resource":"arn:aws:s3:::{b}"}}]}}"#
    );
    let keys = s.iam_user_keys("listener", Some(&listener))?;
    let mut l = Listener::start(&s, (&keys.0, &keys.1), &b)?;
    l.wait_listening(&c, &b).await?;
    put(&c, &b, STOP).await?;
    assert_eq!(l.heard_until_stop().await?, ["ObjectCreated:Put in/zz-end"]);
    Ok(())
}
