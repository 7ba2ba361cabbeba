//! Evaluation of whole documents, as AWS evaluates them.

use crate::*;

const ACCOUNT: &str = "000000000000";

fn user(name: &str) -> Principal {
    Principal {
        kind: PrincipalType::User,
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        account: ACCOUNT.into(),
        canonical_id: Some(format!("canon-{name}")),
        federated: None,
    }
}

fn ask(p: &Policy, action: &str, resource: &str, who: &Principal, ctx: &Context) -> Decision {
    let action = Action::from_name(action).unwrap();
    p.evaluate(&Request {
        action,
        resource,
        principal: who,
        context: ctx,
    })
}

fn identity(doc: &str) -> Policy {
    Policy::parse(doc, PolicyKind::Identity).unwrap()
}

#[test]
fn deny_overrides_allow_and_default_is_no() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"},
        {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/keep/*"}]}"#,
    );
    let (u, c) = (user("alice"), Context::new());
    assert_eq!(
        ask(&p, "s3:GetObject", "arn:aws:s3:::b/x", &u, &c),
        Decision::Allow
    );
    assert_eq!(
        ask(&p, "s3:DeleteObject", "arn:aws:s3:::b/x", &u, &c),
        Decision::Allow
    );
    assert_eq!(
        ask(&p, "s3:DeleteObject", "arn:aws:s3:::b/keep/x", &u, &c),
        Decision::Deny
    );
    assert_eq!(
        ask(&p, "s3:GetObject", "arn:aws:s3:::other/x", &u, &c),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(&p, "s3:ListBucket", "arn:aws:s3:::b", &u, &c),
        Decision::NotApplicable
    );
    // across documents too
    let allow_all = builtin("readwrite").unwrap();
    let req = Request {
        action: Action::from_name("s3:DeleteObject").unwrap(),
        resource: "arn:aws:s3:::b/keep/x",
        principal: &u,
        context: &c,
    };
    assert_eq!(evaluate_all([allow_all, &p], &req), Decision::Deny);
    assert_eq!(evaluate_all([allow_all], &req), Decision::Allow);
    assert_eq!(evaluate_all([], &req), Decision::NotApplicable);
}

#[test]
fn not_action_and_not_resource() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","NotAction":["s3:Delete*","s3:Put*"],"NotResource":"arn:aws:s3:::secret/*"}]}"#,
    );
    let (u, c) = (user("a"), Context::new());
    assert_eq!(
        ask(&p, "s3:GetObject", "arn:aws:s3:::b/x", &u, &c),
        Decision::Allow
    );
    assert_eq!(
        ask(&p, "s3:PutObject", "arn:aws:s3:::b/x", &u, &c),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(&p, "s3:GetObject", "arn:aws:s3:::secret/x", &u, &c),
        Decision::NotApplicable
    );
}

#[test]
fn policy_variables_in_resources_and_conditions() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"},
        {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::home",
         "Condition":{"StringLike":{"s3:prefix":["${aws:username}/*"]}}}]}"#,
    );
    let u = user("alice");
    let mut c = Context::new();
    c.set("aws:username", "alice");
    assert_eq!(
        ask(&p, "s3:GetObject", "arn:aws:s3:::home/alice/f", &u, &c),
        Decision::Allow
    );
    assert_eq!(
        ask(&p, "s3:GetObject", "arn:aws:s3:::home/bob/f", &u, &c),
        Decision::NotApplicable
    );
    c.set("s3:prefix", "alice/docs/");
    assert_eq!(
        ask(&p, "s3:ListBucket", "arn:aws:s3:::home", &u, &c),
        Decision::Allow
    );
    c.set("s3:prefix", "bob/");
    assert_eq!(
        ask(&p, "s3:ListBucket", "arn:aws:s3:::home", &u, &c),
        Decision::NotApplicable
    );
    // without a username the variable matches nothing
    assert_eq!(
        ask(
            &p,
            "s3:GetObject",
            "arn:aws:s3:::home/alice/f",
            &u,
            &Context::new()
        ),
        Decision::NotApplicable
    );
    // a 2008 document takes ${...} as text
    let old = identity(
        r#"{"Version":"2008-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}]}"#,
    );
    assert_eq!(
        ask(&old, "s3:GetObject", "arn:aws:s3:::home/alice/f", &u, &c),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(
            &old,
            "s3:GetObject",
            "arn:aws:s3:::home/${aws:username}/f",
            &u,
            &c
        ),
        Decision::Allow
    );
}

#[test]
fn bucket_policy_principals() {
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"public","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"},
        {"Sid":"bob","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/bob"]},
         "Action":"s3:PutObject","Resource":"arn:aws:s3:::pub/*"},
        {"Sid":"acct","Effect":"Allow","Principal":{"AWS":"000000000000"},
         "Action":"s3:ListBucket","Resource":"arn:aws:s3:::pub"},
        {"Sid":"canon","Effect":"Allow","Principal":{"CanonicalUser":"canon-carol"},
         "Action":"s3:DeleteObject","Resource":"arn:aws:s3:::pub/*"},
        {"Sid":"notbob","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:user/bob"},
         "Action":"s3:PutObjectRetention","Resource":"arn:aws:s3:::pub/*"}]}"#,
        PolicyKind::Bucket,
    )
    .unwrap();
    assert_eq!(
        p.sids().collect::<Vec<_>>(),
        ["public", "bob", "acct", "canon", "notbob"]
    );
    assert!(p.is_public());
    let c = Context::new();
    let anon = Principal::anonymous();
    let (bob, carol) = (user("bob"), user("carol"));
    let obj = "arn:aws:s3:::pub/x";
    assert_eq!(ask(&p, "s3:GetObject", obj, &anon, &c), Decision::Allow);
    assert_eq!(
        ask(&p, "s3:PutObject", obj, &anon, &c),
        Decision::NotApplicable
    );
    assert_eq!(ask(&p, "s3:PutObject", obj, &bob, &c), Decision::Allow);
    assert_eq!(
        ask(&p, "s3:PutObject", obj, &carol, &c),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(&p, "s3:ListBucket", "arn:aws:s3:::pub", &carol, &c),
        Decision::Allow
    );
    assert_eq!(
        ask(&p, "s3:ListBucket", "arn:aws:s3:::pub", &anon, &c),
        Decision::NotApplicable
    );
    assert_eq!(ask(&p, "s3:DeleteObject", obj, &carol, &c), Decision::Allow);
    assert_eq!(
        ask(&p, "s3:DeleteObject", obj, &bob, &c),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(&p, "s3:PutObjectRetention", obj, &carol, &c),
        Decision::Deny
    );
    assert_eq!(
        ask(&p, "s3:PutObjectRetention", obj, &bob, &c),
        Decision::NotApplicable
    );
    let private = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
        "Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*",
        "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        PolicyKind::Bucket,
    )
    .unwrap();
    assert!(!private.is_public());
}

#[test]
fn builtins() {
    let names: Vec<_> = builtin_names().collect();
    assert_eq!(
        names,
        [
            "readonly",
            "readwrite",
            "writeonly",
            "diagnostics",
            "consoleAdmin"
        ]
    );
    for n in names {
        assert!(builtin(n).is_some(), "{n} parses");
        assert!(builtin_document(n).is_some());
    }
    let (u, c) = (user("a"), Context::new());
    let ro = builtin("readonly").unwrap();
    assert_eq!(
        ask(ro, "s3:GetObject", "arn:aws:s3:::b/k", &u, &c),
        Decision::Allow
    );
    assert_eq!(
        ask(ro, "s3:PutObject", "arn:aws:s3:::b/k", &u, &c),
        Decision::NotApplicable
    );
    let wo = builtin("writeonly").unwrap();
    assert_eq!(
        ask(wo, "s3:PutObject", "arn:aws:s3:::b/k", &u, &c),
        Decision::Allow
    );
    assert_eq!(
        ask(wo, "s3:GetObject", "arn:aws:s3:::b/k", &u, &c),
        Decision::NotApplicable
    );
    let diag = builtin("diagnostics").unwrap();
    assert_eq!(
        ask(diag, "admin:Prometheus", "arn:aws:s3:::*", &u, &c),
        Decision::Allow
    );
    assert_eq!(
        ask(diag, "admin:Heal", "arn:aws:s3:::*", &u, &c),
        Decision::NotApplicable
    );
    let admin = builtin("consoleAdmin").unwrap();
    assert_eq!(ask(admin, "iam:CreateUser", "*", &u, &c), Decision::Allow);
    assert!(builtin("nope").is_none());
}

#[test]
fn malformed_documents_are_refused() {
    let st = |inner: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{inner}]}}"#);
    let ok = r#""Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*""#;
    assert!(Policy::parse(&st(&format!("{{{ok}}}")), PolicyKind::Identity).is_ok());
    let cases: Vec<(String, PolicyKind, &str)> = vec![
        ("{".into(), PolicyKind::Identity, "not valid"),
        ("[]".into(), PolicyKind::Identity, "JSON object"),
        (
            r#"{"Version":"2012-10-17"}"#.into(),
            PolicyKind::Identity,
            "needs a Statement",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
            PolicyKind::Identity,
            "empty",
        ),
        (
            r#"{"Version":"2013-01-01","Statement":[]}"#.into(),
            PolicyKind::Identity,
            "Version",
        ),
        (
            format!(r#"{{"Version":"2012-10-17","Statment":[{{{ok}}}]}}"#),
            PolicyKind::Identity,
            "unknown policy element",
        ),
        (
            st(&format!("{{{ok},\"Extra\":1}}")),
            PolicyKind::Identity,
            "unknown statement element",
        ),
        (
            st(r#"{"Effect":"Permit","Action":"s3:GetObject","Resource":"*"}"#),
            PolicyKind::Identity,
            "Effect",
        ),
        (
            st(r#"{"Action":"s3:GetObject","Resource":"*"}"#),
            PolicyKind::Identity,
            "needs an Effect",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"s3:GetObjekt","Resource":"*"}"#),
            PolicyKind::Identity,
            "unknown action",
        ),
        (
            st(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
            PolicyKind::Identity,
            "empty",
        ),
        (
            st(r#"{"Effect":"Allow","Action":[1],"Resource":"*"}"#),
            PolicyKind::Identity,
            "string",
        ),
        (
            st(r#"{"Effect":"Allow","Resource":"*"}"#),
            PolicyKind::Identity,
            "Action or NotAction",
        ),
        (
            st(
                r#"{"Effect":"Allow","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"*"}"#,
            ),
            PolicyKind::Identity,
            "both",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"s3:GetObject"}"#),
            PolicyKind::Identity,
            "Resource or NotResource",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"bucket/*"}"#),
            PolicyKind::Identity,
            "invalid resource",
        ),
        (
            st(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#),
            PolicyKind::Identity,
            "cannot name a Principal",
        ),
        (
            st(&format!("{{{ok}}}")),
            PolicyKind::Bucket,
            "Principal or NotPrincipal",
        ),
        (
            st(
                r#"{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"s3:GetObject","Resource":"*"}"#,
            ),
            PolicyKind::Bucket,
            "unknown principal type",
        ),
        (
            st(
                r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Resource":"*"}"#,
            ),
            PolicyKind::Trust,
            "cannot name a Resource",
        ),
        (
            st(&format!(
                r#"{{{ok},"Condition":{{"StringEqualsX":{{"s3:prefix":"a"}}}}}}"#
            )),
            PolicyKind::Identity,
            "unknown condition operator",
        ),
    ];
    for (doc, kind, want) in cases {
        let err = Policy::parse(&doc, kind).unwrap_err().to_string();
        assert!(err.contains(want), "{doc}: {err}");
    }
}

#[test]
fn oversized_documents_are_refused_but_whitespace_is_free() {
    let stmt = r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#;
    let many = vec![stmt; 200].join(",");
    let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{many}]}}"#);
    let err = Policy::parse(&doc, PolicyKind::Identity).unwrap_err();
    assert!(
        matches!(err, PolicyError::TooLarge { max: 6144, .. }),
        "{err}"
    );
    let bucket_stmt = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#;
    let bucket_doc = |n| {
        let many = vec![bucket_stmt; n].join(",");
        format!(r#"{{"Version":"2012-10-17","Statement":[{many}]}}"#)
    };
    assert!(
        Policy::parse(&bucket_doc(200), PolicyKind::Bucket).is_ok(),
        "20 KiB for bucket policies"
    );
    let err = Policy::parse(&bucket_doc(300), PolicyKind::Bucket).unwrap_err();
    assert!(
        matches!(err, PolicyError::TooLarge { max: 20480, .. }),
        "{err}"
    );
    let spaced = format!(
        r#"{{"Version":"2012-10-17","Statement":[{stmt}{}]}}"#,
        " ".repeat(10_000)
    );
    assert!(Policy::parse(&spaced, PolicyKind::Identity).is_ok());
}

#[test]
fn single_statement_object_and_missing_version() {
    let p = identity(r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#);
    let (u, c) = (user("a"), Context::new());
    assert_eq!(
        ask(&p, "s3:GetObject", "arn:aws:s3:::b/k", &u, &c),
        Decision::Allow
    );
}

#[test]
fn trust_policy() {
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    )
    .unwrap();
    let c = Context::new();
    assert_eq!(
        ask(
            &p,
            "sts:AssumeRole",
            "arn:aws:iam::000000000000:role/r",
            &user("alice"),
            &c
        ),
        Decision::Allow
    );
    assert_eq!(
        ask(
            &p,
            "sts:AssumeRole",
            "arn:aws:iam::000000000000:role/r",
            &user("bob"),
            &c
        ),
        Decision::NotApplicable
    );
}
