//! `cairn admin`: talks to a running server's admin API at
//! `/_cairn/admin/v1/` (SigV4-signed with the root credentials, like any S3
//! call). A gateway has no admin API: it answers 501 `NoAdminApi`, and
//! the command says so.

use std::time::SystemTime;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use cairn_api::admin::{HealEvent, HealSummary, KmsInfo, RotateSummary, ServerInfo};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    /// The server to talk to.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:9000",
        env = "CAIRN_ENDPOINT"
    )]
    pub endpoint: String,
    /// PEM file of the certificate authorities an https:// endpoint's
    /// certificate is checked against (default: the system's).
    #[arg(long, global = true, env = "CAIRN_CA_BUNDLE")]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Region the server answers for (used in the signature).
    #[arg(long, global = true, default_value = "us-east-1", env = "CAIRN_REGION")]
    pub region: String,
    #[command(subcommand)]
    pub cmd: AdminCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum AdminCommand {
    /// Drives, their state and free space, and what waits for healing.
    Info {
        /// Print the server's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pause or resume the background scanner.
    Scanner {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Check and repair objects: all, one bucket, or BUCKET/PREFIX.
    Heal {
        /// BUCKET or BUCKET/PREFIX (everything when absent).
        target: Option<String>,
        /// Re-read every shard and check its hash (slower).
        #[arg(long)]
        deep: bool,
    },
    /// The KMS behind SSE-S3 and SSE-KMS: its keys, new keys, rotation.
    Kms {
        #[command(subcommand)]
        cmd: KmsCommand,
    },
    /// Bucket switches: `worm BUCKET on`.
    Bucket {
        #[command(subcommand)]
        cmd: BucketCommand,
    },
    /// Lifecycle rules: `run` applies them now (the scanner does every
    /// cycle) and prints what it did.
    Lifecycle {
        #[arg(value_parser = ["run"])]
        action: String,
    },
    /// IAM users and their access keys (through the IAM API).
    User {
        #[command(subcommand)]
        cmd: crate::iamcli::UserCommand,
    },
    /// IAM groups.
    Group {
        #[command(subcommand)]
        cmd: crate::iamcli::GroupCommand,
    },
    /// Managed policies and what they are attached to.
    Policy {
        #[command(subcommand)]
        cmd: crate::iamcli::PolicyCommand,
    },
    /// Service accounts: keys of a user, narrowed by their own policy.
    Svcacct {
        #[command(subcommand)]
        cmd: crate::iamcli::SvcacctCommand,
    },
    /// Bucket replication targets: `add BUCKET --target-bucket ARN
    /// --target-endpoint URL --access-key K --secret-key S`, `list`, `remove`,
    /// `status` (backlog, lag, bytes, failures).
    Replicate {
        #[command(subcommand)]
        cmd: crate::replicate::ReplicateCommand,
    },
    /// The federation this server is a site of (`status`: sites, live or
    /// down, bucket counts, etcd's endpoints).
    Federation {
        #[command(subcommand)]
        cmd: FederationCommand,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum FederationCommand {
    /// Sites, live or down, their buckets and free space; etcd's health.
    Status {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum BucketCommand {
    /// WORM mode: from now on no existing object of the bucket can be
    /// changed or deleted, by anyone, through any front. It cannot be
    /// switched off.
    Worm {
        bucket: String,
        #[arg(value_parser = ["on"])]
        state: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum KmsCommand {
    /// Which KMS, where its keys live, each key's latest version.
    Status {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a master key (for SSE-KMS requests naming it).
    CreateKey {
        /// Letters, digits, `-`, `_`, `.`, `/`; at most 128.
        name: String,
    },
    /// Add a new version of a master key (the default key when no name is
    /// given) and re-seal every object key sealed under it with the new
    /// version; object data is not rewritten. Old versions stay readable.
    Rotate {
        name: Option<String>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) struct Signer {
    endpoint: url::Url,
    region: String,
    access_key: String,
    secret_key: String,
}

impl Signer {
    fn new(args: &AdminArgs) -> anyhow::Result<Self> {
        let endpoint = url::Url::parse(&args.endpoint)
            .with_context(|| format!("--endpoint {}", args.endpoint))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            bail!("--endpoint: an http:// or https:// URL");
        }
        let user = std::env::var("CAIRN_ROOT_USER").unwrap_or_else(|_| "cairnadmin".into());
        let pass = std::env::var("CAIRN_ROOT_PASSWORD").unwrap_or_else(|_| "cairnadmin".into());
        Ok(Self {
            endpoint,
            region: args.region.clone(),
            access_key: user,
            secret_key: pass,
        })
    }

    /// Builds a signed request for `path?query` (query already encoded).
    fn request(
        &self,
        method: &str,
        path_and_query: &str,
    ) -> anyhow::Result<http::Request<Full<Bytes>>> {
        self.signed(Signed {
            method,
            path_and_query,
            service: "s3",
            content_type: None,
            body: Bytes::new(),
        })
    }

    /// Builds a signed request with a body, for `service` (`s3`, or `iam`
    /// and `sts` for the query API).
    pub(crate) fn signed(&self, r: Signed<'_>) -> anyhow::Result<http::Request<Full<Bytes>>> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let Signed {
            method,
            path_and_query,
            service,
            content_type,
            body,
        } = r;
        let url = self.endpoint.join(path_and_query)?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => bail!("--endpoint has no host"),
        };
        let identity: aws_smithy_runtime_api::client::identity::Identity =
            aws_credential_types::Credentials::new(
                &self.access_key,
                &self.secret_key,
                None,
                None,
                "cairn-admin",
            )
            .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| anyhow!("signing: {e}"))?
            .into();
        // S3 wants the body's hash in a header; the query API's
        // services hash the body themselves (as botocore signs them), so
        // the server checks it against the signature.
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        let mut headers = vec![("host", host.as_str())];
        if service == "s3" {
            headers.push(("x-amz-content-sha256", sha.as_str()));
        }
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| anyhow!("signing: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| anyhow!("signing: {e}"))?
            .into_parts();
        let mut b = http::Request::builder().method(method).uri(url.as_str());
        for (k, v) in headers {
            b = b.header(k, v);
        }
        for (k, v) in instructions.headers() {
            b = b.header(k, v);
        }
        Ok(b.body(Full::new(body))?)
    }
}

/// One request for [`Signer::signed`].
pub(crate) struct Signed<'a> {
    pub(crate) method: &'a str,
    /// Already encoded.
    pub(crate) path_and_query: &'a str,
    pub(crate) service: &'a str,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: Bytes,
}

/// The text of one XML element of an S3 error body, unescaped.
pub(crate) fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let (_, rest) = text.split_once(open.as_str())?;
    let (inner, _) = rest.split_once(close.as_str())?;
    Some(
        inner
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// What a failed admin call tells its user: the server's message, or what
/// the endpoint is when it has no admin API.
pub(crate) fn call_error(endpoint: &str, status: http::StatusCode, body: &[u8]) -> anyhow::Error {
    let text = String::from_utf8_lossy(body);
    let code = xml_tag(&text, "Code");
    match code.as_deref() {
        Some(cairn_s3::NO_ADMIN_API) => anyhow!(
            "{endpoint} is a Cairn gateway (`cairn gateway ...`): it has no admin API (drives, \
             healing, the KMS and the scanner belong to a `cairn server`; a gateway's backend is \
             administered by its own tools)"
        ),
        // An S3 service without Cairn's admin API takes `_cairn` for a
        // bucket name, which is invalid.
        Some("InvalidBucketName" | "NoSuchBucket") => anyhow!(
            "{endpoint} has no Cairn admin API (it answered as an S3 service without one: {status})"
        ),
        _ => match (code, xml_tag(&text, "Message")) {
            (Some(c), Some(m)) => anyhow!("server answered {status}: {m} ({c})"),
            (None, Some(m)) => anyhow!("server answered {status}: {m}"),
            _ => anyhow!("server answered {status}: {}", text.trim()),
        },
    }
}

pub(crate) type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The client of `cairn admin`: http:// or https://, a server certificate
/// checked against `ca_bundle` (PEM) or the system's authorities.
fn http_client(ca_bundle: Option<&std::path::Path>) -> anyhow::Result<HttpClient> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("reading --ca-bundle {}", path.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "--ca-bundle {}: no certificate in it",
                path.display()
            );
            for c in certs {
                roots
                    .add(c)
                    .with_context(|| format!("--ca-bundle {}", path.display()))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                // a system certificate rustls cannot use is skipped
                let _ = roots.add(c);
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The admin API path of `call` (e.g. `info`, `kms/keys?name=k`).
pub(crate) fn admin_path(call: &str) -> String {
    format!("{}{call}", cairn_s3::endpoints::ADMIN)
}

/// One signed admin call (`what` as for [`admin_path`]); the response of a
/// 2xx answer, else an error saying why.
async fn send(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    method: &str,
    what: &str,
) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
    let resp = client
        .request(signer.request(method, &admin_path(what))?)
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.into_body().collect().await?.to_bytes();
        return Err(call_error(endpoint, status, &body));
    }
    Ok(resp)
}

/// [`send`], and the whole body of its answer.
async fn call(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    method: &str,
    what: &str,
) -> anyhow::Result<Bytes> {
    let resp = send(client, signer, endpoint, method, what).await?;
    Ok(resp.into_body().collect().await?.to_bytes())
}

async fn run_kms(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    cmd: &KmsCommand,
) -> anyhow::Result<()> {
    match cmd {
        KmsCommand::Status { json } => {
            let body = call(client, signer, endpoint, "GET", "kms/status").await?;
            if *json {
                println!("{}", String::from_utf8_lossy(&body));
                return Ok(());
            }
            let info: KmsInfo = serde_json::from_slice(&body).context("KMS status")?;
            print_kms(&info);
        }
        KmsCommand::CreateKey { name } => {
            let path = format!("kms/keys?name={}", enc(name));
            call(client, signer, endpoint, "POST", &path).await?;
            println!("created KMS key {name}");
        }
        KmsCommand::Rotate { name, json } => {
            let path = match name {
                Some(n) => format!("kms/rotate?name={}", enc(n)),
                None => "kms/rotate".to_owned(),
            };
            let body = call(client, signer, endpoint, "POST", &path).await?;
            let s: RotateSummary = serde_json::from_slice(&body).context("rotation summary")?;
            if *json {
                println!("{}", String::from_utf8_lossy(&body));
            } else {
                println!(
                    "rotated KMS key {} to version {}: {} object keys re-sealed, {} failed",
                    s.key, s.new_version, s.resealed, s.failed
                );
            }
            if s.failed > 0 {
                bail!(
                    "{} object keys could not be re-sealed (they still read under the old version); run the rotation again",
                    s.failed
                );
            }
        }
    }
    Ok(())
}

fn print_federation(st: &cairn_s3::FederationStatus) {
    let followed = if st.etcd.followed {
        "followed"
    } else {
        "NOT reachable (serving from the last copy)"
    };
    println!("answered by site {}; etcd {followed}", st.site);
    for e in &st.etcd.endpoints {
        match (&e.version, &e.error) {
            (Some(v), _) => {
                let lead = if e.leader { " leader" } else { "" };
                println!("etcd {}  up  v{v}{lead}", e.endpoint);
            }
            (None, err) => println!(
                "etcd {}  DOWN  {}",
                e.endpoint,
                err.as_deref().unwrap_or("no answer")
            ),
        }
    }
    let width = st
        .sites
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    println!(
        "{:<width$}  {:<5}  {:>7}  {:>10}  url",
        "site", "state", "buckets", "free"
    );
    for s in &st.sites {
        let state = if s.live { "live" } else { "down" };
        let free = human(s.free_bytes);
        let url = s.url.as_deref().unwrap_or("-");
        println!(
            "{:<width$}  {state:<5}  {:>7}  {free:>10}  {url}",
            s.name, s.buckets
        );
    }
}

fn print_kms(info: &KmsInfo) {
    println!("KMS {} at {}", info.backend, info.location);
    println!("default key {}", info.default_key);
    let width = info
        .keys
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .max(3);
    println!("{:<width$}  {:>7}", "key", "version");
    for (name, version) in &info.keys {
        let mark = if *name == info.default_key {
            "  (default)"
        } else {
            ""
        };
        println!("{name:<width$}  {version:>7}{mark}");
    }
    if info.keys.is_empty() {
        println!("(no keys)");
    }
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let signer = Signer::new(&args)?;
    let client = http_client(args.ca_bundle.as_deref())?;
    let ep = args.endpoint.as_str();
    match &args.cmd {
        AdminCommand::User { cmd } => crate::iamcli::user(&client, &signer, ep, cmd).await?,
        AdminCommand::Group { cmd } => crate::iamcli::group(&client, &signer, ep, cmd).await?,
        AdminCommand::Policy { cmd } => crate::iamcli::policy(&client, &signer, ep, cmd).await?,
        AdminCommand::Svcacct { cmd } => crate::iamcli::svcacct(&client, &signer, ep, cmd).await?,
        AdminCommand::Replicate { cmd } => crate::replicate::run(&client, &signer, ep, cmd).await?,
        AdminCommand::Kms { cmd } => {
            run_kms(&client, &signer, &args.endpoint, cmd).await?;
        }
        AdminCommand::Bucket {
            cmd: BucketCommand::Worm { bucket, .. },
        } => {
            let path = format!("bucket/worm?bucket={}", enc(bucket));
            call(&client, &signer, &args.endpoint, "POST", &path).await?;
            println!(
                "bucket {bucket} is in WORM mode: its objects can no longer be changed or deleted"
            );
        }
        AdminCommand::Lifecycle { .. } => {
            let body = call(&client, &signer, &args.endpoint, "POST", "lifecycle/run").await?;
            println!("{}", String::from_utf8_lossy(&body));
        }
        AdminCommand::Federation {
            cmd: FederationCommand::Status { json },
        } => {
            let body = call(&client, &signer, ep, "GET", "federation/status").await?;
            if *json {
                println!("{}", String::from_utf8_lossy(&body));
                return Ok(());
            }
            let st: cairn_s3::FederationStatus =
                serde_json::from_slice(&body).context("federation status")?;
            print_federation(&st);
        }
        AdminCommand::Info { json } => {
            let body = call(&client, &signer, &args.endpoint, "GET", "info").await?;
            if *json {
                println!("{}", String::from_utf8_lossy(&body));
                return Ok(());
            }
            let info: ServerInfo = serde_json::from_slice(&body).context("server info")?;
            print_info(&info);
        }
        AdminCommand::Scanner { state } => {
            let path = format!("scanner?enabled={}", state == "on");
            call(&client, &signer, &args.endpoint, "POST", &path).await?;
            println!("scanner {state}");
        }
        AdminCommand::Heal { target, deep } => {
            let mut q = String::new();
            if let Some(t) = target {
                let (b, p) = t.split_once('/').unwrap_or((t.as_str(), ""));
                q.push_str(&format!("bucket={}&prefix={}", enc(b), enc(p)));
            }
            if *deep {
                q.push_str(if q.is_empty() {
                    "deep=true"
                } else {
                    "&deep=true"
                });
            }
            let path = if q.is_empty() {
                "heal".to_owned()
            } else {
                format!("heal?{q}")
            };
            let mut body = send(&client, &signer, &args.endpoint, "POST", &path)
                .await?
                .into_body();
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let mut pending = Vec::new();
            let mut done: Option<HealSummary> = None;
            let mut errors = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame?;
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                pending.extend_from_slice(data);
                while let Some(nl) = pending.iter().position(|&c| c == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    match serde_json::from_slice::<HealEvent>(&line) {
                        Ok(HealEvent::Progress {
                            summary, current, ..
                        }) => {
                            bar.set_message(format!(
                                "{} scanned, {} healed, {} failed  {current}",
                                summary.objects_scanned, summary.objects_healed, summary.failed
                            ));
                            bar.tick();
                        }
                        Ok(HealEvent::Error { message }) => {
                            errors += 1;
                            bar.println(format!("error: {message}"));
                        }
                        Ok(HealEvent::Done { summary }) => done = Some(summary),
                        Err(e) => bar.println(format!("unreadable progress line: {e}")),
                    }
                }
            }
            bar.finish_and_clear();
            let Some(s) = done else {
                bail!("the server ended the heal without a summary (connection lost?)");
            };
            println!(
                "heal done in {:.1}s: {} objects scanned, {} healed ({} drive copies rewritten), {} bad shard blocks found, {} failed",
                s.elapsed_ms as f64 / 1000.0,
                s.objects_scanned,
                s.objects_healed,
                s.drives_rewritten,
                s.bad_blocks,
                s.failed
            );
            if s.failed > 0 || errors > 0 {
                bail!("{} objects could not be healed", s.failed.max(errors));
            }
        }
    }
    Ok(())
}

/// SigV4 wants every byte but the RFC 3986 unreserved ones %-encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

fn human(n: Option<u64>) -> String {
    match n {
        None => "-".into(),
        Some(n) => {
            let mut v = n as f64;
            let mut unit = "B";
            for next in ["KiB", "MiB", "GiB", "TiB", "PiB"] {
                if v < 1024.0 {
                    break;
                }
                v /= 1024.0;
                unit = next;
            }
            format!("{v:.1} {unit}")
        }
    }
}

fn print_info(info: &ServerInfo) {
    let online = info.drives.iter().filter(|d| d.state == "online").count();
    println!("deployment {}", info.deployment_id);
    let sets = info.drives.iter().map(|d| d.set + 1).max().unwrap_or(1);
    println!(
        "erasure {}+{} over {} drives ({} set{} of {}), {} online",
        info.data_shards,
        info.parity_shards,
        info.drives.len(),
        sets,
        if sets == 1 { "" } else { "s" },
        info.drives.len() / sets,
        online
    );
    println!(
        "{:<4} {:<4} {:<8} {:>12} {:>12}  path",
        "#", "set", "state", "free", "total"
    );
    for d in &info.drives {
        println!(
            "{:<4} {:<4} {:<8} {:>12} {:>12}  {}",
            d.index,
            d.set,
            d.state,
            human(d.free_bytes),
            human(d.total_bytes),
            d.path
        );
    }
    println!(
        "heal queue {}, objects healed {}, bitrot errors {}, scanner cycles {}, unrecoverable reads {}",
        info.heal_queue,
        info.objects_healed,
        info.bitrot_errors,
        info.scanner_cycles,
        info.unrecoverable_reads
    );
    if let Some(s) = &info.sandbox {
        println!("sandbox: {s}");
    }
    if !info.nodes.is_empty() {
        println!(
            "{:<24} {:<8} {:>6} {:<10} {:>10}",
            "node", "state", "drives", "version", "uptime"
        );
        for n in &info.nodes {
            println!(
                "{:<24} {:<8} {:>6} {:<10} {:>10}",
                n.address,
                n.state,
                n.drives,
                n.version.as_deref().unwrap_or("-"),
                n.uptime_secs.map_or("-".into(), |s| format!("{s}s"))
            );
        }
    }
}
