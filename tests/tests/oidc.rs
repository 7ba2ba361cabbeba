//! STS AssumeRoleWithWebIdentity against a real OpenID provider (npm
//! oauth2-mock-server, see tests/src/oidc.rs): tokens it signs are
//! exchanged by boto3, awscli and raw HTTP (unsigned, as the SDKs send
//! it) for credentials whose S3 rights are the mapped policies';
//! foreign, expired, forged and rotated-out tokens get STS's error
//! codes; a key rotation is followed without a restart.

use std::process::Command;
use std::time::Duration;

use anyhow::{Result, ensure};
use cairn_tests::cmd::{require_tool, run_stdout};
use cairn_tests::oidc::OidcProvider;
use cairn_tests::raw::Client;
use cairn_tests::{Server, StartOpts};

fn oidc_opts(config_url: &str) -> StartOpts {
    StartOpts {
        extra_args: vec![
            "--oidc-config-url".into(),
            config_url.into(),
            "--oidc-client-id".into(),
            "cairn".into(),
        ],
        ..StartOpts::drives(1)
    }
}

async fn wait_log(s: &Server, what: &str) -> bool {
    for _ in 0..100 {
        if s.full_log().contains(what) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// What every script starts with: boto3 clients without client-side
/// checks or retries (the server's answers are under test), `code(f)`
/// for an error's (code, status), `mint(claims, ...)` asking a provider's
/// control port for a signed token (aud `cairn` unless given), and
/// `exchange(token, ...)` for AssumeRoleWithWebIdentity.
const PRELUDE: &str = r#"
import sys, json, time, datetime, base64, requests, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
ep, root, secret, control, issuer = sys.argv[1:6]
def client(svc, k=root, s=secret, t=None):
    return boto3.client(svc, endpoint_url=ep, aws_access_key_id=k, aws_secret_access_key=s,
                        aws_session_token=t, region_name="us-east-1",
                        config=Config(parameter_validation=False, retries={"total_max_attempts": 1},
                                      s3={"addressing_style": "path"}))
def code(f):
    try:
        f()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("no error")
def mint(claims, expires_in=600, kid=None, at=None):
    body = {"claims": dict({"aud": "cairn"}, **claims), "expiresIn": expires_in}
    if kid:
        body["kid"] = kid
    r = requests.post((at or control) + "/mint", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.text
iam, sts, s3 = client("iam"), client("sts"), client("s3")
acct = sts.get_caller_identity()["Account"]
def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
def exchange(token, **kw):
    return sts.assume_role_with_web_identity(WebIdentityToken=token, **kw)
def session(r, svc="s3"):
    c = r["Credentials"]
    return client(svc, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
s3.create_bucket(Bucket="photos")
s3.put_object(Bucket="photos", Key="shared/a.txt", Body=b"hello")
iam.create_policy(PolicyName="photos-read", PolicyDocument=doc(
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/*"}))
iam.create_policy(PolicyName="photos-upload", PolicyDocument=doc(
    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::photos/*"}))
def reads(c):
    return c.get_object(Bucket="photos", Key="shared/a.txt")["Body"].read() == b"hello"
DENIED = ("AccessDenied", 403)
"#;

/// Runs `PRELUDE` + `script` with the server's endpoint and root keys,
/// the provider's control URL and issuer, and `more` arguments; the
/// script prints `ok` at its end.
fn python(s: &Server, idp: &OidcProvider, script: &str, more: &[String]) -> Result<()> {
    let out = run_stdout(
        Command::new("python3")
            .arg("-c")
            .arg(format!("{PRELUDE}{script}\nprint(\"ok\")\n"))
            .arg(s.endpoint())
            .arg(s.access_key())
            .arg(s.secret_key())
            .arg(idp.control_url())
            .arg(idp.issuer())
            .args(more),
    )?;
    ensure!(out.trim_end().ends_with("ok"), "python script: {out}");
    Ok(())
}

/// (a) a policy claim and a role with a trust policy, (b) a groups claim
/// onto a Cairn group, (f) `jwt:` keys in a policy's variables and
/// conditions, (e) DurationSeconds and Expiration: each proven by what
/// the credentials may and may not do over S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_tokens_get_the_mapped_policies() -> Result<()> {
    require_tool("python3")?;
    let idp = OidcProvider::start().await?;
    let s = Server::start(oidc_opts(&idp.config_url())).await?;
    let script = r#"
# (a) a claim naming a policy: reads, nothing else
r = exchange(mint({"sub": "alice", "policy": "photos-read"}), RoleSessionName="alice-app")
assert r["SubjectFromWebIdentityToken"] == "alice", r
assert r["Provider"] == issuer and r["Audience"] == "cairn", r
arn = f"arn:aws:sts::{acct}:assumed-role/web-identity/alice"
assert r["AssumedRoleUser"]["Arn"] == arn, r
assert r["Credentials"]["AccessKeyId"].startswith("ASIA"), r
assert session(r, "sts").get_caller_identity()["Arn"] == arn
alice = session(r)
assert reads(alice)
assert code(lambda: alice.put_object(Bucket="photos", Key="x", Body=b"x")) == DENIED
assert code(lambda: alice.list_objects_v2(Bucket="photos")) == DENIED
assert code(lambda: alice.delete_object(Bucket="photos", Key="shared/a.txt")) == DENIED
# a session token altered by one character is not the session
c = r["Credentials"]
bad = client("s3", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"][:-4] + "AAAA")
assert code(lambda: reads(bad))[0] == "InvalidToken"
# a RoleArn naming no role here (as MinIO clients send) is the claims' way too
r = exchange(mint({"sub": "alice", "policy": "photos-read,nonexistent"}),
             RoleArn="arn:aws:iam::123456789012:role/anything", RoleSessionName="alice-2")
assert reads(session(r))
# a token that maps to no policy of this server gets nothing
assert code(lambda: exchange(mint({"sub": "mallory", "policy": "nonexistent"}))) == DENIED
assert code(lambda: exchange(mint({"sub": "mallory"}))) == DENIED

# (a) a role whose trust policy allows this issuer, for one subject
trust = doc({"Effect": "Allow", "Principal": {"Federated": issuer},
             "Action": "sts:AssumeRoleWithWebIdentity",
             "Condition": {"StringEquals": {"jwt:sub": "carol"}}})
role = iam.create_role(RoleName="uploader", AssumeRolePolicyDocument=trust)["Role"]
iam.attach_role_policy(RoleName="uploader", PolicyArn=f"arn:aws:iam::{acct}:policy/photos-upload")
r = exchange(mint({"sub": "carol"}), RoleArn=role["Arn"], RoleSessionName="carol-job")
assert r["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{acct}:assumed-role/uploader/carol-job", r
assert r["AssumedRoleUser"]["AssumedRoleId"] == role["RoleId"] + ":carol-job", r
carol = session(r)
carol.put_object(Bucket="photos", Key="up/c.txt", Body=b"c")
assert s3.get_object(Bucket="photos", Key="up/c.txt")["Body"].read() == b"c"
assert code(lambda: reads(carol)) == DENIED
# another subject: the trust refuses, and its policy claim does not get around the role
assert code(lambda: exchange(mint({"sub": "dave", "policy": "photos-read"}),
                             RoleArn=role["Arn"], RoleSessionName="dave-job")) == DENIED
# a role that trusts another provider refuses this one's tokens
iam.create_role(RoleName="elsewhere", AssumeRolePolicyDocument=doc(
    {"Effect": "Allow", "Principal": {"Federated": "https://idp.elsewhere.example"},
     "Action": "sts:AssumeRoleWithWebIdentity"}))
iam.attach_role_policy(RoleName="elsewhere", PolicyArn=f"arn:aws:iam::{acct}:policy/photos-upload")
assert code(lambda: exchange(mint({"sub": "carol"}), RoleArn=f"arn:aws:iam::{acct}:role/elsewhere",
                             RoleSessionName="carol-2")) == DENIED

# (b) a groups claim naming a Cairn group: the group's policy
iam.create_group(GroupName="uploaders")
iam.attach_group_policy(GroupName="uploaders", PolicyArn=f"arn:aws:iam::{acct}:policy/photos-upload")
bob = session(exchange(mint({"sub": "bob", "groups": ["uploaders", "no-such-group"]})))
bob.put_object(Bucket="photos", Key="up/b.txt", Body=b"b")
assert code(lambda: reads(bob)) == DENIED
assert code(lambda: exchange(mint({"sub": "bob", "groups": ["no-such-group"]}))) == DENIED
# the group's policy changing counts for sessions already issued
iam.detach_group_policy(GroupName="uploaders", PolicyArn=f"arn:aws:iam::{acct}:policy/photos-upload")
assert code(lambda: bob.put_object(Bucket="photos", Key="up/b2.txt", Body=b"b")) == DENIED

# (f) jwt: keys: a home folder by ${jwt:sub}, for the department eng only
iam.create_policy(PolicyName="home", PolicyDocument=doc(
    {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
     "Resource": "arn:aws:s3:::photos/home/${jwt:sub}/*",
     "Condition": {"StringEquals": {"jwt:dept": "eng"}}}))
erin = session(exchange(mint({"sub": "erin", "dept": "eng", "policy": "home"})))
erin.put_object(Bucket="photos", Key="home/erin/notes.txt", Body=b"e")
assert erin.get_object(Bucket="photos", Key="home/erin/notes.txt")["Body"].read() == b"e"
assert code(lambda: erin.put_object(Bucket="photos", Key="home/frank/notes.txt", Body=b"e")) == DENIED
assert code(lambda: reads(erin)) == DENIED
gus = session(exchange(mint({"sub": "gus", "dept": "sales", "policy": "home"})))
assert code(lambda: gus.put_object(Bucket="photos", Key="home/gus/notes.txt", Body=b"g")) == DENIED

# (e) the session's length: DurationSeconds from 900 s, default 3600 s,
# at most the role's MaxSessionDuration; Expiration says when it ends
def left(r, before):
    return (r["Credentials"]["Expiration"] - before).total_seconds()
t = mint({"sub": "alice", "policy": "photos-read"})
now = datetime.datetime.now(datetime.timezone.utc)
assert 895 <= left(exchange(t, DurationSeconds=900), now) <= 905
assert 3595 <= left(exchange(t), now) <= 3605
assert 43195 <= left(exchange(t, DurationSeconds=43200), now) <= 43205
assert code(lambda: exchange(t, DurationSeconds=899)) == ("ValidationError", 400)
assert code(lambda: exchange(t, DurationSeconds=43201)) == ("ValidationError", 400)
r = exchange(mint({"sub": "carol"}), RoleArn=role["Arn"], RoleSessionName="c-1", DurationSeconds=3600)
assert 3595 <= left(r, now) <= 3605
assert code(lambda: exchange(mint({"sub": "carol"}), RoleArn=role["Arn"], RoleSessionName="c-1",
                             DurationSeconds=3601)) == ("ValidationError", 400)
# an inline session policy narrows the session
r = exchange(t, Policy=doc({"Effect": "Allow", "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::photos/other/*"}))
assert code(lambda: reads(session(r))) == DENIED
assert code(lambda: exchange(t, Policy="{nope")) == ("MalformedPolicyDocument", 400)
"#;
    python(&s, &idp, script, &[])?;
    Ok(())
}

/// (c) tokens of another issuer, expired, for another audience, forged
/// or signed by a key the provider retired are refused with STS's codes;
/// (d) after the provider rotates its key, tokens of the new key are
/// accepted by the same server process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_expired_forged_and_retired_tokens_are_refused() -> Result<()> {
    require_tool("python3")?;
    let idp = OidcProvider::start().await?;
    let other = OidcProvider::start().await?;
    let mut s = Server::start(oidc_opts(&idp.config_url())).await?;
    let pid = s.pid();
    let script = r#"
other = sys.argv[6]
claims = {"sub": "alice", "policy": "photos-read"}
INVALID = ("InvalidIdentityToken", 400)
old = mint(claims)
assert reads(session(exchange(old)))
old_kid = json.loads(base64.urlsafe_b64decode(old.split(".")[0] + "==="))["kid"]
# another issuer (a provider of its own, with its own keys)
assert code(lambda: exchange(mint(claims, at=other))) == INVALID
# the configured issuer's name on a token the other provider signed
assert code(lambda: exchange(mint(dict(claims, iss=issuer), at=other))) == INVALID
# expired (beyond the 30 s of clock skew allowed)
assert code(lambda: exchange(mint(claims, expires_in=-120))) == ("ExpiredTokenException", 400)
# another audience; no sub
assert code(lambda: exchange(mint(dict(claims, aud="someone-else")))) == INVALID
assert code(lambda: exchange(mint({"policy": "photos-read", "sub": None}))) == INVALID
# forged: the payload changed under the provider's signature; alg none
h, p, sig = old.split(".")
def b64(o):
    return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
payload = json.loads(base64.urlsafe_b64decode(p + "==="))
assert code(lambda: exchange(".".join([h, b64(dict(payload, policy="consoleAdmin")), sig]))) == INVALID
assert code(lambda: exchange(".".join([b64({"alg": "none", "typ": "JWT"}), p, ""]))) == INVALID
assert code(lambda: exchange("not-a-token")) == INVALID
assert code(lambda: exchange("x" * 20001))[0] == "ValidationError"
# (d) the provider rotates: the new key's tokens are accepted once the
# server fetches the key set again (at most every 5 s)
r = requests.post(control + "/rotate", timeout=10)
assert r.status_code == 200, r.text
new = mint(claims)
assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "==="))["kid"] != old_kid
deadline = time.time() + 15
while True:
    try:
        r = exchange(new)
        break
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidIdentityToken", e.response
        assert time.time() < deadline, "a token of the provider's new key was never accepted"
        time.sleep(0.5)
assert reads(session(r))
# (c) the retired key: a token it signed before (still unexpired) and
# one it signs now are refused
assert code(lambda: exchange(old)) == INVALID
assert code(lambda: exchange(mint(claims, kid=old_kid))) == INVALID
assert reads(session(exchange(mint(claims))))
"#;
    python(&s, &idp, script, &[other.control_url()])?;
    ensure!(s.is_running() && s.pid() == pid, "the server restarted");
    Ok(())
}

/// The server fetches the provider's keys at start; with the provider
/// down it starts all the same, says so, and answers the exchange with
/// IDPCommunicationError; raw HTTP and awscli exchange a token at the
/// server whose provider is up; a client id without a provider is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_starts_with_its_provider_up_or_down() -> Result<()> {
    let idp = OidcProvider::start().await?;
    let s = Server::start(oidc_opts(&idp.config_url())).await?;
    assert!(
        wait_log(&s, "OpenID provider's keys fetched").await,
        "{}",
        s.log()
    );
    assert!(s.full_log().contains(&idp.issuer()), "{}", s.log());
    // a provider nobody runs: ready anyway, the failure logged
    let port = cairn_tests::free_port()?;
    let down = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
    let s2 = Server::start(oidc_opts(&down)).await?;
    assert!(
        wait_log(&s2, "OpenID provider not reachable yet").await,
        "{}",
        s2.log()
    );
    // the exchange, unsigned as the SDKs send it: the provider is asked
    // again, and its absence is the client's IDPCommunicationError
    let token = idp
        .mint(
            r#"{"sub": "alice", "aud": "cairn", "policy": "readonly"}"#,
            600,
        )
        .await?;
    let form = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=s1&WebIdentityToken={token}"
    );
    let ct = [("content-type", "application/x-www-form-urlencoded")];
    let r = Client::new(s2.addr(), None)
        .send("POST", "/", &ct, form.as_bytes())
        .await?;
    ensure!(
        r.status == 400 && r.text().contains("<Code>IDPCommunicationError</Code>"),
        "{}",
        r.describe()
    );
    // the same token at the server whose provider is up
    let r = Client::new(s.addr(), None)
        .send("POST", "/", &ct, form.as_bytes())
        .await?;
    ensure!(
        r.status == 200 && r.text().contains("<AccessKeyId>ASIA"),
        "{}",
        r.describe()
    );
    // awscli, as the README shows it (a RoleArn naming no role here)
    require_tool("aws")?;
    let out = run_stdout(s.tool("aws").args([
        "sts",
        "assume-role-with-web-identity",
        "--endpoint-url",
        &s.endpoint(),
        "--output",
        "json",
        "--role-arn",
        "arn:aws:iam::000000000000:role/any",
        "--role-session-name",
        "app",
        "--web-identity-token",
        &token,
    ]))?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(
        v["Credentials"]["AccessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA"))
            && v["SubjectFromWebIdentityToken"] == "alice"
            && v["Credentials"]["Expiration"].is_string(),
        "{v}"
    );
    // a client id without a provider is a setup error
    let bad = Server::start(StartOpts {
        extra_args: vec!["--oidc-client-id".into(), "x".into()],
        ..StartOpts::drives(1)
    })
    .await;
    assert!(bad.is_err());
    Ok(())
}
