//! `cairn admin user|group|policy|svcacct ...`: users, groups, policies
//! and service accounts of a running server, through its IAM query API
//! (the calls `aws iam` makes, signed for the `iam` service) and the
//! admin API's service accounts (`/_cairn/admin/v1/service-accounts`).
//! `--json` prints the server's answer as JSON.

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use serde_json::{Map, Value, json};

use crate::admin::{HttpClient, Signed, Signer, call_error, enc, xml_tag};

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user (it has no keys and no rights until given some).
    Add { name: String },
    /// List the users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A user, its groups and its policies.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Refuse the user's keys, service accounts and sessions at once.
    Disable { name: String },
    /// Accept them again.
    Enable { name: String },
    /// Delete a user (its keys, policies and group memberships must go first).
    Remove { name: String },
    /// The user's access keys.
    Key {
        #[command(subcommand)]
        cmd: KeyCommand,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    /// A new access key (the secret is shown once).
    Add {
        user: String,
        #[arg(long)]
        json: bool,
    },
    List {
        user: String,
        #[arg(long)]
        json: bool,
    },
    Disable {
        user: String,
        key: String,
    },
    Enable {
        user: String,
        key: String,
    },
    Remove {
        user: String,
        key: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group, with these members (comma-separated).
    Add {
        name: String,
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// A group and its members.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Add users (comma-separated) to a group.
    Join {
        name: String,
        #[arg(value_delimiter = ',')]
        users: Vec<String>,
    },
    /// Remove users (comma-separated) from a group.
    Leave {
        name: String,
        #[arg(value_delimiter = ',')]
        users: Vec<String>,
    },
    /// Delete a group (members and policies must go first).
    Remove { name: String },
}

/// Whom a policy is attached to.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct PolicyTarget {
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long)]
    pub role: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Create a managed policy from a JSON file.
    Create {
        name: String,
        file: std::path::PathBuf,
    },
    /// Replace a managed policy's document (in effect at once).
    Update {
        name: String,
        file: std::path::PathBuf,
    },
    /// The policies (built-in and the deployment's).
    List {
        #[arg(long)]
        json: bool,
    },
    /// A policy's document.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a managed policy (detach it first).
    Remove { name: String },
    /// Attach a policy (managed or built-in: readonly, readwrite,
    /// writeonly, diagnostics, consoleAdmin).
    Attach {
        name: String,
        #[command(flatten)]
        to: PolicyTarget,
    },
    Detach {
        name: String,
        #[command(flatten)]
        to: PolicyTarget,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum SvcacctCommand {
    /// A new service account of a user (the root user's without --user),
    /// narrowed by a policy file if given (the secret is shown once).
    Add {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        policy: Option<std::path::PathBuf>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Expiry: seconds from now.
        #[arg(long)]
        expires_in: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// A user's service accounts (the root user's without --user).
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Info {
        key: String,
        #[arg(long)]
        json: bool,
    },
    Disable {
        key: String,
    },
    Enable {
        key: String,
    },
    Remove {
        key: String,
    },
}

/// The list elements of IAM answers (always JSON arrays).
const LISTS: &[&str] = &[
    "Users",
    "Groups",
    "Roles",
    "Policies",
    "AttachedPolicies",
    "PolicyNames",
    "AccessKeyMetadata",
    "Versions",
];

/// Converts a query-protocol answer to JSON: the members of its
/// `<Action>Result` (elements with children become objects, `member`
/// lists arrays, leaves strings).
fn xml_to_json(xml: &[u8]) -> anyhow::Result<Value> {
    use quick_xml::events::Event;
    struct Frame {
        name: String,
        map: Map<String, Value>,
        members: Vec<Value>,
        text: String,
    }
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut stack: Vec<Frame> = vec![Frame {
        name: String::new(),
        map: Map::new(),
        members: Vec::new(),
        text: String::new(),
    }];
    loop {
        match reader
            .read_event()
            .context("the server's answer is not XML")?
        {
            Event::Start(s) => stack.push(Frame {
                name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                map: Map::new(),
                members: Vec::new(),
                text: String::new(),
            }),
            Event::Text(t) => {
                if let Some(f) = stack.last_mut() {
                    f.text.push_str(&t.xml10_content().context("XML text")?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(f) = stack.last_mut() {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        f.text.push(c);
                        continue;
                    }
                    let name = r.decode().context("XML reference")?;
                    f.text.push_str(match name.as_ref() {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::End(_) => {
                let f = stack.pop().ok_or_else(|| anyhow!("unbalanced XML"))?;
                let v = if !f.members.is_empty() || LISTS.contains(&f.name.as_str()) {
                    Value::Array(f.members)
                } else if !f.map.is_empty() {
                    Value::Object(f.map)
                } else {
                    Value::String(f.text)
                };
                let parent = stack.last_mut().ok_or_else(|| anyhow!("unbalanced XML"))?;
                if f.name == "member" {
                    parent.members.push(v);
                } else {
                    parent.map.insert(f.name, v);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let root = stack.pop().map(|f| f.map).unwrap_or_default();
    let resp = root
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or(Value::Null);
    // `<XResponse><XResult>...</XResult><ResponseMetadata/>`
    let result = resp
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.ends_with("Result"))
                .map(|(_, v)| v.clone())
        })
        .unwrap_or(Value::Null);
    Ok(result)
}

/// Talks to one server.
struct Iam<'a> {
    client: &'a HttpClient,
    signer: &'a Signer,
    endpoint: &'a str,
}

impl Iam<'_> {
    /// One query API call; the members of its result.
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
        let service = match action {
            "GetCallerIdentity" | "AssumeRole" => "sts",
            _ => "iam",
        };
        let version = if service == "sts" {
            "2011-06-15"
        } else {
            "2010-05-08"
        };
        let mut form = form_body(&[("Action", action), ("Version", version)]);
        form.push('&');
        form.push_str(&form_body(params));
        let req = self.signer.signed(Signed {
            method: "POST",
            path_and_query: "/",
            service,
            content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
            body: Bytes::from(form),
        })?;
        let resp = self
            .client
            .request(req)
            .await
            .with_context(|| format!("connecting to {}", self.endpoint))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            if let (Some(code), Some(msg)) = (xml_tag(&text, "Code"), xml_tag(&text, "Message"))
                && text.contains("<ErrorResponse")
            {
                bail!("{action}: {msg} ({code}, {status})");
            }
            return Err(call_error(self.endpoint, status, &body));
        }
        xml_to_json(&body)
    }

    /// The ARN of policy `name`: a built-in's, or the deployment's own.
    async fn policy_arn(&self, name: &str) -> anyhow::Result<String> {
        if name.starts_with("arn:") {
            return Ok(name.to_owned());
        }
        if cairn_iam::builtin_document(name).is_some() {
            return Ok(format!("arn:aws:iam::aws:policy/{name}"));
        }
        let me = self.call("GetCallerIdentity", &[]).await?;
        let account = at(&me, "Account").as_str().unwrap_or_default();
        Ok(format!("arn:aws:iam::{account}:policy/{name}"))
    }

    /// A signed admin API call for service accounts; its JSON answer.
    async fn svcacct(
        &self,
        method: &str,
        what: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let path = format!("{}service-accounts{what}", cairn_s3::endpoints::ADMIN);
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = self.signer.signed(Signed {
            method,
            path_and_query: &path,
            service: "s3",
            content_type: (!body.is_empty()).then_some("application/json"),
            body,
        })?;
        let resp = self
            .client
            .request(req)
            .await
            .with_context(|| format!("connecting to {}", self.endpoint))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(call_error(self.endpoint, status, &body));
        }
        serde_json::from_slice(&body).context("the server's answer is not JSON")
    }
}

fn form_body(params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Member `k` of `v` (Null when absent).
fn at<'a>(v: &'a Value, k: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    v.get(k).unwrap_or(&NULL)
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    at(v, k).as_str().unwrap_or("")
}

fn items<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    at(v, k).as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Every item of a list call: its JSON (`json`), else a line each of the
/// items' `fields`, two spaces apart, each after its label.
async fn print_list(
    iam: &Iam<'_>,
    call: (&str, &[(&str, &str)], &str),
    json: bool,
    fields: &[(&str, &str)],
) -> anyhow::Result<()> {
    let (action, params, list) = call;
    let items = all(iam, action, params, list).await?;
    if json {
        print_json(&items);
        return Ok(());
    }
    for item in items.as_array().map(Vec::as_slice).unwrap_or_default() {
        let cols: Vec<String> = fields
            .iter()
            .map(|(label, k)| format!("{label}{}", s(item, k)))
            .collect();
        println!("{}", cols.join("  "));
    }
    Ok(())
}

/// Every page of a list call, its items joined.
async fn all(
    iam: &Iam<'_>,
    action: &str,
    params: &[(&str, &str)],
    list: &str,
) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut p: Vec<(&str, &str)> = params.to_vec();
        if let Some(m) = &marker {
            p.push(("Marker", m));
        }
        let v = iam.call(action, &p).await?;
        out.extend(items(&v, list).iter().cloned());
        if at(&v, "IsTruncated") != "true" {
            break;
        }
        marker = at(&v, "Marker").as_str().map(str::to_owned);
        if marker.is_none() {
            break;
        }
    }
    Ok(Value::Array(out))
}

fn read_policy(file: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading policy file {}", file.display()))
}

/// The query parameter naming a policy target, and the action suffix.
fn target(to: &PolicyTarget) -> (&'static str, &'static str, &str) {
    match (&to.user, &to.group, &to.role) {
        (Some(u), _, _) => ("User", "UserName", u),
        (_, Some(g), _) => ("Group", "GroupName", g),
        (_, _, Some(r)) => ("Role", "RoleName", r),
        _ => ("User", "UserName", ""),
    }
}

pub(crate) async fn user(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    cmd: &UserCommand,
) -> anyhow::Result<()> {
    let iam = Iam {
        client,
        signer,
        endpoint,
    };
    match cmd {
        UserCommand::Add { name } => {
            iam.call("CreateUser", &[("UserName", name)]).await?;
            println!("created user {name}");
        }
        UserCommand::List { json } => {
            let fields = [("", "UserName"), ("", "UserId"), ("", "CreateDate")];
            print_list(&iam, ("ListUsers", &[], "Users"), *json, &fields).await?;
        }
        UserCommand::Info { name, json } => {
            let p = [("UserName", name.as_str())];
            let u = iam.call("GetUser", &p).await?;
            let groups = all(&iam, "ListGroupsForUser", &p, "Groups").await?;
            let attached = all(&iam, "ListAttachedUserPolicies", &p, "AttachedPolicies").await?;
            let inline = all(&iam, "ListUserPolicies", &p, "PolicyNames").await?;
            let keys = all(&iam, "ListAccessKeys", &p, "AccessKeyMetadata").await?;
            let v = json!({
                "User": at(&u, "User"), "Groups": groups, "AttachedPolicies": attached,
                "InlinePolicies": inline, "AccessKeys": keys,
            });
            if *json {
                print_json(&v);
            } else {
                let names = |a: &Value, k: &str| {
                    a.as_array()
                        .map(|a| {
                            a.iter()
                                .map(|x| {
                                    if k.is_empty() {
                                        x.as_str().unwrap_or("")
                                    } else {
                                        s(x, k)
                                    }
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default()
                };
                println!("user {} ({})", name, s(at(&u, "User"), "Arn"));
                println!("groups: {}", names(at(&v, "Groups"), "GroupName"));
                println!(
                    "policies: {}",
                    names(at(&v, "AttachedPolicies"), "PolicyName")
                );
                println!("inline policies: {}", names(at(&v, "InlinePolicies"), ""));
                for k in items(&v, "AccessKeys") {
                    println!("key {}  {}", s(k, "AccessKeyId"), s(k, "Status"));
                }
            }
        }
        UserCommand::Disable { name } | UserCommand::Enable { name } => {
            let status = if matches!(cmd, UserCommand::Disable { .. }) {
                "Inactive"
            } else {
                "Active"
            };
            iam.call("UpdateUser", &[("UserName", name), ("Status", status)])
                .await?;
            println!(
                "user {name} {}",
                if status == "Active" {
                    "enabled"
                } else {
                    "disabled"
                }
            );
        }
        UserCommand::Remove { name } => {
            iam.call("DeleteUser", &[("UserName", name)]).await?;
            println!("removed user {name}");
        }
        UserCommand::Key { cmd } => key(&iam, cmd).await?,
    }
    Ok(())
}

async fn key(iam: &Iam<'_>, cmd: &KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Add { user, json } => {
            let v = iam.call("CreateAccessKey", &[("UserName", user)]).await?;
            if *json {
                print_json(at(&v, "AccessKey"));
            } else {
                let k = at(&v, "AccessKey");
                println!("access key {}", s(k, "AccessKeyId"));
                println!("secret key {}", s(k, "SecretAccessKey"));
            }
        }
        KeyCommand::List { user, json } => {
            let call = (
                "ListAccessKeys",
                &[("UserName", user.as_str())][..],
                "AccessKeyMetadata",
            );
            let fields = [("", "AccessKeyId"), ("", "Status"), ("", "CreateDate")];
            print_list(iam, call, *json, &fields).await?;
        }
        KeyCommand::Disable { user, key } | KeyCommand::Enable { user, key } => {
            let status = if matches!(cmd, KeyCommand::Disable { .. }) {
                "Inactive"
            } else {
                "Active"
            };
            iam.call(
                "UpdateAccessKey",
                &[("UserName", user), ("AccessKeyId", key), ("Status", status)],
            )
            .await?;
            println!(
                "key {key} {}",
                if status == "Active" {
                    "enabled"
                } else {
                    "disabled"
                }
            );
        }
        KeyCommand::Remove { user, key } => {
            iam.call(
                "DeleteAccessKey",
                &[("UserName", user), ("AccessKeyId", key)],
            )
            .await?;
            println!("removed key {key}");
        }
    }
    Ok(())
}

pub(crate) async fn group(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    cmd: &GroupCommand,
) -> anyhow::Result<()> {
    let iam = Iam {
        client,
        signer,
        endpoint,
    };
    match cmd {
        GroupCommand::Add { name, members } => {
            iam.call("CreateGroup", &[("GroupName", name)]).await?;
            for u in members {
                iam.call("AddUserToGroup", &[("GroupName", name), ("UserName", u)])
                    .await?;
            }
            println!("created group {name}");
        }
        GroupCommand::List { json } => {
            let fields = [("", "GroupName"), ("", "GroupId")];
            print_list(&iam, ("ListGroups", &[], "Groups"), *json, &fields).await?;
        }
        GroupCommand::Info { name, json } => {
            let v = iam.call("GetGroup", &[("GroupName", name)]).await?;
            let attached = all(
                &iam,
                "ListAttachedGroupPolicies",
                &[("GroupName", name)],
                "AttachedPolicies",
            )
            .await?;
            let v = json!({"Group": at(&v, "Group"), "Users": at(&v, "Users"), "AttachedPolicies": attached});
            if *json {
                print_json(&v);
            } else {
                println!("group {name} ({})", s(at(&v, "Group"), "Arn"));
                let users: Vec<&str> = items(&v, "Users")
                    .iter()
                    .map(|u| s(u, "UserName"))
                    .collect();
                println!("members: {}", users.join(", "));
                let pols: Vec<&str> = items(&v, "AttachedPolicies")
                    .iter()
                    .map(|p| s(p, "PolicyName"))
                    .collect();
                println!("policies: {}", pols.join(", "));
            }
        }
        GroupCommand::Join { name, users } => {
            for u in users {
                iam.call("AddUserToGroup", &[("GroupName", name), ("UserName", u)])
                    .await?;
            }
            println!("added {} to group {name}", users.join(", "));
        }
        GroupCommand::Leave { name, users } => {
            for u in users {
                iam.call(
                    "RemoveUserFromGroup",
                    &[("GroupName", name), ("UserName", u)],
                )
                .await?;
            }
            println!("removed {} from group {name}", users.join(", "));
        }
        GroupCommand::Remove { name } => {
            iam.call("DeleteGroup", &[("GroupName", name)]).await?;
            println!("removed group {name}");
        }
    }
    Ok(())
}

pub(crate) async fn policy(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    cmd: &PolicyCommand,
) -> anyhow::Result<()> {
    let iam = Iam {
        client,
        signer,
        endpoint,
    };
    match cmd {
        PolicyCommand::Create { name, file } => {
            let doc = read_policy(file)?;
            iam.call(
                "CreatePolicy",
                &[("PolicyName", name), ("PolicyDocument", &doc)],
            )
            .await?;
            println!("created policy {name}");
        }
        PolicyCommand::Update { name, file } => {
            let doc = read_policy(file)?;
            let arn = iam.policy_arn(name).await?;
            iam.call(
                "CreatePolicyVersion",
                &[
                    ("PolicyArn", &arn),
                    ("PolicyDocument", &doc),
                    ("SetAsDefault", "true"),
                ],
            )
            .await?;
            println!("updated policy {name}");
        }
        PolicyCommand::List { json } => {
            let fields = [
                ("", "PolicyName"),
                ("", "Arn"),
                ("attached ", "AttachmentCount"),
            ];
            print_list(&iam, ("ListPolicies", &[], "Policies"), *json, &fields).await?;
        }
        PolicyCommand::Info { name, json } => {
            let arn = iam.policy_arn(name).await?;
            let p = iam.call("GetPolicy", &[("PolicyArn", &arn)]).await?;
            let version = s(at(&p, "Policy"), "DefaultVersionId").to_owned();
            let v = iam
                .call(
                    "GetPolicyVersion",
                    &[("PolicyArn", &arn), ("VersionId", &version)],
                )
                .await?;
            let encoded = s(at(&v, "PolicyVersion"), "Document");
            let doc = percent_encoding::percent_decode_str(encoded)
                .decode_utf8_lossy()
                .into_owned();
            if *json {
                let document: Value = serde_json::from_str(&doc).unwrap_or(Value::String(doc));
                print_json(&json!({"Policy": at(&p, "Policy"), "Document": document}));
            } else {
                println!("{doc}");
            }
        }
        PolicyCommand::Remove { name } => {
            let arn = iam.policy_arn(name).await?;
            iam.call("DeletePolicy", &[("PolicyArn", &arn)]).await?;
            println!("removed policy {name}");
        }
        PolicyCommand::Attach { name, to } | PolicyCommand::Detach { name, to } => {
            let attach = matches!(cmd, PolicyCommand::Attach { .. });
            let arn = iam.policy_arn(name).await?;
            let (kind, param, who) = target(to);
            let action = format!("{}{kind}Policy", if attach { "Attach" } else { "Detach" });
            iam.call(&action, &[(param, who), ("PolicyArn", &arn)])
                .await?;
            println!(
                "{} policy {name} {} {} {who}",
                if attach { "attached" } else { "detached" },
                if attach { "to" } else { "from" },
                kind.to_lowercase()
            );
        }
    }
    Ok(())
}

pub(crate) async fn svcacct(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    cmd: &SvcacctCommand,
) -> anyhow::Result<()> {
    let iam = Iam {
        client,
        signer,
        endpoint,
    };
    match cmd {
        SvcacctCommand::Add {
            user,
            policy,
            name,
            description,
            expires_in,
            json,
        } => {
            let policy = policy.as_deref().map(read_policy).transpose()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let body = json!({
                "user": user, "policy": policy, "name": name, "description": description,
                "expires": expires_in.map(|s| now + s),
            });
            let v = iam.svcacct("POST", "", Some(body)).await?;
            if *json {
                print_json(&v);
            } else {
                println!("access key {}", s(&v, "access_key"));
                println!("secret key {}", s(&v, "secret_key"));
            }
        }
        SvcacctCommand::List { user, json } => {
            let q = user
                .as_deref()
                .map(|u| format!("?user={}", enc(u)))
                .unwrap_or_default();
            let v = iam.svcacct("GET", &q, None).await?;
            if *json {
                print_json(&v);
            } else {
                for a in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                    println!(
                        "{}  {}  {}",
                        s(a, "access_key"),
                        s(a, "status"),
                        s(a, "name")
                    );
                }
            }
        }
        SvcacctCommand::Info { key, json } => {
            let v = iam
                .svcacct("GET", &format!("/info?access_key={}", enc(key)), None)
                .await?;
            if *json {
                print_json(&v);
            } else {
                println!(
                    "service account {} of {}",
                    s(&v, "access_key"),
                    if s(&v, "parent").is_empty() {
                        "the root user"
                    } else {
                        s(&v, "parent")
                    }
                );
                println!("status {}", s(&v, "status"));
                if let Some(p) = at(&v, "policy").as_str() {
                    println!("policy {p}");
                }
            }
        }
        SvcacctCommand::Disable { key } | SvcacctCommand::Enable { key } => {
            let status = if matches!(cmd, SvcacctCommand::Disable { .. }) {
                "disabled"
            } else {
                "enabled"
            };
            iam.svcacct(
                "POST",
                &format!("/status?access_key={}&status={status}", enc(key)),
                None,
            )
            .await?;
            println!("service account {key} {status}");
        }
        SvcacctCommand::Remove { key } => {
            iam.svcacct("DELETE", &format!("?access_key={}", enc(key)), None)
                .await?;
            println!("removed service account {key}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_json() {
        let xml = br#"<?xml version="1.0"?><ListUsersResponse xmlns="x"><ListUsersResult><Users><member><UserName>a&amp;b</UserName></member></Users><IsTruncated>false</IsTruncated></ListUsersResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListUsersResponse>"#;
        let v = xml_to_json(xml).unwrap();
        assert_eq!(v["Users"][0]["UserName"], "a&b");
        assert_eq!(v["IsTruncated"], "false");
        let empty = br#"<ListGroupsResponse><ListGroupsResult><Groups></Groups></ListGroupsResult></ListGroupsResponse>"#;
        assert_eq!(xml_to_json(empty).unwrap()["Groups"], json!([]));
    }
}
