//! Roles: CreateRole (with its trust policy), GetRole, ListRoles,
//! DeleteRole, UpdateAssumeRolePolicy.

use super::call::{Call, Kind, Reply, encoded_doc};
use super::xml::Xml;

fn role_members(x: &mut Xml, cx: &Call<'_>, r: &cairn_iam::Role) {
    x.leaf("Path", "/")
        .leaf("RoleName", &r.name)
        .leaf("RoleId", &r.id)
        .leaf("Arn", &cx.arn(Kind::Role, &r.name))
        .time("CreateDate", r.created)
        .leaf("AssumeRolePolicyDocument", &encoded_doc(r.trust.text()))
        .leaf("MaxSessionDuration", &r.max_session.to_string());
}

pub(crate) async fn create_role(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("RoleName")?;
    let trust = cx.params.req("AssumeRolePolicyDocument")?;
    let max = cx.params.int("MaxSessionDuration")?;
    cx.authorize(&cx.arn(Kind::Role, name))?;
    let now = cx.now;
    let r = cx
        .iam
        .change(|st| st.create_role(name, trust, max, now).cloned())
        .await?;
    let mut x = Xml::new();
    x.open("Role");
    role_members(&mut x, cx, &r);
    x.close("Role");
    Ok(Some(x))
}

pub(crate) async fn get_role(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("RoleName")?;
    cx.authorize(&cx.arn(Kind::Role, name))?;
    let st = cx.iam.state();
    let r = st.role(name)?;
    let mut x = Xml::new();
    x.open("Role");
    role_members(&mut x, cx, r);
    x.close("Role");
    Ok(Some(x))
}

pub(crate) async fn list_roles(cx: &Call<'_>) -> Reply {
    cx.authorize(&cx.arn(Kind::Role, "*"))?;
    let page = cx.params.page()?;
    let st = cx.iam.state();
    let (roles, next) = page.take(st.roles().collect(), |r| r.name.as_str());
    let mut x = Xml::new();
    x.list("Roles", &roles, |x, r| role_members(x, cx, r));
    x.truncated(next.as_deref());
    Ok(Some(x))
}

pub(crate) async fn delete_role(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("RoleName")?;
    cx.authorize(&cx.arn(Kind::Role, name))?;
    cx.iam.change(|st| st.delete_role(name)).await?;
    Ok(None)
}

pub(crate) async fn update_assume_role_policy(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("RoleName")?;
    let trust = cx.params.req("PolicyDocument")?;
    cx.authorize(&cx.arn(Kind::Role, name))?;
    cx.iam.change(|st| st.set_trust(name, trust)).await?;
    Ok(None)
}
