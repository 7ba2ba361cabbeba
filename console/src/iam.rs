//! The identity pages' calls: users, their access keys and policies,
//! groups and managed policies, through the server's IAM query API as the
//! session's user (the server decides each `iam:` action). One console
//! call, `POST api/iam` with `{"Action": ..., params}`, forwards the
//! actions and parameters listed here and nothing else; the page reads
//! the XML answer (`{"xml": ...}`) with the browser's DOMParser, taking
//! text only.

use http::Response;
use serde_json::{Value, json};

use crate::api::small_json;
use crate::error::ConsoleError;
use crate::reply::{self, Body};
use crate::session::Session;
use crate::upstream::{Upstream, upstream_error};

/// The actions the pages use.
const ACTIONS: &[&str] = &[
    "ListUsers",
    "CreateUser",
    "DeleteUser",
    "ListAccessKeys",
    "CreateAccessKey",
    "DeleteAccessKey",
    "ListAttachedUserPolicies",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListGroups",
    "CreateGroup",
    "DeleteGroup",
    "GetGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "ListAttachedGroupPolicies",
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "ListPolicies",
    "CreatePolicy",
    "DeletePolicy",
];
/// The parameters they take.
const PARAMS: &[&str] = &[
    "UserName",
    "GroupName",
    "PolicyArn",
    "PolicyName",
    "PolicyDocument",
    "AccessKeyId",
    "Scope",
    "MaxItems",
    "Marker",
];
/// A call's body at most (a policy document is at most 6 KiB in IAM).
const MAX_BODY: usize = 32 * 1024;

/// `POST api/iam {"Action": A, "UserName": ..., ...}`: the IAM answer's
/// XML, or its error.
pub async fn call(
    up: &Upstream,
    s: &Session,
    body: hyper::body::Incoming,
) -> Result<Response<Body>, ConsoleError> {
    let v = small_json(body, MAX_BODY).await?;
    let obj = v
        .as_object()
        .ok_or_else(|| ConsoleError::bad("the body must be a JSON object"))?;
    let action = obj
        .get("Action")
        .and_then(Value::as_str)
        .filter(|a| ACTIONS.contains(a))
        .ok_or_else(|| ConsoleError::bad("no such IAM action in the console"))?;
    // built apart: the serializer is not Send, the request's future must be
    let form = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action)
            .append_pair("Version", "2010-05-08");
        for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "Action") {
            if !PARAMS.contains(&k.as_str()) {
                return Err(ConsoleError::bad(format!(
                    "parameter {k} is not one the console sends"
                )));
            }
            let v = v
                .as_str()
                .ok_or_else(|| ConsoleError::bad(format!("{k} must be a string")))?;
            form.append_pair(k, v);
        }
        form.finish()
    };
    let (status, answer) = up.iam(s, form).await?;
    let text = String::from_utf8_lossy(&answer);
    if !status.is_success() {
        return Err(upstream_error(status, &text));
    }
    tracing::debug!(%action, user = %s.user, "console IAM call");
    Ok(reply::json(&json!({ "xml": text })))
}
