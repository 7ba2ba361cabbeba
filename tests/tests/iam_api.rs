//! The IAM query API and STS on the S3 endpoint, driven by real
//! clients: awscli's `aws iam` / `aws sts`, boto3's IAM and STS clients,
//! raw unsigned requests, and `cairn admin user|group|policy|svcacct`.

use std::process::{Command, Output};

use anyhow::{Context as _, Result, bail, ensure};
use cairn_tests::cmd::{require_tool, run_status, run_stdout};
use cairn_tests::{Server, admin};
use serde_json::Value;

const ALLOW_GET: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/*"]}]}"#;

/// `aws ARGS --endpoint-url EP --output json` as the root user (or
/// `creds`); its JSON output (Null for none).
fn aws(s: &Server, creds: Option<(&str, &str)>, args: &[&str]) -> Result<Value> {
    let out = aws_run(s, creds, args)?;
    if !out.status.success() {
        bail!(
            "aws {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("aws {} output", args.join(" ")))
}

fn aws_run(s: &Server, creds: Option<(&str, &str)>, args: &[&str]) -> Result<Output> {
    let ep = s.endpoint();
    let mut c = s.tool("aws");
    c.args(args)
        .args(["--endpoint-url", &ep, "--output", "json"]);
    if let Some((k, sk)) = creds {
        c.env("AWS_ACCESS_KEY_ID", k)
            .env("AWS_SECRET_ACCESS_KEY", sk);
    }
    run_status(&mut c)
}

/// Runs a command that must fail with error `code` (awscli prints
/// `An error occurred (Code) when calling ...`).
fn aws_fails(s: &Server, args: &[&str], code: &str) -> Result<()> {
    let out = aws_run(s, None, args)?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains(&format!("({code})")),
        "aws {} should fail with {code}: status {}, stderr {err}",
        args.join(" "),
        out.status
    );
    Ok(())
}

fn names(v: &Value, list: &str, key: &str) -> Vec<String> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    if key.is_empty() {
                        x.as_str().unwrap_or("").to_owned()
                    } else {
                        x[key].as_str().unwrap_or("").to_owned()
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Users, keys, inline and managed policies and groups with awscli,
/// each refusal with AWS's code and nothing changed by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awscli_manages_users_keys_policies_and_groups() -> Result<()> {
    require_tool("aws")?;
    let s = Server::start_default().await?;
    let acct = aws(&s, None, &["sts", "get-caller-identity"])?;
    let account = acct["Account"].as_str().context("Account")?.to_owned();
    ensure!(
        acct["Arn"] == format!("arn:aws:iam::{account}:root"),
        "root identity: {acct}"
    );

    let u = aws(&s, None, &["iam", "create-user", "--user-name", "alice"])?;
    ensure!(u["User"]["UserName"] == "alice", "{u}");
    ensure!(
        u["User"]["Arn"] == format!("arn:aws:iam::{account}:user/alice"),
        "{u}"
    );
    aws_fails(
        &s,
        &["iam", "create-user", "--user-name", "alice"],
        "EntityAlreadyExists",
    )?;
    aws_fails(
        &s,
        &["iam", "get-user", "--user-name", "nobody"],
        "NoSuchEntity",
    )?;
    aws_fails(
        &s,
        &["iam", "create-user", "--user-name", "bad/name"],
        "InvalidInput",
    )?;
    let got = aws(&s, None, &["iam", "get-user", "--user-name", "alice"])?;
    ensure!(got["User"]["UserId"] == u["User"]["UserId"], "{got}");

    // keys: two, a third is over the limit; a user with keys cannot go
    let k1 = aws(
        &s,
        None,
        &["iam", "create-access-key", "--user-name", "alice"],
    )?;
    let id1 = k1["AccessKey"]["AccessKeyId"]
        .as_str()
        .context("key id")?
        .to_owned();
    ensure!(
        k1["AccessKey"]["SecretAccessKey"]
            .as_str()
            .is_some_and(|s| s.len() >= 40),
        "{k1}"
    );
    let k2 = aws(
        &s,
        None,
        &["iam", "create-access-key", "--user-name", "alice"],
    )?;
    let id2 = k2["AccessKey"]["AccessKeyId"]
        .as_str()
        .context("key id")?
        .to_owned();
    aws_fails(
        &s,
        &["iam", "create-access-key", "--user-name", "alice"],
        "LimitExceeded",
    )?;
    aws_fails(
        &s,
        &["iam", "delete-user", "--user-name", "alice"],
        "DeleteConflict",
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "update-access-key",
            "--user-name",
            "alice",
            "--access-key-id",
            &id2,
            "--status",
            "Inactive",
        ],
    )?;
    let keys = aws(
        &s,
        None,
        &["iam", "list-access-keys", "--user-name", "alice"],
    )?;
    let mut statuses: Vec<(String, String)> = keys["AccessKeyMetadata"]
        .as_array()
        .context("keys")?
        .iter()
        .map(|k| {
            (
                k["AccessKeyId"].as_str().unwrap_or("").to_owned(),
                k["Status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    statuses.sort();
    let mut want = vec![
        (id1.clone(), "Active".to_owned()),
        (id2.clone(), "Inactive".to_owned()),
    ];
    want.sort();
    ensure!(statuses == want, "keys: {keys}");
    let last = aws(
        &s,
        None,
        &["iam", "get-access-key-last-used", "--access-key-id", &id1],
    )?;
    ensure!(last["UserName"] == "alice", "{last}");
    // the key works (and its use is noted)
    let who = aws(
        &s,
        Some((
            &id1,
            k1["AccessKey"]["SecretAccessKey"].as_str().unwrap_or(""),
        )),
        &["sts", "get-caller-identity"],
    )?;
    ensure!(
        who["Arn"] == format!("arn:aws:iam::{account}:user/alice"),
        "{who}"
    );
    let last = aws(
        &s,
        None,
        &["iam", "get-access-key-last-used", "--access-key-id", &id1],
    )?;
    ensure!(
        last["AccessKeyLastUsed"]["LastUsedDate"].is_string(),
        "{last}"
    );

    // inline policies; every malformed document is refused and changes nothing
    aws(
        &s,
        None,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "get-b",
            "--policy-document",
            ALLOW_GET,
        ],
    )?;
    let p = aws(
        &s,
        None,
        &[
            "iam",
            "get-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "get-b",
        ],
    )?;
    let want: Value = serde_json::from_str(ALLOW_GET)?;
    ensure!(p["PolicyDocument"] == want, "document: {p}");
    let oversized = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        (0..60)
            .map(|i| format!(r#"{{"Sid":"s{i}","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket-{i:04}/some/long/prefix/*"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (what, doc) in [
        ("bad JSON", r#"{"Version":"2012-10-17","Statement":["#.to_owned()),
        ("unknown action", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Nope","Resource":"*"}]}"#.to_owned()),
        ("unknown operator", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringSortOf":{"aws:username":"x"}}}]}"#.to_owned()),
        ("oversized", oversized),
    ] {
        for name in ["get-b", "new-one"] {
            aws_fails(
                &s,
                &["iam", "put-user-policy", "--user-name", "alice", "--policy-name", name, "--policy-document", &doc],
                "MalformedPolicyDocument",
            )
            .with_context(|| what.to_owned())?;
        }
        aws_fails(&s, &["iam", "create-policy", "--policy-name", "bad", "--policy-document", &doc], "MalformedPolicyDocument")
            .with_context(|| what.to_owned())?;
    }
    let listed = aws(
        &s,
        None,
        &["iam", "list-user-policies", "--user-name", "alice"],
    )?;
    ensure!(names(&listed, "PolicyNames", "") == ["get-b"], "{listed}");
    let p = aws(
        &s,
        None,
        &[
            "iam",
            "get-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "get-b",
        ],
    )?;
    ensure!(p["PolicyDocument"] == want, "document changed: {p}");
    aws_fails(
        &s,
        &[
            "iam",
            "get-policy",
            "--policy-arn",
            &format!("arn:aws:iam::{account}:policy/bad"),
        ],
        "NoSuchEntity",
    )?;

    // managed policies, built-ins, attachments
    let mp = aws(
        &s,
        None,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "get-b-managed",
            "--policy-document",
            ALLOW_GET,
        ],
    )?;
    let arn = mp["Policy"]["Arn"]
        .as_str()
        .context("policy arn")?
        .to_owned();
    ensure!(
        arn == format!("arn:aws:iam::{account}:policy/get-b-managed"),
        "{mp}"
    );
    aws_fails(
        &s,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "get-b-managed",
            "--policy-document",
            ALLOW_GET,
        ],
        "EntityAlreadyExists",
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            &arn,
        ],
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            "arn:aws:iam::aws:policy/readonly",
        ],
    )?;
    aws_fails(
        &s,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            "arn:aws:iam::aws:policy/nope",
        ],
        "NoSuchEntity",
    )?;
    let att = aws(
        &s,
        None,
        &["iam", "list-attached-user-policies", "--user-name", "alice"],
    )?;
    let mut got = names(&att, "AttachedPolicies", "PolicyArn");
    got.sort();
    ensure!(
        got == [arn.clone(), "arn:aws:iam::aws:policy/readonly".to_owned()],
        "{att}"
    );
    let builtins = aws(&s, None, &["iam", "list-policies", "--scope", "AWS"])?;
    let b = names(&builtins, "Policies", "PolicyName");
    for n in [
        "consoleAdmin",
        "diagnostics",
        "readonly",
        "readwrite",
        "writeonly",
    ] {
        ensure!(b.contains(&n.to_owned()), "built-ins: {b:?}");
    }
    ensure!(!b.contains(&"get-b-managed".to_owned()), "{b:?}");
    let local = aws(&s, None, &["iam", "list-policies", "--scope", "Local"])?;
    ensure!(
        names(&local, "Policies", "PolicyName") == ["get-b-managed"],
        "{local}"
    );
    ensure!(local["Policies"][0]["AttachmentCount"] == 1, "{local}");
    aws_fails(
        &s,
        &["iam", "delete-policy", "--policy-arn", &arn],
        "DeleteConflict",
    )?;
    // a new default version replaces the document
    let v2 = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    let ver = aws(
        &s,
        None,
        &[
            "iam",
            "create-policy-version",
            "--policy-arn",
            &arn,
            "--policy-document",
            v2,
            "--set-as-default",
        ],
    )?;
    ensure!(ver["PolicyVersion"]["VersionId"] == "v2", "{ver}");
    let got = aws(
        &s,
        None,
        &[
            "iam",
            "get-policy-version",
            "--policy-arn",
            &arn,
            "--version-id",
            "v2",
        ],
    )?;
    ensure!(
        got["PolicyVersion"]["Document"] == serde_json::from_str::<Value>(v2)?,
        "{got}"
    );
    let got = aws(&s, None, &["iam", "get-policy", "--policy-arn", &arn])?;
    ensure!(got["Policy"]["DefaultVersionId"] == "v2", "{got}");

    // groups
    let g = aws(&s, None, &["iam", "create-group", "--group-name", "devs"])?;
    ensure!(
        g["Group"]["Arn"] == format!("arn:aws:iam::{account}:group/devs"),
        "{g}"
    );
    aws_fails(
        &s,
        &[
            "iam",
            "add-user-to-group",
            "--group-name",
            "devs",
            "--user-name",
            "nobody",
        ],
        "NoSuchEntity",
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "add-user-to-group",
            "--group-name",
            "devs",
            "--user-name",
            "alice",
        ],
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "attach-group-policy",
            "--group-name",
            "devs",
            "--policy-arn",
            "arn:aws:iam::aws:policy/readwrite",
        ],
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "put-group-policy",
            "--group-name",
            "devs",
            "--policy-name",
            "inline",
            "--policy-document",
            ALLOW_GET,
        ],
    )?;
    let gg = aws(&s, None, &["iam", "get-group", "--group-name", "devs"])?;
    ensure!(names(&gg, "Users", "UserName") == ["alice"], "{gg}");
    let fu = aws(
        &s,
        None,
        &["iam", "list-groups-for-user", "--user-name", "alice"],
    )?;
    ensure!(names(&fu, "Groups", "GroupName") == ["devs"], "{fu}");
    aws_fails(
        &s,
        &["iam", "delete-group", "--group-name", "devs"],
        "DeleteConflict",
    )?;
    let lg = aws(&s, None, &["iam", "list-groups"])?;
    ensure!(names(&lg, "Groups", "GroupName") == ["devs"], "{lg}");

    // everything taken apart again, in AWS's order
    aws(
        &s,
        None,
        &[
            "iam",
            "remove-user-from-group",
            "--group-name",
            "devs",
            "--user-name",
            "alice",
        ],
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "detach-group-policy",
            "--group-name",
            "devs",
            "--policy-arn",
            "arn:aws:iam::aws:policy/readwrite",
        ],
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "delete-group-policy",
            "--group-name",
            "devs",
            "--policy-name",
            "inline",
        ],
    )?;
    aws(&s, None, &["iam", "delete-group", "--group-name", "devs"])?;
    aws(
        &s,
        None,
        &[
            "iam",
            "detach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            &arn,
        ],
    )?;
    aws_fails(
        &s,
        &[
            "iam",
            "detach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            &arn,
        ],
        "NoSuchEntity",
    )?;
    aws(
        &s,
        None,
        &[
            "iam",
            "detach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            "arn:aws:iam::aws:policy/readonly",
        ],
    )?;
    aws(&s, None, &["iam", "delete-policy", "--policy-arn", &arn])?;
    aws(
        &s,
        None,
        &[
            "iam",
            "delete-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "get-b",
        ],
    )?;
    aws_fails(
        &s,
        &[
            "iam",
            "delete-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "get-b",
        ],
        "NoSuchEntity",
    )?;
    aws_fails(
        &s,
        &["iam", "delete-user", "--user-name", "alice"],
        "DeleteConflict",
    )?;
    for id in [&id1, &id2] {
        aws(
            &s,
            None,
            &[
                "iam",
                "delete-access-key",
                "--user-name",
                "alice",
                "--access-key-id",
                id,
            ],
        )?;
    }
    aws(&s, None, &["iam", "delete-user", "--user-name", "alice"])?;
    aws_fails(
        &s,
        &["iam", "get-user", "--user-name", "alice"],
        "NoSuchEntity",
    )?;
    let lu = aws(&s, None, &["iam", "list-users"])?;
    ensure!(names(&lu, "Users", "UserName").is_empty(), "{lu}");
    Ok(())
}

/// boto3's IAM and STS clients: roles, AssumeRole (duration, session
/// policy, trust), GetCallerIdentity for root, a user and a session; a
/// user without IAM rights is refused; unsigned and unknown calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_iam_and_sts() -> Result<()> {
    require_tool("python3")?;
    let s = Server::start_default().await?;
    let script = r#"
import sys, time, json, datetime, boto3, requests
from botocore.exceptions import ClientError
ep, root, secret = sys.argv[1:4]
from botocore.config import Config
def client(svc, k, s, t=None):
    # no client-side checks: the server's answers are under test
    return boto3.client(svc, endpoint_url=ep, aws_access_key_id=k, aws_secret_access_key=s,
                        aws_session_token=t, region_name="us-east-1",
                        config=Config(parameter_validation=False))
def code(f):
    try:
        f()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("no error")
iam = client("iam", root, secret)
sts = client("sts", root, secret)
me = sts.get_caller_identity()
acct = me["Account"]
assert me["Arn"] == f"arn:aws:iam::{acct}:root", me
iam.create_user(UserName="bob")
k = iam.create_access_key(UserName="bob")["AccessKey"]
bob_iam = client("iam", k["AccessKeyId"], k["SecretAccessKey"])
bob_sts = client("sts", k["AccessKeyId"], k["SecretAccessKey"])
assert bob_sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{acct}:user/bob"
# no IAM rights: refused, nothing made
assert code(lambda: bob_iam.create_user(UserName="eve")) == ("AccessDenied", 403)
assert code(lambda: bob_iam.list_users()) == ("AccessDenied", 403)
assert code(lambda: iam.get_user(UserName="eve")) == ("NoSuchEntity", 404)
# granted one IAM action on one resource, it has exactly that
iam.put_user_policy(UserName="bob", PolicyName="iam-self", PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListAccessKeys"],
    "Resource": "arn:aws:iam::*:user/${aws:username}"}]}))
assert bob_iam.get_user()["User"]["UserName"] == "bob"
assert len(bob_iam.list_access_keys()["AccessKeyMetadata"]) == 1
assert code(lambda: bob_iam.get_user(UserName="nobody")) == ("AccessDenied", 403)
# AssumeRole MinIO-style: any RoleArn, the user's own policies, narrowed
pol = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
before = datetime.datetime.now(datetime.timezone.utc)
r = bob_sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/anything", RoleSessionName="s-1",
                        DurationSeconds=900, Policy=pol)
c = r["Credentials"]
left = (c["Expiration"] - before).total_seconds()
assert 890 <= left <= 910, left
assert c["AccessKeyId"].startswith("ASIA"), c
sess = client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
who = sess.get_caller_identity()
assert who["Arn"].startswith(f"arn:aws:sts::{acct}:assumed-role/bob/"), who
assert who["Account"] == acct
# a session may not assume again; wrong token refused
assert code(lambda: sess.assume_role(RoleArn="arn:aws:iam::1:role/x", RoleSessionName="again"))[0] == "AccessDenied"
bad = client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"][:-4] + "AAAA")
assert code(lambda: bad.get_caller_identity())[0] == "InvalidClientTokenId"
# durations and session policies out of bounds
assert code(lambda: bob_sts.assume_role(RoleArn="arn:aws:iam::1:role/x", RoleSessionName="s1", DurationSeconds=899)) == ("ValidationError", 400)
assert code(lambda: bob_sts.assume_role(RoleArn="arn:aws:iam::1:role/x", RoleSessionName="s1", DurationSeconds=43201)) == ("ValidationError", 400)
assert code(lambda: bob_sts.assume_role(RoleArn="arn:aws:iam::1:role/x", RoleSessionName="s1", Policy="{nope")) == ("MalformedPolicyDocument", 400)
assert code(lambda: bob_sts.assume_role(RoleArn="arn:aws:iam::1:role/x", RoleSessionName="bad name!")) == ("ValidationError", 400)
# a role whose trust names bob; another that trusts nobody
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{acct}:user/bob"}, "Action": "sts:AssumeRole"}]})
role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=trust, MaxSessionDuration=7200)["Role"]
assert role["Arn"] == f"arn:aws:iam::{acct}:role/reader", role
assert iam.get_role(RoleName="reader")["Role"]["AssumeRolePolicyDocument"] == json.loads(trust)
iam.attach_role_policy(RoleName="reader", PolicyArn="arn:aws:iam::aws:policy/readonly")
r = bob_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="job-7", DurationSeconds=7200)
assert r["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{acct}:assumed-role/reader/job-7", r
assert r["AssumedRoleUser"]["AssumedRoleId"] == role["RoleId"] + ":job-7", r
assert code(lambda: bob_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=7201)) == ("ValidationError", 400)
rs = client("sts", r["Credentials"]["AccessKeyId"], r["Credentials"]["SecretAccessKey"], r["Credentials"]["SessionToken"])
assert rs.get_caller_identity()["Arn"] == f"arn:aws:sts::{acct}:assumed-role/reader/job-7"
nobody = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{acct}:user/carol"}, "Action": "sts:AssumeRole"}]})
iam.update_assume_role_policy(RoleName="reader", PolicyDocument=nobody)
assert code(lambda: bob_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1"))[0] == "AccessDenied"
assert code(lambda: iam.create_role(RoleName="r2", AssumeRolePolicyDocument="{}"))[0] == "MalformedPolicyDocument"
assert [x["RoleName"] for x in iam.list_roles()["Roles"]] == ["reader"]
assert code(lambda: iam.delete_role(RoleName="reader")) == ("DeleteConflict", 409)
iam.detach_role_policy(RoleName="reader", PolicyArn="arn:aws:iam::aws:policy/readonly")
iam.delete_role(RoleName="reader")
# root's own sessions
r = sts.assume_role(RoleArn="arn:aws:iam::1:role/x", RoleSessionName="root-s")
assert r["Credentials"]["AccessKeyId"].startswith("ASIA")
# raw requests: unsigned, unknown action, the error shape
h = {"Content-Type": "application/x-www-form-urlencoded"}
x = requests.post(ep + "/", data="Action=ListUsers&Version=2010-05-08", headers=h)
assert x.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in x.text and "<ErrorResponse" in x.text, x.text
x = requests.post(ep + "/", data="Action=AssumeRoleWithWebIdentity&Version=2011-06-15", headers=h)
assert x.status_code == 400 and "<Code>" in x.text, x.text
try:
    iam._make_api_call("GetAccountSummary", {})
    raise AssertionError("unknown action answered")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidAction", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
print("ok")
"#;
    let out = run_stdout(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(s.endpoint())
            .arg(s.access_key())
            .arg(s.secret_key()),
    )?;
    ensure!(out.trim_end().ends_with("ok"), "boto3 script: {out}");
    Ok(())
}

fn stdout_json(out: &Output, what: &str) -> Result<Value> {
    ensure!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{what}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn ok(out: &Output, what: &str) -> Result<String> {
    ensure!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cairn admin user|group|policy|svcacct` against a running server,
/// its keys then used by awscli.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_admin_manages_users_groups_policies_and_service_accounts() -> Result<()> {
    require_tool("aws")?;
    let s = Server::start_default().await?;
    ok(
        &admin(&s, &["user", "add", "carol"], None).await?,
        "user add",
    )?;
    ok(&admin(&s, &["user", "add", "dan"], None).await?, "user add")?;
    let out = admin(&s, &["user", "add", "carol"], None).await?;
    ensure!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("EntityAlreadyExists"),
        "second add: {out:?}"
    );
    let users = stdout_json(
        &admin(&s, &["user", "list", "--json"], None).await?,
        "user list",
    )?;
    let listed: Vec<&str> = users
        .as_array()
        .context("users")?
        .iter()
        .filter_map(|u| u["UserName"].as_str())
        .collect();
    ensure!(listed == ["carol", "dan"], "{users}");
    let key = stdout_json(
        &admin(&s, &["user", "key", "add", "carol", "--json"], None).await?,
        "key add",
    )?;
    let id = key["AccessKeyId"].as_str().context("key id")?.to_owned();
    let secret = key["SecretAccessKey"]
        .as_str()
        .context("secret")?
        .to_owned();
    let who = aws(&s, Some((&id, &secret)), &["sts", "get-caller-identity"])?;
    ensure!(
        who["Arn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":user/carol")),
        "{who}"
    );

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("p.json");
    std::fs::write(&file, ALLOW_GET)?;
    let f = file.to_string_lossy().into_owned();
    ok(
        &admin(&s, &["policy", "create", "get-b", &f], None).await?,
        "policy create",
    )?;
    ok(
        &admin(&s, &["policy", "attach", "get-b", "--user", "carol"], None).await?,
        "policy attach",
    )?;
    ok(
        &admin(
            &s,
            &["group", "add", "team", "--members", "carol,dan"],
            None,
        )
        .await?,
        "group add",
    )?;
    ok(
        &admin(
            &s,
            &["policy", "attach", "readonly", "--group", "team"],
            None,
        )
        .await?,
        "attach builtin",
    )?;
    let info = stdout_json(
        &admin(&s, &["user", "info", "carol", "--json"], None).await?,
        "user info",
    )?;
    ensure!(names(&info, "Groups", "GroupName") == ["team"], "{info}");
    ensure!(
        names(&info, "AttachedPolicies", "PolicyName") == ["get-b"],
        "{info}"
    );
    ensure!(
        names(&info, "AccessKeys", "AccessKeyId") == [id.clone()],
        "{info}"
    );
    let g = stdout_json(
        &admin(&s, &["group", "info", "team", "--json"], None).await?,
        "group info",
    )?;
    ensure!(names(&g, "Users", "UserName") == ["carol", "dan"], "{g}");
    let p = stdout_json(
        &admin(&s, &["policy", "info", "get-b", "--json"], None).await?,
        "policy info",
    )?;
    ensure!(
        p["Document"] == serde_json::from_str::<Value>(ALLOW_GET)?,
        "{p}"
    );
    let pols = stdout_json(
        &admin(&s, &["policy", "list", "--json"], None).await?,
        "policy list",
    )?;
    let pol_names: Vec<&str> = pols
        .as_array()
        .context("policies")?
        .iter()
        .filter_map(|p| p["PolicyName"].as_str())
        .collect();
    ensure!(
        pol_names.contains(&"get-b") && pol_names.contains(&"readonly") && pol_names.len() == 6,
        "{pols}"
    );

    // service accounts: root for carol; carol for herself only
    let sa = stdout_json(
        &admin(
            &s,
            &[
                "svcacct", "add", "--user", "carol", "--policy", &f, "--name", "backup", "--json",
            ],
            None,
        )
        .await?,
        "svcacct add",
    )?;
    let sa_key = sa["access_key"].as_str().context("svc key")?.to_owned();
    let sa_secret = sa["secret_key"].as_str().context("svc secret")?.to_owned();
    ensure!(sa["parent"] == "carol", "{sa}");
    let who = aws(
        &s,
        Some((&sa_key, &sa_secret)),
        &["sts", "get-caller-identity"],
    )?;
    ensure!(
        who["Arn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":user/carol")),
        "{who}"
    );
    let list = stdout_json(
        &admin(&s, &["svcacct", "list", "--user", "carol", "--json"], None).await?,
        "svcacct list",
    )?;
    ensure!(
        list.as_array().is_some_and(|a| a.len() == 1
            && a[0]["name"] == "backup"
            && a[0]["policy"].is_string()),
        "{list}"
    );
    // carol's own key lists her service accounts, but not dan's
    let mut as_carol = tokio::process::Command::new(cairn_tests::cairn_bin()?);
    as_carol
        .env("CAIRN_ROOT_USER", &id)
        .env("CAIRN_ROOT_PASSWORD", &secret)
        .args([
            "admin",
            "--endpoint",
            &s.endpoint(),
            "svcacct",
            "list",
            "--json",
        ]);
    let mine = stdout_json(&as_carol.output().await?, "svcacct list as carol")?;
    ensure!(mine.as_array().is_some_and(|a| a.len() == 1), "{mine}");
    let mut as_carol = tokio::process::Command::new(cairn_tests::cairn_bin()?);
    as_carol
        .env("CAIRN_ROOT_USER", &id)
        .env("CAIRN_ROOT_PASSWORD", &secret)
        .args([
            "admin",
            "--endpoint",
            &s.endpoint(),
            "svcacct",
            "list",
            "--user",
            "dan",
        ]);
    let out = as_carol.output().await?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("AccessDenied"),
        "{out:?}"
    );
    ok(
        &admin(&s, &["svcacct", "disable", &sa_key], None).await?,
        "svcacct disable",
    )?;
    let out = aws_run(
        &s,
        Some((&sa_key, &sa_secret)),
        &["sts", "get-caller-identity"],
    )?;
    ensure!(
        !out.status.success(),
        "a disabled service account is refused: {out:?}"
    );
    ok(
        &admin(&s, &["svcacct", "remove", &sa_key], None).await?,
        "svcacct remove",
    )?;

    // a disabled user's key is refused at once, and works again when enabled
    ok(
        &admin(&s, &["user", "disable", "carol"], None).await?,
        "user disable",
    )?;
    let out = aws_run(&s, Some((&id, &secret)), &["sts", "get-caller-identity"])?;
    ensure!(
        !out.status.success(),
        "a disabled user's key is refused: {out:?}"
    );
    ok(
        &admin(&s, &["user", "enable", "carol"], None).await?,
        "user enable",
    )?;
    aws(&s, Some((&id, &secret)), &["sts", "get-caller-identity"])?;

    let out = admin(&s, &["group", "remove", "team"], None).await?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("DeleteConflict"),
        "{out:?}"
    );
    ok(
        &admin(&s, &["group", "leave", "team", "carol,dan"], None).await?,
        "group leave",
    )?;
    ok(
        &admin(
            &s,
            &["policy", "detach", "readonly", "--group", "team"],
            None,
        )
        .await?,
        "detach",
    )?;
    ok(
        &admin(&s, &["group", "remove", "team"], None).await?,
        "group remove",
    )?;
    ok(
        &admin(&s, &["policy", "detach", "get-b", "--user", "carol"], None).await?,
        "detach",
    )?;
    ok(
        &admin(&s, &["policy", "remove", "get-b"], None).await?,
        "policy remove",
    )?;
    ok(
        &admin(&s, &["user", "key", "remove", "carol", &id], None).await?,
        "key remove",
    )?;
    let out = aws_run(&s, Some((&id, &secret)), &["sts", "get-caller-identity"])?;
    ensure!(!out.status.success(), "a deleted key is refused: {out:?}");
    ok(
        &admin(&s, &["user", "remove", "carol"], None).await?,
        "user remove",
    )?;
    let users = stdout_json(
        &admin(&s, &["user", "list", "--json"], None).await?,
        "user list",
    )?;
    ensure!(users.as_array().is_some_and(|a| a.len() == 1), "{users}");
    Ok(())
}
