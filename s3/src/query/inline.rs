//! Inline policies of users, groups and roles: Put/Get/List/Delete
//! {User,Group,Role}Policy. A policy put takes effect at once.

use std::collections::BTreeMap;

use cairn_iam::{IamState, IdentityDoc, Target};

use super::call::{Call, Kind, Reply, encoded_doc};
use super::error::QueryError;
use super::xml::Xml;

/// The entity parameter of each kind (`UserName`...).
fn param(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "UserName",
        Kind::Group => "GroupName",
        _ => "RoleName",
    }
}

/// The target named by the call, authorized for the call's action.
fn target(cx: &Call<'_>, kind: Kind) -> Result<(Target, String), QueryError> {
    let name = cx.params.req(param(kind))?.to_owned();
    cx.authorize(&cx.arn(kind, &name))?;
    let t = match kind {
        Kind::User => Target::User(name.clone()),
        Kind::Group => Target::Group(name.clone()),
        _ => Target::Role(name.clone()),
    };
    Ok((t, name))
}

/// The inline policies of `t`.
fn inline_of<'a>(
    st: &'a IamState,
    t: &Target,
) -> Result<&'a BTreeMap<String, IdentityDoc>, QueryError> {
    Ok(match t {
        Target::User(n) => &st.user(n)?.inline,
        Target::Group(n) => &st.group(n)?.inline,
        Target::Role(n) => &st.role(n)?.inline,
    })
}

pub(crate) async fn put(cx: &Call<'_>, kind: Kind) -> Reply {
    let (t, _) = target(cx, kind)?;
    let policy = cx.params.req("PolicyName")?;
    let doc = cx.params.req("PolicyDocument")?;
    cx.iam
        .change(|st| st.set_inline(&t, policy, Some(doc)))
        .await?;
    Ok(None)
}

pub(crate) async fn get(cx: &Call<'_>, kind: Kind) -> Reply {
    let (t, name) = target(cx, kind)?;
    let policy = cx.params.req("PolicyName")?;
    let st = cx.iam.state();
    let doc = inline_of(&st, &t)?.get(policy).ok_or_else(|| {
        QueryError::no_such(format!(
            "The {} policy with name {policy} cannot be found.",
            kind_word(kind)
        ))
    })?;
    let mut x = Xml::new();
    x.leaf(param(kind), &name)
        .leaf("PolicyName", policy)
        .leaf("PolicyDocument", &encoded_doc(doc.text()));
    Ok(Some(x))
}

pub(crate) async fn list(cx: &Call<'_>, kind: Kind) -> Reply {
    let (t, _) = target(cx, kind)?;
    let page = cx.params.page()?;
    let st = cx.iam.state();
    let names: Vec<&String> = inline_of(&st, &t)?.keys().collect();
    let (names, next) = page.take(names, |n| n.as_str());
    let mut x = Xml::new();
    x.list("PolicyNames", &names, |x, n| {
        x.text(n);
    });
    x.truncated(next.as_deref());
    Ok(Some(x))
}

pub(crate) async fn delete(cx: &Call<'_>, kind: Kind) -> Reply {
    let (t, _) = target(cx, kind)?;
    let policy = cx.params.req("PolicyName")?;
    cx.iam.change(|st| st.set_inline(&t, policy, None)).await?;
    Ok(None)
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "user",
        Kind::Group => "group",
        _ => "role",
    }
}
