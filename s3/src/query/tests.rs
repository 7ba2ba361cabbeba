//! The actions over a real IAM service: no input panics, refusals carry
//! AWS's codes, and what a refused call would have changed is unchanged.

use std::sync::Arc;

use cairn_iam::{Caller, Iam, IamConfig, Identity};

use super::call::Call;
use super::dispatch;
use super::params::Params;

async fn iam() -> Arc<Iam> {
    Arc::new(
        Iam::load(IamConfig {
            root_access_key: "root".into(),
            root_secret_key: "root-secret".into(),
            account: "123456789012".into(),
            deployment_id: "dep".into(),
            store: Arc::new(cairn_api::MemConfig::new()),
        })
        .await
        .unwrap(),
    )
}

async fn run(
    iam: &Iam,
    caller: &Caller,
    action: &str,
    query: &str,
) -> Result<String, (&'static str, u16)> {
    let params = Params::parse(Some(query), None);
    let cx = Call {
        iam,
        action,
        params: &params,
        caller: Some(caller),
        now: 1_800_000_000,
        conn: None,
        oidc: None,
    };
    match dispatch::run(&cx).await {
        Ok(x) => Ok(x
            .map(|x| String::from_utf8(x.into_bytes()).unwrap())
            .unwrap_or_default()),
        Err(e) => Err((e.code, e.status.as_u16())),
    }
}

const ACTIONS: &[&str] = &[
    "GetCallerIdentity",
    "AssumeRole",
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "UpdateUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "GetAccessKeyLastUsed",
    "PutUserPolicy",
    "GetUserPolicy",
    "ListUserPolicies",
    "DeleteUserPolicy",
    "PutGroupPolicy",
    "GetGroupPolicy",
    "ListGroupPolicies",
    "DeleteGroupPolicy",
    "PutRolePolicy",
    "GetRolePolicy",
    "ListRolePolicies",
    "DeleteRolePolicy",
    "CreatePolicy",
    "GetPolicy",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListAttachedUserPolicies",
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "ListAttachedGroupPolicies",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "CreateGroup",
    "GetGroup",
    "ListGroups",
    "DeleteGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "ListGroupsForUser",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "UpdateAssumeRolePolicy",
];

#[tokio::test]
async fn no_input_panics_and_unknown_actions_are_invalid() {
    let iam = iam().await;
    let root = Caller {
        access_key: "root".into(),
        identity: Identity::Root,
    };
    run(&iam, &root, "CreateUser", "UserName=u").await.unwrap();
    let user = Caller {
        access_key: "AKIAX".into(),
        identity: Identity::User { name: "u".into() },
    };
    let values = [
        "",
        "u",
        "%00",
        "arn:aws:iam::",
        "arn:aws:iam::123456789012:policy/",
        "arn:aws:iam::aws:policy/readonly",
        "arn:aws:iam::123456789012:role/a/b/",
        "{",
        "-1",
        "99999999999999999999",
        "true",
        "Inactive",
        "v1",
        "\u{1F600}",
        "/",
    ];
    let names = [
        "UserName",
        "GroupName",
        "RoleName",
        "PolicyName",
        "PolicyArn",
        "PolicyDocument",
        "AccessKeyId",
        "Status",
        "MaxItems",
        "Marker",
        "VersionId",
        "DurationSeconds",
        "RoleSessionName",
        "RoleArn",
        "Policy",
        "SetAsDefault",
        "Scope",
        "AssumeRolePolicyDocument",
        "MaxSessionDuration",
    ];
    for action in ACTIONS {
        for (i, v) in values.iter().enumerate() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (j, n) in names.iter().enumerate() {
                q.append_pair(n, values[(i + j) % values.len()]);
            }
            q.append_pair("UserName", v);
            let q = q.finish();
            for caller in [&root, &user] {
                // any answer but a panic
                let _ = run(&iam, caller, action, &q).await;
            }
        }
    }
    assert_eq!(
        run(&iam, &root, "GetAccountSummary", "").await,
        Err(("InvalidAction", 400))
    );
}

#[tokio::test]
async fn refused_calls_change_nothing() {
    let iam = iam().await;
    let root = Caller {
        access_key: "root".into(),
        identity: Identity::Root,
    };
    run(&iam, &root, "CreateUser", "UserName=u").await.unwrap();
    let user = Caller {
        access_key: "AKIAX".into(),
        identity: Identity::User { name: "u".into() },
    };
    // a user without IAM rights
    assert_eq!(
        run(&iam, &user, "CreateUser", "UserName=v").await,
        Err(("AccessDenied", 403))
    );
    assert!(iam.state().user("v").is_err());
    assert_eq!(
        run(
            &iam,
            &user,
            "PutUserPolicy",
            "UserName=u&PolicyName=p&PolicyDocument=%7B%7D"
        )
        .await,
        Err(("AccessDenied", 403))
    );
    // malformed documents
    assert_eq!(
        run(
            &iam,
            &root,
            "PutUserPolicy",
            "UserName=u&PolicyName=p&PolicyDocument=%7B"
        )
        .await,
        Err(("MalformedPolicyDocument", 400))
    );
    assert!(iam.state().user("u").unwrap().inline.is_empty());
    assert_eq!(
        run(
            &iam,
            &root,
            "AttachUserPolicy",
            "UserName=u&PolicyArn=arn:aws:iam::aws:policy/nope"
        )
        .await,
        Err(("NoSuchEntity", 404))
    );
    assert_eq!(
        run(
            &iam,
            &root,
            "AttachUserPolicy",
            "UserName=u&PolicyArn=arn:aws:iam::999999999999:policy/x"
        )
        .await,
        Err(("NoSuchEntity", 404))
    );
    assert_eq!(
        run(&iam, &root, "AttachUserPolicy", "UserName=u&PolicyArn=nope").await,
        Err(("InvalidInput", 400))
    );
    assert!(iam.state().user("u").unwrap().attached.is_empty());
    // granted iam:CreateUser, the user creates users (and only that)
    let grant = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:CreateUser","Resource":"arn:aws:iam::123456789012:user/team-*"}]}"#;
    let q = format!(
        "UserName=u&PolicyName=p&PolicyDocument={}",
        super::call::encoded_doc(grant)
    );
    run(&iam, &root, "PutUserPolicy", &q).await.unwrap();
    run(&iam, &user, "CreateUser", "UserName=team-a")
        .await
        .unwrap();
    assert_eq!(
        run(&iam, &user, "CreateUser", "UserName=other").await,
        Err(("AccessDenied", 403))
    );
    assert_eq!(
        run(&iam, &user, "DeleteUser", "UserName=team-a").await,
        Err(("AccessDenied", 403))
    );
    let out = run(&iam, &user, "GetCallerIdentity", "").await.unwrap();
    assert!(
        out.contains("<Arn>arn:aws:iam::123456789012:user/u</Arn>"),
        "{out}"
    );
}
