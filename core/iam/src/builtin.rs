//! The policies every deployment has, named as MinIO names them.

use std::sync::{Arc, LazyLock};

use crate::policy::{Policy, PolicyKind};

const DOCS: &[(&str, &str)] = &[
    (
        "readonly",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["s3:GetBucketLocation","s3:GetObject"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "readwrite",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "writeonly",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["s3:PutObject"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "diagnostics",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["admin:ServerInfo","admin:Profiling","admin:ServerTrace","admin:ConsoleLog",
        "admin:OBDInfo","admin:TopLocksInfo","admin:BandwidthMonitor","admin:Prometheus"],
        "Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "consoleAdmin",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["admin:*","kms:*","iam:*","sts:*","s3:*"],"Resource":["arn:aws:s3:::*","*"]}]}"#,
    ),
];

static BUILTIN: LazyLock<Vec<(&'static str, Arc<Policy>)>> = LazyLock::new(|| {
    DOCS.iter()
        .filter_map(|(name, doc)| {
            Policy::parse(doc, PolicyKind::Identity)
                .ok()
                .map(|p| (*name, Arc::new(p)))
        })
        .collect()
});

/// The built-in policy `name`, if there is one.
pub fn builtin(name: &str) -> Option<&'static Policy> {
    builtin_arc(name).map(|p| &**p)
}

/// [`builtin`], shared (no copy per request).
pub(crate) fn builtin_arc(name: &str) -> Option<&'static Arc<Policy>> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, p)| p)
}

/// The names of the built-in policies.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    DOCS.iter().map(|(n, _)| *n)
}

/// The text of built-in policy `name`, as GetPolicy shows it.
pub fn builtin_document(name: &str) -> Option<&'static str> {
    DOCS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}
