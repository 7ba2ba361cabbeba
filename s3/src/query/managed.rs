//! Managed policies and their attachments: CreatePolicy, GetPolicy,
//! GetPolicyVersion, ListPolicies, ListPolicyVersions, DeletePolicy,
//! CreatePolicyVersion (SetAsDefault: an update, in effect at once),
//! Attach/Detach/ListAttached {User,Group,Role}Policies.
//!
//! ARNs: the deployment's own `arn:aws:iam::<account>:policy/NAME`, the
//! built-in ones (readonly, readwrite, writeonly, diagnostics,
//! consoleAdmin) `arn:aws:iam::aws:policy/NAME`. Only the default
//! version of a policy is kept (`v<N>`, N counting updates).

use std::collections::BTreeSet;

use cairn_iam::{IamState, ManagedPolicy, Target, builtin_document, builtin_names};

use super::call::{Call, Kind, Reply, encoded_doc};
use super::error::QueryError;
use super::xml::Xml;

/// A policy as the API shows it.
struct Shown<'a> {
    name: &'a str,
    id: String,
    arn: String,
    version: u32,
    created: i64,
    updated: i64,
    document: &'a str,
    attachments: usize,
}

/// The ARN of policy `name` (built-in or the deployment's).
fn policy_arn(cx: &Call<'_>, name: &str) -> String {
    if builtin_document(name).is_some() {
        format!("arn:aws:iam::aws:policy/{name}")
    } else {
        cx.arn(Kind::Policy, name)
    }
}

/// The policy name an ARN names, if it is one of ours or a built-in.
fn name_of(cx: &Call<'_>, arn: &str) -> Result<String, QueryError> {
    let invalid = || QueryError::invalid_input(format!("ARN {arn} is not valid."));
    let rest = arn.strip_prefix("arn:aws:iam::").ok_or_else(invalid)?;
    let (account, resource) = rest.split_once(':').ok_or_else(invalid)?;
    let path = resource.strip_prefix("policy/").ok_or_else(invalid)?;
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.is_empty() {
        return Err(invalid());
    }
    let found = if account == "aws" {
        builtin_document(name).is_some()
    } else {
        account == cx.iam.account() && builtin_document(name).is_none()
    };
    if !found {
        return Err(QueryError::no_such(format!(
            "Policy {arn} does not exist or is not attachable."
        )));
    }
    Ok(name.to_owned())
}

fn attachments(st: &IamState, name: &str) -> usize {
    st.users().filter(|u| u.attached.contains(name)).count()
        + st.groups().filter(|g| g.attached.contains(name)).count()
        + st.roles().filter(|r| r.attached.contains(name)).count()
}

fn shown<'a>(cx: &Call<'_>, st: &IamState, p: &'a ManagedPolicy) -> Shown<'a> {
    Shown {
        name: &p.name,
        id: p.id.clone(),
        arn: policy_arn(cx, &p.name),
        version: p.version,
        created: p.created,
        updated: p.updated,
        document: p.document.text(),
        attachments: attachments(st, &p.name),
    }
}

fn shown_builtin(st: &IamState, name: &'static str, doc: &'static str) -> Shown<'static> {
    Shown {
        name,
        id: format!("ANPA{}", name.to_ascii_uppercase()),
        arn: format!("arn:aws:iam::aws:policy/{name}"),
        version: 1,
        created: 0,
        updated: 0,
        document: doc,
        attachments: attachments(st, name),
    }
}

/// The policy `name`, built-in or the deployment's.
fn find<'a>(cx: &Call<'_>, st: &'a IamState, name: &str) -> Result<Shown<'a>, QueryError> {
    if let Some(n) = builtin_names().find(|n| *n == name)
        && let Some(doc) = builtin_document(n)
    {
        return Ok(shown_builtin(st, n, doc));
    }
    Ok(shown(cx, st, st.policy(name)?))
}

fn policy_members(x: &mut Xml, p: &Shown<'_>) {
    x.leaf("PolicyName", p.name)
        .leaf("PolicyId", &p.id)
        .leaf("Arn", &p.arn)
        .leaf("Path", "/")
        .leaf("DefaultVersionId", &format!("v{}", p.version))
        .leaf("AttachmentCount", &p.attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf("IsAttachable", "true")
        .time("CreateDate", p.created)
        .time("UpdateDate", p.updated);
}

fn version_members(x: &mut Xml, p: &Shown<'_>) {
    x.leaf("Document", &encoded_doc(p.document))
        .leaf("VersionId", &format!("v{}", p.version))
        .leaf("IsDefaultVersion", "true")
        .time("CreateDate", p.updated);
}

pub(crate) async fn create_policy(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("PolicyName")?;
    let doc = cx.params.req("PolicyDocument")?;
    cx.authorize(&cx.arn(Kind::Policy, name))?;
    let now = cx.now;
    let p = cx
        .iam
        .change(|st| st.create_policy(name, doc, now).cloned())
        .await?;
    let st = cx.iam.state();
    let mut x = Xml::new();
    x.open("Policy");
    policy_members(&mut x, &shown(cx, &st, &p));
    x.close("Policy");
    Ok(Some(x))
}

pub(crate) async fn get_policy(cx: &Call<'_>) -> Reply {
    let arn = cx.params.req("PolicyArn")?;
    let name = name_of(cx, arn)?;
    cx.authorize(arn)?;
    let st = cx.iam.state();
    let p = find(cx, &st, &name)?;
    let mut x = Xml::new();
    x.open("Policy");
    policy_members(&mut x, &p);
    x.close("Policy");
    Ok(Some(x))
}

pub(crate) async fn get_policy_version(cx: &Call<'_>) -> Reply {
    let arn = cx.params.req("PolicyArn")?;
    let version = cx.params.req("VersionId")?;
    let name = name_of(cx, arn)?;
    cx.authorize(arn)?;
    let st = cx.iam.state();
    let p = find(cx, &st, &name)?;
    if version != format!("v{}", p.version) {
        return Err(QueryError::no_such(format!(
            "Policy {arn} version {version} does not exist or is not attachable."
        )));
    }
    let mut x = Xml::new();
    x.open("PolicyVersion");
    version_members(&mut x, &p);
    x.close("PolicyVersion");
    Ok(Some(x))
}

pub(crate) async fn list_policy_versions(cx: &Call<'_>) -> Reply {
    let arn = cx.params.req("PolicyArn")?;
    let name = name_of(cx, arn)?;
    cx.authorize(arn)?;
    let st = cx.iam.state();
    let p = find(cx, &st, &name)?;
    let mut x = Xml::new();
    x.list("Versions", &[p], version_members);
    x.truncated(None);
    Ok(Some(x))
}

/// ListPolicies: `Scope` All (default), AWS (the built-ins) or Local;
/// `OnlyAttached`.
pub(crate) async fn list_policies(cx: &Call<'_>) -> Reply {
    cx.authorize(&cx.arn(Kind::Policy, "*"))?;
    let scope = cx.params.opt("Scope").unwrap_or("All");
    let (aws, local) = match scope {
        "All" => (true, true),
        "AWS" => (true, false),
        "Local" => (false, true),
        s => {
            return Err(QueryError::validation(format!(
                "Value '{s}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
            )));
        }
    };
    let only_attached = cx.params.bool("OnlyAttached")?.unwrap_or(false);
    let page = cx.params.page()?;
    let st = cx.iam.state();
    let mut all: Vec<Shown<'_>> = Vec::new();
    if aws {
        all.extend(
            builtin_names().filter_map(|n| builtin_document(n).map(|d| shown_builtin(&st, n, d))),
        );
    }
    if local {
        all.extend(st.policies().map(|p| shown(cx, &st, p)));
    }
    all.retain(|p| !only_attached || p.attachments > 0);
    all.sort_by(|a, b| a.name.cmp(b.name));
    let (items, next) = page.take(all, |p| p.name);
    let mut x = Xml::new();
    x.list("Policies", &items, policy_members);
    x.truncated(next.as_deref());
    Ok(Some(x))
}

pub(crate) async fn delete_policy(cx: &Call<'_>) -> Reply {
    let arn = cx.params.req("PolicyArn")?;
    let name = name_of(cx, arn)?;
    cx.authorize(arn)?;
    if builtin_document(&name).is_some() {
        return Err(QueryError::invalid_input(
            "Built-in policies cannot be deleted.",
        ));
    }
    cx.iam.change(|st| st.delete_policy(&name)).await?;
    Ok(None)
}

/// CreatePolicyVersion: a new default version replaces the document
/// (Cairn keeps only the default one, so `SetAsDefault` must be true).
pub(crate) async fn create_policy_version(cx: &Call<'_>) -> Reply {
    let arn = cx.params.req("PolicyArn")?;
    let doc = cx.params.req("PolicyDocument")?;
    let name = name_of(cx, arn)?;
    cx.authorize(arn)?;
    if builtin_document(&name).is_some() {
        return Err(QueryError::invalid_input(
            "Built-in policies cannot be changed.",
        ));
    }
    if cx.params.bool("SetAsDefault")? != Some(true) {
        return Err(QueryError::invalid_input(
            "Cairn keeps only the default version of a policy: give SetAsDefault=true",
        ));
    }
    let now = cx.now;
    cx.iam
        .change(|st| st.update_policy(&name, doc, now))
        .await?;
    let st = cx.iam.state();
    let p = find(cx, &st, &name)?;
    let mut x = Xml::new();
    x.open("PolicyVersion");
    version_members(&mut x, &p);
    x.close("PolicyVersion");
    Ok(Some(x))
}

/// The entity parameter of each kind and its target.
fn target(cx: &Call<'_>, kind: Kind) -> Result<Target, QueryError> {
    let param = match kind {
        Kind::User => "UserName",
        Kind::Group => "GroupName",
        _ => "RoleName",
    };
    let name = cx.params.req(param)?.to_owned();
    cx.authorize(&cx.arn(kind, &name))?;
    Ok(match kind {
        Kind::User => Target::User(name),
        Kind::Group => Target::Group(name),
        _ => Target::Role(name),
    })
}

/// Attach{User,Group,Role}Policy (`attach`) and Detach...
pub(crate) async fn attach(cx: &Call<'_>, kind: Kind, attach: bool) -> Reply {
    let t = target(cx, kind)?;
    let name = name_of(cx, cx.params.req("PolicyArn")?)?;
    cx.iam
        .change(|st| st.set_attached(&t, &name, attach))
        .await?;
    Ok(None)
}

pub(crate) async fn list_attached(cx: &Call<'_>, kind: Kind) -> Reply {
    let t = target(cx, kind)?;
    let page = cx.params.page()?;
    let st = cx.iam.state();
    let attached: &BTreeSet<String> = match &t {
        Target::User(n) => &st.user(n)?.attached,
        Target::Group(n) => &st.group(n)?.attached,
        Target::Role(n) => &st.role(n)?.attached,
    };
    let (names, next) = page.take(attached.iter().collect(), |n| n.as_str());
    let mut x = Xml::new();
    x.list("AttachedPolicies", &names, |x, n| {
        x.leaf("PolicyName", n)
            .leaf("PolicyArn", &policy_arn(cx, n));
    });
    x.truncated(next.as_deref());
    Ok(Some(x))
}
