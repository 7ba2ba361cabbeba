//! S3 load generator: C concurrent workers sharing one aws-sdk-s3 client,
//! or with `--lean` one pooled hyper client signing each request itself
//! (lean.rs), so the client costs less CPU than the server it measures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::StreamExt as _;
use rand::RngCore as _;

use super::stats::LoadResult;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    /// Alternate GET and PUT (50/50).
    Mixed,
}

#[derive(clap::Args, Debug)]
pub struct S3Args {
    /// S3 endpoint URL.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// Access key.
    #[arg(long, env = "CAIRN_ROOT_USER", default_value = "cairnadmin")]
    pub access_key: String,
    /// Secret key.
    #[arg(
        long,
        env = "CAIRN_ROOT_PASSWORD",
        default_value = "cairnadmin",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub secret_key: String,
    /// Bucket to use (created if missing).
    #[arg(long, default_value = "cairn-bench")]
    pub bucket: String,
    /// Operation.
    #[arg(long, value_enum, default_value_t = Op::Put)]
    pub op: Op,
    /// Object size (4KiB, 1MiB, 64MiB, ...).
    #[arg(long, default_value = "1MiB", value_parser = super::parse_size)]
    pub size: u64,
    /// Concurrent clients (requests in flight).
    #[arg(long, short = 'c', default_value_t = 1)]
    pub concurrency: usize,
    /// How long to run (ignored with --count).
    #[arg(long, default_value = "10s", value_parser = super::parse_duration)]
    pub duration: Duration,
    /// Run exactly this many operations instead of a fixed duration.
    #[arg(long)]
    pub count: Option<u64>,
    /// Number of distinct objects GETs read (uploaded first unless already
    /// present with the right size); default: max(concurrency, 16) for
    /// objects up to 1 MiB, else the concurrency.
    #[arg(long)]
    pub objects: Option<usize>,
    /// Let the SDK compute and validate CRC32 checksums (its default against
    /// AWS); off by default, so the run measures the server, not the client.
    #[arg(long)]
    pub checksum: bool,
    /// Sign the payload (SHA-256 of every body) instead of UNSIGNED-PAYLOAD.
    #[arg(long)]
    pub sign_payload: bool,
    /// PUT with SSE-S3 (`x-amz-server-side-encryption: AES256`); use
    /// another bucket than plain runs, as GETs reuse objects by size.
    #[arg(long)]
    pub sse_s3: bool,
    /// Enable versioning on the bucket before the run.
    #[arg(long)]
    pub versioning: bool,
    /// PUT a new key every time instead of cycling through 4 keys per
    /// worker (in a versioned bucket, cycling piles up versions).
    #[arg(long)]
    pub unique_keys: bool,
    /// Write each GET's body into a file in this folder (`get-w<worker>`,
    /// 1 MiB writes, replaced by the worker's next GET) instead of
    /// dropping it: a download, to compare with clients that write files.
    #[arg(long, value_name = "DIR")]
    pub get_into: Option<std::path::PathBuf>,
    /// Delete the objects this run wrote when done.
    #[arg(long)]
    pub cleanup: bool,
    /// Time the operations with the lean client (hyper + SigV4 with
    /// UNSIGNED-PAYLOAD, no SDK); setup and cleanup still use the SDK.
    /// Not with --sign-payload, --checksum or --sse-s3.
    #[arg(long, conflicts_with_all = ["sign_payload", "checksum", "sse_s3"])]
    pub lean: bool,
    /// Print one JSON object per result.
    #[arg(long)]
    pub json: bool,
}

/// Distinct keys each worker cycles through when writing, so a long run
/// overwrites instead of filling the disk.
const PUT_KEYS_PER_WORKER: u64 = 4;

struct Ctx {
    client: aws_sdk_s3::Client,
    lean: Option<super::lean::Lean>,
    bucket: String,
    size: u64,
    body: Bytes,
    sign_payload: bool,
    sse_s3: bool,
    unique_keys: bool,
    get_keys: Vec<String>,
    get_into: Option<std::path::PathBuf>,
}

impl Ctx {
    fn put_key(&self, worker: usize, i: u64) -> String {
        let n = if self.unique_keys {
            i
        } else {
            i % PUT_KEYS_PER_WORKER
        };
        format!("bench/{}/put/w{worker}-{n}", super::human_size(self.size))
    }

    async fn put(&self, key: &str) -> anyhow::Result<u64> {
        if let Some(lean) = &self.lean {
            lean.put(&self.bucket, key, self.body.clone()).await?;
            return Ok(self.size);
        }
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(i64::try_from(self.size)?)
            .set_server_side_encryption(
                self.sse_s3
                    .then_some(aws_sdk_s3::types::ServerSideEncryption::Aes256),
            )
            .body(ByteStream::from(self.body.clone()));
        let res = if self.sign_payload {
            req.send().await
        } else {
            req.customize().disable_payload_signing().send().await
        };
        res.map_err(|e| anyhow::anyhow!("PUT {key}: {}", DisplayErrorContext(&e)))?;
        Ok(self.size)
    }

    async fn get(&self, key: &str, worker: usize) -> anyhow::Result<u64> {
        let mut sink = match &self.get_into {
            Some(dir) => Some(FileSink::create(&dir.join(format!("get-w{worker}"))).await?),
            None => None,
        };
        let mut body = match &self.lean {
            Some(lean) => Body::Lean(lean.get(&self.bucket, key).await?),
            None => Body::Sdk(
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("GET {key}: {}", DisplayErrorContext(&e)))?
                    .body,
            ),
        };
        let mut n = 0u64;
        while let Some(chunk) = body
            .next()
            .await
            .with_context(|| format!("GET {key}: reading the body"))?
        {
            n += chunk.len() as u64;
            if let Some(f) = &mut sink {
                f.write(chunk).await?;
            }
        }
        if let Some(f) = sink {
            f.finish().await?;
        }
        anyhow::ensure!(
            n == self.size,
            "GET {key}: got {n} bytes, expected {}",
            self.size
        );
        Ok(n)
    }
}

/// A GET's answer body, from either client.
enum Body {
    Sdk(ByteStream),
    Lean(super::lean::Body),
}

impl Body {
    async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        match self {
            Body::Sdk(b) => Ok(b.try_next().await?),
            Body::Lean(b) => super::lean::next_chunk(b).await,
        }
    }
}

/// A GET's file, written by a thread of its own as the body's chunks
/// arrive (no copy on the way; tokio's `File` ran at a third of `dd`
/// here), so receiving and writing overlap as in a download client.
struct FileSink {
    tx: Option<std::sync::mpsc::SyncSender<Bytes>>,
    writer: std::thread::JoinHandle<std::io::Result<()>>,
}

impl FileSink {
    async fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        let mut file = tokio::fs::File::create(path)
            .await
            .with_context(|| format!("creating {}", path.display()))?
            .into_std()
            .await;
        // a few MiB in flight at most
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(64);
        let writer = std::thread::spawn(move || {
            for chunk in rx {
                std::io::Write::write_all(&mut file, &chunk)?;
            }
            Ok(())
        });
        Ok(Self {
            tx: Some(tx),
            writer,
        })
    }

    async fn write(&mut self, chunk: Bytes) -> anyhow::Result<()> {
        use std::sync::mpsc::TrySendError;
        let tx = self.tx.as_ref().context("file writer closed")?;
        match tx.try_send(chunk) {
            Ok(()) => Ok(()),
            // full: wait on a blocking thread, not the runtime
            Err(TrySendError::Full(chunk)) => {
                let tx = tx.clone();
                tokio::task::spawn_blocking(move || tx.send(chunk))
                    .await
                    .context("file writer")?
                    .map_err(|_| anyhow::anyhow!("the file writer stopped"))
            }
            Err(TrySendError::Disconnected(_)) => anyhow::bail!("the file writer stopped"),
        }
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        self.tx = None;
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .context("file writer")?
            .map_err(|_| anyhow::anyhow!("the file writer panicked"))?
            .context("writing the GET's file")
    }
}

#[derive(Default)]
struct WorkerOut {
    put_lat: Vec<u64>,
    get_lat: Vec<u64>,
    put_bytes: u64,
    get_bytes: u64,
    put_errors: u64,
    get_errors: u64,
    first_error: Option<String>,
}

pub(crate) async fn run(args: S3Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let size_usize = usize::try_from(args.size).context("--size too large")?;
    let client = client(&args);
    ensure_bucket(&client, &args.bucket).await?;
    if args.versioning {
        client
            .put_bucket_versioning()
            .bucket(&args.bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("enable versioning: {}", DisplayErrorContext(&e)))?;
    }

    let mut body = vec![0u8; size_usize];
    rand::rng().fill_bytes(&mut body);
    let lean = args
        .lean
        .then(|| {
            super::lean::Lean::new(
                &args.endpoint,
                (&args.access_key, &args.secret_key),
                args.concurrency,
            )
        })
        .transpose()?;
    let mut ctx = Ctx {
        client,
        lean,
        bucket: args.bucket.clone(),
        size: args.size,
        body: Bytes::from(body),
        sign_payload: args.sign_payload,
        sse_s3: args.sse_s3,
        unique_keys: args.unique_keys,
        get_keys: Vec::new(),
        get_into: args.get_into.clone(),
    };
    if args.op != Op::Put {
        let n = args.objects.unwrap_or(if args.size <= 1 << 20 {
            args.concurrency.max(16)
        } else {
            args.concurrency
        });
        ctx.get_keys = (0..n.max(1))
            .map(|i| format!("bench/{}/get/{i}", super::human_size(args.size)))
            .collect();
        prepopulate(&ctx, args.concurrency).await?;
    }
    let ctx = Arc::new(ctx);

    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut tasks = Vec::with_capacity(args.concurrency);
    for worker in 0..args.concurrency {
        let ctx = Arc::clone(&ctx);
        let next = Arc::clone(&next);
        let (op, count) = (args.op, args.count);
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerOut::default();
            let mut mine = 0u64;
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                match count {
                    Some(n) if seq >= n => break,
                    None if Instant::now() >= deadline => break,
                    _ => {}
                }
                let is_get = match op {
                    Op::Put => false,
                    Op::Get => true,
                    Op::Mixed => seq.is_multiple_of(2),
                };
                let t0 = Instant::now();
                let res = if is_get {
                    // the keys were made for every run with GETs
                    let key = seq
                        .checked_rem(ctx.get_keys.len() as u64)
                        .and_then(|i| ctx.get_keys.get(usize::try_from(i).ok()?));
                    match key {
                        Some(key) => ctx.get(key, worker).await,
                        None => Err(anyhow::anyhow!("no objects to GET")),
                    }
                } else {
                    let key = ctx.put_key(worker, mine);
                    mine += 1;
                    ctx.put(&key).await
                };
                let lat = t0.elapsed().as_micros() as u64;
                match (res, is_get) {
                    (Ok(n), true) => {
                        out.get_lat.push(lat);
                        out.get_bytes += n;
                    }
                    (Ok(n), false) => {
                        out.put_lat.push(lat);
                        out.put_bytes += n;
                    }
                    (Err(e), get) => {
                        if get {
                            out.get_errors += 1;
                        } else {
                            out.put_errors += 1;
                        }
                        if out.first_error.is_none() {
                            out.first_error = Some(format!("{e:#}"));
                        }
                    }
                }
            }
            out
        }));
    }
    let mut all = WorkerOut::default();
    for t in tasks {
        let o = t.await.context("benchmark worker panicked")?;
        all.put_lat.extend(o.put_lat);
        all.get_lat.extend(o.get_lat);
        all.put_bytes += o.put_bytes;
        all.get_bytes += o.get_bytes;
        all.put_errors += o.put_errors;
        all.get_errors += o.get_errors;
        if all.first_error.is_none() {
            all.first_error = o.first_error;
        }
    }
    let elapsed = start.elapsed();

    let mut results = Vec::new();
    if args.op != Op::Get {
        results.push(LoadResult::new(
            "s3",
            "put",
            args.size,
            args.concurrency,
            std::mem::take(&mut all.put_lat),
            all.put_bytes,
            all.put_errors,
            elapsed,
            if all.put_errors > 0 {
                all.first_error.clone()
            } else {
                None
            },
        ));
    }
    if args.op != Op::Put {
        results.push(LoadResult::new(
            "s3",
            "get",
            args.size,
            args.concurrency,
            std::mem::take(&mut all.get_lat),
            all.get_bytes,
            all.get_errors,
            elapsed,
            if all.get_errors > 0 {
                all.first_error.clone()
            } else {
                None
            },
        ));
    }
    for r in &results {
        r.print(args.json)?;
    }

    if args.cleanup {
        cleanup(&ctx, args.concurrency).await;
    }
    let errors = all.put_errors + all.get_errors;
    let ops: u64 = results.iter().map(|r| r.ops).sum();
    anyhow::ensure!(
        ops > 0 || errors == 0,
        "every operation failed ({errors} errors)"
    );
    Ok(())
}

fn client(args: &S3Args) -> aws_sdk_s3::Client {
    let creds = Credentials::new(
        &args.access_key,
        &args.secret_key,
        None,
        None,
        "cairn-bench",
    );
    let (req, resp) = if args.checksum {
        (
            RequestChecksumCalculation::WhenSupported,
            ResponseChecksumValidation::WhenSupported,
        )
    } else {
        (
            RequestChecksumCalculation::WhenRequired,
            ResponseChecksumValidation::WhenRequired,
        )
    };
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&args.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .force_path_style(true)
        .request_checksum_calculation(req)
        .response_checksum_validation(resp)
        // A loaded 2-core box can pause a stream for a while; that is a
        // latency to measure, not an error.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn ensure_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let owned = e
                .as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you());
            if owned {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "create bucket {bucket}: {}",
                    DisplayErrorContext(&e)
                ))
            }
        }
    }
}

/// Uploads the objects GETs read, skipping those already there with the
/// right size (so repeated runs reuse them).
async fn prepopulate(ctx: &Ctx, concurrency: usize) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(ctx.get_keys.iter())
        .map(|key| async move {
            let head = ctx
                .client
                .head_object()
                .bucket(&ctx.bucket)
                .key(key)
                .send()
                .await;
            if let Ok(h) = head
                && h.content_length() == i64::try_from(ctx.size).ok()
            {
                return Ok(());
            }
            ctx.put(key).await.map(|_| ())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        r.context("uploading the objects to GET")?;
    }
    Ok(())
}

async fn cleanup(ctx: &Ctx, concurrency: usize) {
    let workers = concurrency as u64;
    let mut keys: Vec<String> = (0..workers)
        .flat_map(|w| (0..PUT_KEYS_PER_WORKER).map(move |i| (w, i)))
        .map(|(w, i)| ctx.put_key(w as usize, i))
        .collect();
    keys.extend(ctx.get_keys.iter().cloned());
    futures::stream::iter(keys)
        .for_each_concurrent(concurrency, |key| async move {
            // Keys a short run never wrote are simply not there.
            let _ = ctx
                .client
                .delete_object()
                .bucket(&ctx.bucket)
                .key(key)
                .send()
                .await;
        })
        .await;
}
