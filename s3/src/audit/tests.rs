use super::*;

fn finished<'a>(claimed: Option<&'a str>) -> Finished<'a> {
    Finished {
        time: time::OffsetDateTime::from_unix_timestamp_nanos(1_796_600_000_123_456_789).unwrap(),
        request_id: "0123456789ABCDEF",
        source: Some("10.1.2.3:5000".parse().unwrap()),
        method: "PUT",
        operation: Some("PutObject"),
        claimed_key: claimed,
        status: 403,
        error: Some("AccessDenied"),
        bytes_in: 5,
        bytes_out: 243,
        duration: std::time::Duration::from_micros(1500),
        user_agent: Some("aws-cli/2 \"quoted\""),
    }
}

#[test]
fn a_line_is_one_json_object_with_every_field() {
    let notes = Notes::default();
    notes.with(|n| {
        n.who = Some(Who {
            kind: "user",
            access_key: Some("AKUSER".into()),
            user: Some("alice".into()),
            arn: Some("arn:aws:iam::000000000000:user/alice".into()),
            parent: None,
        })
    });
    let key = "dir/new\nline \"quoted\"";
    let resource = cairn_iam::s3_arn("b", Some(key));
    notes.decided(Some("s3:PutObject"), Some(&resource), Decision::Deny);
    let l = line(&finished(None), &notes);
    assert!(!l.contains('\n'), "{l}");
    let v: serde_json::Value = serde_json::from_str(&l).unwrap();
    assert_eq!(v["time"], "2026-12-06T23:33:20.123Z");
    assert_eq!(v["request_id"], "0123456789ABCDEF");
    assert_eq!(v["source"], "10.1.2.3:5000");
    assert_eq!(v["identity"]["type"], "user");
    assert_eq!(v["identity"]["user"], "alice");
    assert_eq!(v["identity"]["access_key"], "AKUSER");
    assert_eq!(v["action"], "s3:PutObject");
    assert_eq!(v["resource"], format!("arn:aws:s3:::b/{key}"));
    assert_eq!(v["result"]["status"], 403);
    assert_eq!(v["result"]["error"], "AccessDenied");
    assert_eq!(v["result"]["decision"], "deny");
    assert_eq!(v["bytes_in"], 5);
    assert_eq!(v["bytes_out"], 243);
    assert_eq!(v["duration_ms"], 1.5);
    assert_eq!(v["user_agent"], "aws-cli/2 \"quoted\"");
}

#[test]
fn unnoted_callers_are_unauthenticated_or_anonymous() {
    let l = line(&finished(Some("AKCLAIMED")), &Notes::default());
    let v: serde_json::Value = serde_json::from_str(&l).unwrap();
    assert_eq!(v["identity"]["type"], "unauthenticated");
    assert_eq!(v["identity"]["access_key"], "AKCLAIMED");
    assert_eq!(v["result"]["decision"], "n/a");
    assert!(v["action"].is_null());
    let l = line(&finished(None), &Notes::default());
    let v: serde_json::Value = serde_json::from_str(&l).unwrap();
    assert_eq!(v["identity"]["type"], "anonymous");
    assert!(v["identity"]["access_key"].is_null());
}

#[test]
fn a_refusal_is_not_overwritten() {
    let notes = Notes::default();
    notes.decided(
        Some("s3:PutObject"),
        Some("arn:aws:s3:::b/k"),
        Decision::Allow,
    );
    notes.decided(
        Some("s3:GetObject"),
        Some("arn:aws:s3:::src/k"),
        Decision::Deny,
    );
    notes.decided(Some("s3:Other"), None, Decision::Allow);
    notes.action("ignored");
    let n = notes.take();
    assert_eq!(n.action.as_deref(), Some("s3:GetObject"));
    assert_eq!(n.resource.as_deref(), Some("arn:aws:s3:::src/k"));
    assert_eq!(n.decision, Some(Decision::Deny));
}

#[test]
fn resources_by_scope() {
    use cairn_iam::s3ops::Scope;
    assert_eq!(s3_resource(Scope::Account, Some("b"), None), "*");
    assert_eq!(
        s3_resource(Scope::Bucket, Some("b"), Some("k")),
        "arn:aws:s3:::b"
    );
    assert_eq!(
        s3_resource(Scope::Object, Some("b"), Some("k")),
        "arn:aws:s3:::b/k"
    );
    assert_eq!(s3_resource(Scope::Object, None, None), "*");
}

#[test]
fn the_writer_appends_lines_and_reopens() {
    let dir = std::env::temp_dir().join(format!("cairn-audit-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.log");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(AuditTarget::File(path.clone())).unwrap();
        log.write("{\"n\":1}".into());
        log.flush().await;
        let rotated = dir.join("audit.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.reopen();
        log.write("{\"n\":2}".into());
        log.flush().await;
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "{\"n\":1}\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":2}\n");
        assert_eq!(log.dropped(), 0);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_loses_lines_counted_not_the_server() {
    let full = std::path::Path::new("/dev/full");
    if !full.exists() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(AuditTarget::File(full.to_owned())).unwrap();
        for n in 0..3 {
            log.write(format!("{{\"n\":{n}}}"));
        }
        log.flush().await;
        assert_eq!(log.dropped(), 3);
        log.write("{\"n\":3}".into());
        log.flush().await;
        assert_eq!(log.dropped(), 4);
    });
}
