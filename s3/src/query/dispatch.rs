//! The query API's actions: one arm each, calling the function that
//! serves it in the file of its kind.

use super::call::{Call, Kind, Reply};
use super::error::QueryError;
use super::xml::{IAM_NS, STS_NS};
use super::{groups, inline, keys, managed, roles, sts, users};

/// The actions served without a signature (the token in the request is
/// the credential).
pub(crate) const UNSIGNED: &[&str] = &["AssumeRoleWithWebIdentity"];

/// The namespace of `action`'s answers.
pub(crate) fn namespace(action: &str) -> &'static str {
    match action {
        "AssumeRole" | "AssumeRoleWithWebIdentity" | "GetCallerIdentity" => STS_NS,
        _ => IAM_NS,
    }
}

/// Runs the call's action.
pub(crate) async fn run(cx: &Call<'_>) -> Reply {
    match cx.action {
        // STS
        "GetCallerIdentity" => sts::get_caller_identity(cx).await,
        "AssumeRole" => sts::assume_role(cx).await,
        "AssumeRoleWithWebIdentity" => sts::assume_role_with_web_identity(cx).await,
        // users
        "CreateUser" => users::create_user(cx).await,
        "GetUser" => users::get_user(cx).await,
        "ListUsers" => users::list_users(cx).await,
        "DeleteUser" => users::delete_user(cx).await,
        "UpdateUser" => users::update_user(cx).await,
        // access keys
        "CreateAccessKey" => keys::create_access_key(cx).await,
        "ListAccessKeys" => keys::list_access_keys(cx).await,
        "UpdateAccessKey" => keys::update_access_key(cx).await,
        "DeleteAccessKey" => keys::delete_access_key(cx).await,
        "GetAccessKeyLastUsed" => keys::get_access_key_last_used(cx).await,
        // inline policies
        "PutUserPolicy" => inline::put(cx, Kind::User).await,
        "GetUserPolicy" => inline::get(cx, Kind::User).await,
        "ListUserPolicies" => inline::list(cx, Kind::User).await,
        "DeleteUserPolicy" => inline::delete(cx, Kind::User).await,
        "PutGroupPolicy" => inline::put(cx, Kind::Group).await,
        "GetGroupPolicy" => inline::get(cx, Kind::Group).await,
        "ListGroupPolicies" => inline::list(cx, Kind::Group).await,
        "DeleteGroupPolicy" => inline::delete(cx, Kind::Group).await,
        "PutRolePolicy" => inline::put(cx, Kind::Role).await,
        "GetRolePolicy" => inline::get(cx, Kind::Role).await,
        "ListRolePolicies" => inline::list(cx, Kind::Role).await,
        "DeleteRolePolicy" => inline::delete(cx, Kind::Role).await,
        // managed policies
        "CreatePolicy" => managed::create_policy(cx).await,
        "GetPolicy" => managed::get_policy(cx).await,
        "GetPolicyVersion" => managed::get_policy_version(cx).await,
        "ListPolicyVersions" => managed::list_policy_versions(cx).await,
        "ListPolicies" => managed::list_policies(cx).await,
        "DeletePolicy" => managed::delete_policy(cx).await,
        "CreatePolicyVersion" => managed::create_policy_version(cx).await,
        "AttachUserPolicy" => managed::attach(cx, Kind::User, true).await,
        "DetachUserPolicy" => managed::attach(cx, Kind::User, false).await,
        "ListAttachedUserPolicies" => managed::list_attached(cx, Kind::User).await,
        "AttachGroupPolicy" => managed::attach(cx, Kind::Group, true).await,
        "DetachGroupPolicy" => managed::attach(cx, Kind::Group, false).await,
        "ListAttachedGroupPolicies" => managed::list_attached(cx, Kind::Group).await,
        "AttachRolePolicy" => managed::attach(cx, Kind::Role, true).await,
        "DetachRolePolicy" => managed::attach(cx, Kind::Role, false).await,
        "ListAttachedRolePolicies" => managed::list_attached(cx, Kind::Role).await,
        // groups
        "CreateGroup" => groups::create_group(cx).await,
        "GetGroup" => groups::get_group(cx).await,
        "ListGroups" => groups::list_groups(cx).await,
        "DeleteGroup" => groups::delete_group(cx).await,
        "AddUserToGroup" => groups::add_user_to_group(cx).await,
        "RemoveUserFromGroup" => groups::remove_user_from_group(cx).await,
        "ListGroupsForUser" => groups::list_groups_for_user(cx).await,
        // roles
        "CreateRole" => roles::create_role(cx).await,
        "GetRole" => roles::get_role(cx).await,
        "ListRoles" => roles::list_roles(cx).await,
        "DeleteRole" => roles::delete_role(cx).await,
        "UpdateAssumeRolePolicy" => roles::update_assume_role_policy(cx).await,
        other => Err(QueryError::invalid_action(other)),
    }
}
