//! Groups: CreateGroup, GetGroup, ListGroups, DeleteGroup,
//! AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser.

use super::call::{Call, Kind, Reply, group_members, user_members};
use super::xml::Xml;

pub(crate) async fn create_group(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("GroupName")?;
    cx.authorize(&cx.arn(Kind::Group, name))?;
    let now = cx.now;
    let g = cx
        .iam
        .change(|st| st.create_group(name, now).cloned())
        .await?;
    let mut x = Xml::new();
    x.open("Group");
    group_members(&mut x, cx, &g);
    x.close("Group");
    Ok(Some(x))
}

/// GetGroup: the group and its members (one page of them).
pub(crate) async fn get_group(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("GroupName")?;
    cx.authorize(&cx.arn(Kind::Group, name))?;
    let page = cx.params.page()?;
    let st = cx.iam.state();
    let g = st.group(name)?;
    let members = g.members.iter().filter_map(|m| st.user(m).ok()).collect();
    let (users, next) = page.take(members, |u| u.name.as_str());
    let mut x = Xml::new();
    x.open("Group");
    group_members(&mut x, cx, g);
    x.close("Group");
    x.list("Users", &users, |x, u| user_members(x, cx, u));
    x.truncated(next.as_deref());
    Ok(Some(x))
}

pub(crate) async fn list_groups(cx: &Call<'_>) -> Reply {
    cx.authorize(&cx.arn(Kind::Group, "*"))?;
    let page = cx.params.page()?;
    let st = cx.iam.state();
    let (groups, next) = page.take(st.groups().collect(), |g| g.name.as_str());
    let mut x = Xml::new();
    x.list("Groups", &groups, |x, g| group_members(x, cx, g));
    x.truncated(next.as_deref());
    Ok(Some(x))
}

pub(crate) async fn delete_group(cx: &Call<'_>) -> Reply {
    let name = cx.params.req("GroupName")?;
    cx.authorize(&cx.arn(Kind::Group, name))?;
    cx.iam.change(|st| st.delete_group(name)).await?;
    Ok(None)
}

pub(crate) async fn add_user_to_group(cx: &Call<'_>) -> Reply {
    let group = cx.params.req("GroupName")?;
    let user = cx.params.req("UserName")?;
    cx.authorize(&cx.arn(Kind::Group, group))?;
    cx.iam
        .change(|st| st.add_user_to_group(user, group))
        .await?;
    Ok(None)
}

pub(crate) async fn remove_user_from_group(cx: &Call<'_>) -> Reply {
    let group = cx.params.req("GroupName")?;
    let user = cx.params.req("UserName")?;
    cx.authorize(&cx.arn(Kind::Group, group))?;
    cx.iam
        .change(|st| st.remove_user_from_group(user, group))
        .await?;
    Ok(None)
}

pub(crate) async fn list_groups_for_user(cx: &Call<'_>) -> Reply {
    let user = cx.params.req("UserName")?;
    cx.authorize(&cx.arn(Kind::User, user))?;
    let page = cx.params.page()?;
    let st = cx.iam.state();
    let u = st.user(user)?;
    let groups = u.groups.iter().filter_map(|g| st.group(g).ok()).collect();
    let (groups, next) = page.take(groups, |g| g.name.as_str());
    let mut x = Xml::new();
    x.list("Groups", &groups, |x, g| group_members(x, cx, g));
    x.truncated(next.as_deref());
    Ok(Some(x))
}
