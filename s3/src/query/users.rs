//! Users: CreateUser, GetUser, ListUsers, DeleteUser, UpdateUser.

use cairn_iam::{Identity, Status};

use super::call::{Call, Kind, Reply, user_members};
use super::error::QueryError;
use super::xml::Xml;

pub(crate) async fn create_user(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("UserName")?;
    cx.authorize(&cx.arn(Kind::User, name))?;
    let now = cx.now;
    let u = cx
        .iam
        .change(|st| st.create_user(name, now).cloned())
        .await?;
    let mut x = Xml::new();
    x.open("User");
    user_members(&mut x, cx, &u);
    x.close("User");
    Ok(Some(x))
}

/// GetUser: `UserName`, or the caller itself (the root user too).
pub(crate) async fn get_user(cx: &Call<'_>) -> Reply {
    let mut x = Xml::new();
    let root = cx.caller()?.identity == Identity::Root;
    if root && cx.params.opt("UserName").is_none() {
        let acct = cx.iam.account();
        x.open("User")
            .leaf("UserId", acct)
            .leaf("Arn", &format!("arn:aws:iam::{acct}:root"))
            .time("CreateDate", 0)
            .close("User");
        return Ok(Some(x));
    }
    let name = cx.user_param()?;
    cx.authorize(&cx.arn(Kind::User, &name))?;
    let st = cx.iam.state();
    let u = st.user(&name)?;
    x.open("User");
    user_members(&mut x, cx, u);
    x.close("User");
    Ok(Some(x))
}

pub(crate) async fn list_users(cx: &Call<'_>) -> Reply {
    cx.authorize(&cx.arn(Kind::User, "*"))?;
    let page = cx.params.page()?;
    let st = cx.iam.state();
    let (users, next) = page.take(st.users().collect(), |u| u.name.as_str());
    let mut x = Xml::new();
    x.list("Users", &users, |x, u| user_members(x, cx, u));
    x.truncated(next.as_deref());
    Ok(Some(x))
}

pub(crate) async fn delete_user(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("UserName")?;
    cx.authorize(&cx.arn(Kind::User, name))?;
    cx.iam.change(|st| st.delete_user(name)).await?;
    Ok(None)
}

/// UpdateUser: renaming is not supported; Cairn's own `Status`
/// parameter (`Active`/`Inactive`, MinIO's enable/disable) switches a
/// user and with it all its keys, service accounts and sessions.
pub(crate) async fn update_user(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("UserName")?;
    cx.authorize(&cx.arn(Kind::User, name))?;
    if cx.params.opt("NewUserName").is_some_and(|n| n != name)
        || cx.params.opt("NewPath").is_some_and(|p| p != "/")
    {
        return Err(QueryError::invalid_input(
            "Cairn does not rename users or change their path",
        ));
    }
    let status = match cx.params.opt("Status") {
        None => None,
        Some(s) => Some(status(s)?),
    };
    cx.iam
        .change(|st| match status {
            Some(s) => st.set_user_status(name, s),
            None => st.user(name).map(|_| ()),
        })
        .await?;
    Ok(None)
}

/// `Active` or `Inactive`.
pub(crate) fn status(s: &str) -> Result<Status, QueryError> {
    match s {
        "Active" => Ok(Status::Active),
        "Inactive" => Ok(Status::Inactive),
        _ => Err(QueryError::validation(format!(
            "Value '{s}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
        ))),
    }
}

pub(crate) fn status_str(s: Status) -> &'static str {
    match s {
        Status::Active => "Active",
        Status::Inactive => "Inactive",
    }
}
