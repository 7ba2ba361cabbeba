//! boto3 scripts against a test server: [`boto3`] runs a Python snippet
//! with `c` bound to a boto3 S3 client for the server (path style,
//! us-east-1, the root credentials, no retries) and `args` as
//! `sys.argv[1:]`, and returns what it printed.

use std::process::Command;

use anyhow::Result;

use crate::Server;
use crate::cmd::{require_tool, run_stdout};

/// The lines every script starts with: the client `c`, `ClientError`,
/// and `err(e)`, "STATUS CODE" of a refused call.
const PRELUDE: &str = r#"
import sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
c = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                 aws_secret_access_key=sys.argv[3], region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"},
                               retries={"max_attempts": 1, "mode": "standard"}))
sys.argv = sys.argv[3:]
def err(e):
    return "%s %s" % (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
"#;

/// Runs `script` with python3 and boto3 against `s` (see the module doc);
/// fails unless it exits 0.
pub fn boto3(s: &Server, script: &str, args: &[&str]) -> Result<String> {
    require_tool("python3")?;
    run_stdout(
        Command::new("python3")
            .arg("-c")
            .arg(format!("{PRELUDE}\n{script}"))
            .arg(s.endpoint())
            .arg(s.access_key())
            .arg(s.secret_key())
            .args(args),
    )
}
