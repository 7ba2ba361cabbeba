//! The IAM state and the authorization rule together.

use crate::*;

const RO: &str = "readonly";

fn principal(name: &str) -> Principal {
    Principal {
        kind: PrincipalType::User,
        arn: format!("arn:aws:iam::000000000000:user/{name}"),
        account: "000000000000".into(),
        canonical_id: None,
        federated: None,
    }
}

/// Whether `identity` (acting as `who`) may do `action` on `resource`.
fn may(
    iam: &IamState,
    identity: &Identity,
    who: &Principal,
    bucket: Option<&Policy>,
    action: &str,
    resource: &str,
) -> bool {
    let ctx = Context::new();
    let req = Request {
        action: Action::from_name(action).unwrap(),
        resource,
        principal: who,
        context: &ctx,
    };
    is_allowed(&iam.grants(identity), bucket, &req)
}

const OBJ: &str = "arn:aws:s3:::b/k";

#[test]
fn users_keys_and_their_status() {
    let mut iam = IamState::new();
    iam.create_user("alice", 1).unwrap();
    iam.set_attached(&Target::User("alice".into()), RO, true)
        .unwrap();
    let key = iam.create_access_key("alice", 1).unwrap().clone();
    assert!(key.id.starts_with("AKIA") && key.id.len() == 20 && key.secret.len() == 40);
    let (secret, id) = iam.credential(&key.id, 2).unwrap();
    assert_eq!(secret, key.secret);
    let alice = principal("alice");
    assert!(may(&iam, &id, &alice, None, "s3:GetObject", OBJ));
    assert!(!may(&iam, &id, &alice, None, "s3:PutObject", OBJ));

    iam.set_key_status("alice", &key.id, Status::Inactive)
        .unwrap();
    assert!(
        iam.credential(&key.id, 2).is_none(),
        "a disabled key is refused at once"
    );
    iam.set_key_status("alice", &key.id, Status::Active)
        .unwrap();
    iam.set_user_status("alice", Status::Inactive).unwrap();
    assert!(
        iam.credential(&key.id, 2).is_none(),
        "a disabled user's keys are refused"
    );
    assert!(
        !may(&iam, &id, &alice, None, "s3:GetObject", OBJ),
        "and its policies are gone"
    );
    iam.set_user_status("alice", Status::Active).unwrap();

    iam.create_access_key("alice", 1).unwrap();
    assert!(matches!(
        iam.create_access_key("alice", 1),
        Err(IamError::LimitExceeded(_))
    ));
    assert!(matches!(
        iam.delete_user("alice"),
        Err(IamError::DeleteConflict(_))
    ));
    assert!(matches!(
        iam.delete_access_key("bob", &key.id),
        Err(IamError::NoSuchEntity { .. })
    ));
    iam.delete_access_key("alice", &key.id).unwrap();
    assert!(
        iam.credential(&key.id, 2).is_none(),
        "a deleted key is refused"
    );
    assert!(matches!(
        iam.create_user("alice", 1),
        Err(IamError::EntityAlreadyExists { .. })
    ));
    for bad in ["", "has space", "slash/", &"x".repeat(65)] {
        assert!(
            matches!(iam.create_user(bad, 1), Err(IamError::InvalidInput(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn groups_and_managed_policies() {
    let mut iam = IamState::new();
    iam.create_user("bob", 1).unwrap();
    iam.create_group("writers", 1).unwrap();
    iam.create_policy(
        "put-b",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}]}"#,
        1,
    )
    .unwrap();
    iam.set_attached(&Target::Group("writers".into()), "put-b", true)
        .unwrap();
    let id = Identity::User { name: "bob".into() };
    let bob = principal("bob");
    assert!(!may(&iam, &id, &bob, None, "s3:PutObject", OBJ));
    iam.add_user_to_group("bob", "writers").unwrap();
    assert!(may(&iam, &id, &bob, None, "s3:PutObject", OBJ));
    // a changed policy takes effect at once
    iam.update_policy(
        "put-b",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::other/*"}]}"#,
        2,
    )
    .unwrap();
    assert!(!may(&iam, &id, &bob, None, "s3:PutObject", OBJ));
    assert!(matches!(
        iam.delete_policy("put-b"),
        Err(IamError::DeleteConflict(_))
    ));
    assert!(matches!(
        iam.delete_group("writers"),
        Err(IamError::DeleteConflict(_))
    ));
    iam.remove_user_from_group("bob", "writers").unwrap();
    assert!(iam.user("bob").unwrap().groups.is_empty());
    iam.set_attached(&Target::Group("writers".into()), "put-b", false)
        .unwrap();
    iam.delete_policy("put-b").unwrap();
    iam.delete_group("writers").unwrap();
    // built-in names are taken; unknown policies cannot be attached
    assert!(matches!(
        iam.create_policy(RO, "{}", 1),
        Err(IamError::EntityAlreadyExists { .. })
    ));
    assert!(matches!(
        iam.set_attached(&Target::User("bob".into()), "nope", true),
        Err(IamError::NoSuchEntity { .. })
    ));
    // a bad document changes nothing
    let err = iam.create_policy(
        "bad",
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:Nope","Resource":"*"}]}"#,
        1,
    );
    assert!(matches!(err, Err(IamError::MalformedPolicyDocument(_))));
    assert!(iam.policy("bad").is_err());
    let changed = iam.take_changed();
    assert!(
        changed.contains(&Entity::User("bob".into()))
            && changed.contains(&Entity::Policy("put-b".into()))
    );
    assert!(iam.take_changed().is_empty());
}

#[test]
fn inline_policies_and_explicit_denies() {
    let mut iam = IamState::new();
    iam.create_user("carol", 1).unwrap();
    let user = Target::User("carol".into());
    iam.set_attached(&user, "readwrite", true).unwrap();
    iam.set_inline(
        &user,
        "no-delete",
        Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#),
    )
    .unwrap();
    let id = Identity::User {
        name: "carol".into(),
    };
    let carol = principal("carol");
    assert!(may(&iam, &id, &carol, None, "s3:PutObject", OBJ));
    assert!(!may(&iam, &id, &carol, None, "s3:DeleteObject", OBJ));
    iam.set_inline(&user, "no-delete", None).unwrap();
    assert!(may(&iam, &id, &carol, None, "s3:DeleteObject", OBJ));
    assert!(matches!(
        iam.set_inline(&user, "no-delete", None),
        Err(IamError::NoSuchEntity { .. })
    ));
}

#[test]
fn bucket_policies_grant_and_deny() {
    let mut iam = IamState::new();
    iam.create_user("dave", 1).unwrap();
    let id = Identity::User {
        name: "dave".into(),
    };
    let dave = principal("dave");
    let grant = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/dave"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
        {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/public/*"},
        {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/locked/*"}]}"#,
        PolicyKind::Bucket,
    )
    .unwrap();
    assert!(
        !may(&iam, &id, &dave, None, "s3:GetObject", OBJ),
        "no policy at all"
    );
    assert!(
        may(&iam, &id, &dave, Some(&grant), "s3:GetObject", OBJ),
        "the bucket grants it"
    );
    iam.set_attached(&Target::User("dave".into()), "readwrite", true)
        .unwrap();
    assert!(may(&iam, &id, &dave, Some(&grant), "s3:PutObject", OBJ));
    assert!(
        !may(
            &iam,
            &id,
            &dave,
            Some(&grant),
            "s3:PutObject",
            "arn:aws:s3:::b/locked/x"
        ),
        "the bucket's Deny beats the user's Allow"
    );
    let anon = Principal::anonymous();
    let nobody = Grants::default();
    let ctx = Context::new();
    let ask = |action: &str, resource: &str, policy: Option<&Policy>| {
        let req = Request {
            action: Action::from_name(action).unwrap(),
            resource,
            principal: &anon,
            context: &ctx,
        };
        is_allowed(&nobody, policy, &req)
    };
    assert!(ask("s3:GetObject", "arn:aws:s3:::b/public/x", Some(&grant)));
    assert!(!ask("s3:GetObject", "arn:aws:s3:::b/private", Some(&grant)));
    assert!(
        !ask("s3:GetObject", "arn:aws:s3:::b/public/x", None),
        "policy removed: no access"
    );
    // root is not bound by bucket policies
    assert!(may(
        &iam,
        &Identity::Root,
        &dave,
        Some(&grant),
        "s3:PutObject",
        "arn:aws:s3:::b/locked/x"
    ));
}

#[test]
fn service_accounts_are_narrowed_by_their_policy() {
    let mut iam = IamState::new();
    iam.create_user("erin", 1).unwrap();
    iam.set_attached(&Target::User("erin".into()), "readwrite", true)
        .unwrap();
    let narrow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    let sa = iam
        .create_service_account(
            "erin",
            ServiceAccountSpec {
                policy: Some(narrow.into()),
                expires: Some(100),
                ..Default::default()
            },
            1,
        )
        .unwrap()
        .clone();
    let (_, id) = iam.credential(&sa.id, 50).unwrap();
    let erin = principal("erin");
    assert!(may(&iam, &id, &erin, None, "s3:GetObject", OBJ));
    assert!(
        !may(&iam, &id, &erin, None, "s3:PutObject", OBJ),
        "narrowed by its policy"
    );
    assert!(!may(
        &iam,
        &id,
        &erin,
        None,
        "s3:GetObject",
        "arn:aws:s3:::c/k"
    ));
    assert!(
        iam.credential(&sa.id, 100).is_none(),
        "expired to the second"
    );
    assert_eq!(iam.service_accounts("erin").count(), 1);
    assert_eq!(iam.user_keys("erin").count(), 0);
    // the parent losing a right takes it from the service account too
    iam.set_attached(&Target::User("erin".into()), "readwrite", false)
        .unwrap();
    assert!(!may(&iam, &id, &erin, None, "s3:GetObject", OBJ));
    // root's own service account: everything its policy allows
    let root_sa = iam
        .create_service_account(
            "",
            ServiceAccountSpec {
                policy: Some(narrow.into()),
                ..Default::default()
            },
            1,
        )
        .unwrap()
        .clone();
    let (_, rid) = iam.credential(&root_sa.id, 2).unwrap();
    assert!(may(&iam, &rid, &erin, None, "s3:GetObject", OBJ));
    assert!(!may(
        &iam,
        &rid,
        &erin,
        None,
        "s3:DeleteBucket",
        "arn:aws:s3:::b"
    ));
    assert!(matches!(
        iam.create_service_account(
            "erin",
            ServiceAccountSpec {
                expires: Some(1),
                ..Default::default()
            },
            5
        ),
        Err(IamError::InvalidInput(_))
    ));
    assert!(matches!(
        iam.create_service_account("nobody", ServiceAccountSpec::default(), 5),
        Err(IamError::NoSuchEntity { .. })
    ));
}

#[test]
fn roles_and_mapped_policies() {
    let mut iam = IamState::new();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role("reader", trust, None, 1).unwrap();
    iam.set_attached(&Target::Role("reader".into()), RO, true)
        .unwrap();
    assert_eq!(iam.role_policies("reader").len(), 1);
    assert!(matches!(
        iam.create_role("r2", trust, Some(60), 1),
        Err(IamError::InvalidInput(_))
    ));
    assert!(matches!(
        iam.create_role("r3", "{}", None, 1),
        Err(IamError::MalformedPolicyDocument(_))
    ));
    iam.create_group("eng", 1).unwrap();
    iam.set_attached(&Target::Group("eng".into()), "writeonly", true)
        .unwrap();
    let got = iam.mapped_policies(
        &["readonly".into(), "missing".into()],
        &["eng".into(), "nogroup".into()],
    );
    assert_eq!(got.len(), 2);
    assert!(matches!(
        iam.delete_role("reader"),
        Err(IamError::DeleteConflict(_))
    ));
}

#[test]
fn stored_entities_round_trip_and_bad_documents_do_not_load() {
    let mut iam = IamState::new();
    iam.create_user("fay", 7).unwrap();
    iam.set_inline(
        &Target::User("fay".into()),
        "p",
        Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#),
    )
    .unwrap();
    let u = iam.user("fay").unwrap();
    let json = serde_json::to_string(u).unwrap();
    let back: User = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, u);
    let broken = json.replace("s3:GetObject", "s3:Nope");
    assert!(serde_json::from_str::<User>(&broken).is_err());
}

#[test]
fn policy_versions_count_updates_and_old_records_load_as_v1() {
    let mut iam = IamState::new();
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    assert_eq!(iam.create_policy("p", doc, 1).unwrap().version, 1);
    iam.update_policy("p", doc, 2).unwrap();
    assert_eq!(iam.policy("p").unwrap().version, 2);
    // a refused update changes nothing
    assert!(iam.update_policy("p", "{", 3).is_err());
    assert_eq!(iam.policy("p").unwrap().version, 2);
    // records stored before versions were kept read as version 1
    let mut json: serde_json::Value = serde_json::to_value(iam.policy("p").unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("version");
    let back: ManagedPolicy = serde_json::from_value(json).unwrap();
    assert_eq!(back.version, 1);
}
