//! Access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey,
//! DeleteAccessKey, GetAccessKeyLastUsed. Without `UserName` a call is
//! about the caller's own user.

use super::call::{Call, Kind, Reply};
use super::error::QueryError;
use super::users::{status, status_str};
use super::xml::Xml;

pub(crate) async fn create_access_key(cx: &Call<'_>) -> Reply {
    let user = cx.user_param()?;
    cx.authorize(&cx.arn(Kind::User, &user))?;
    let now = cx.now;
    let k = cx
        .iam
        .change(|st| st.create_access_key(&user, now).cloned())
        .await?;
    let mut x = Xml::new();
    x.open("AccessKey")
        .leaf("UserName", &user)
        .leaf("AccessKeyId", &k.id)
        .leaf("Status", status_str(k.status))
        .leaf("SecretAccessKey", &k.secret)
        .time("CreateDate", k.created)
        .close("AccessKey");
    Ok(Some(x))
}

pub(crate) async fn list_access_keys(cx: &Call<'_>) -> Reply {
    let user = cx.user_param()?;
    cx.authorize(&cx.arn(Kind::User, &user))?;
    let page = cx.params.page()?;
    let st = cx.iam.state();
    st.user(&user)?;
    let (keys, next) = page.take(st.user_keys(&user).collect(), |k| k.id.as_str());
    let mut x = Xml::new();
    x.list("AccessKeyMetadata", &keys, |x, k| {
        x.leaf("UserName", &user)
            .leaf("AccessKeyId", &k.id)
            .leaf("Status", status_str(k.status))
            .time("CreateDate", k.created);
    });
    x.truncated(next.as_deref());
    Ok(Some(x))
}

pub(crate) async fn update_access_key(cx: &Call<'_>) -> Reply {
    let user = cx.user_param()?;
    let id = cx.params.req("AccessKeyId")?;
    let s = status(cx.params.req("Status")?)?;
    cx.authorize(&cx.arn(Kind::User, &user))?;
    cx.iam.change(|st| st.set_key_status(&user, id, s)).await?;
    Ok(None)
}

pub(crate) async fn delete_access_key(cx: &Call<'_>) -> Reply {
    let user = cx.user_param()?;
    let id = cx.params.req("AccessKeyId")?;
    cx.authorize(&cx.arn(Kind::User, &user))?;
    cx.iam.change(|st| st.delete_access_key(&user, id)).await?;
    Ok(None)
}

/// When a key was last used on this server (not kept across restarts).
pub(crate) async fn get_access_key_last_used(cx: &Call<'_>) -> Reply {
    let id = cx.params.req("AccessKeyId")?;
    let st = cx.iam.state();
    let not_found = || QueryError::no_such(format!("The Access Key with id {id} cannot be found"));
    let k = st.key(id).ok_or_else(not_found)?;
    // the root user's service accounts have no IAM user to name
    let owner = if k.owner.is_empty() {
        "*".to_owned()
    } else {
        k.owner.clone()
    };
    if cx.authorize(&cx.arn(Kind::User, &owner)).is_err() {
        // do not tell a caller who may not see it that the key exists
        return Err(not_found());
    }
    let mut x = Xml::new();
    if !k.owner.is_empty() {
        x.leaf("UserName", &k.owner);
    }
    x.open("AccessKeyLastUsed");
    match cx.iam.last_used(id) {
        Some(t) => x
            .time("LastUsedDate", t)
            .leaf("ServiceName", "s3")
            .leaf("Region", "N/A"),
        None => x.leaf("ServiceName", "N/A").leaf("Region", "N/A"),
    };
    x.close("AccessKeyLastUsed");
    Ok(Some(x))
}
