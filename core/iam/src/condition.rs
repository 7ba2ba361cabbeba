//! The `Condition` element: operators, their values, and how a request's
//! condition keys meet them (AWS semantics).
//!
//! - Everything in one `Condition` element must hold (operators AND, keys
//!   AND); the values listed for one key are alternatives (OR). A negated
//!   operator (`StringNotEquals`, `NotIpAddress`...) holds when the
//!   request's value matches none of them.
//! - A key the request does not have: the condition is false, except for
//!   negated operators (true), `...IfExists` (true), `ForAllValues:`
//!   (true) and `Null`, which tests exactly that.
//! - `ForAnyValue:`/`ForAllValues:` compare a multi-valued key value by
//!   value; without a qualifier any of its values may match.

use std::borrow::Cow;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use serde_json::Value;
use time::OffsetDateTime;

use crate::PolicyError;
use crate::context::Context;
use crate::template::Template;

/// How two ordered values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, request: &T, policy: &T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

/// The operator family, with its values parsed.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    Str {
        ignore_case: bool,
        like: bool,
        values: Vec<Template>,
    },
    Arn(Vec<Template>),
    Num(Cmp, Vec<f64>),
    Date(Cmp, Vec<OffsetDateTime>),
    Bool(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<IpNet>),
    /// `Null`: true means "the key is absent".
    Null(Vec<bool>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// One operator applied to one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    qualifier: Qualifier,
    if_exists: bool,
    negated: bool,
    /// The condition key, lowercase.
    key: String,
    test: Test,
}

/// Prefixes of the condition keys Cairn knows.
const KEY_PREFIXES: &[&str] = &["aws", "s3", "jwt", "sts", "iam", "cairn"];

/// Parses a `Condition` element.
pub(crate) fn parse_block(v: &Value, vars: bool) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else {
        return Err(PolicyError::Condition(
            "Condition must be an object of operators".into(),
        ));
    };
    let mut out = Vec::new();
    for (op, keys) in ops {
        let Value::Object(keys) = keys else {
            return Err(PolicyError::Condition(format!(
                "operator {op} must map condition keys to values"
            )));
        };
        for (key, values) in keys {
            out.push(Condition::parse(op, key, values, vars)?);
        }
    }
    Ok(out)
}

/// The values of one key: one scalar or an array of scalars, as text.
fn scalars(op: &str, key: &str, v: &Value) -> Result<Vec<String>, PolicyError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(PolicyError::Condition(format!(
            "{op} {key}: values must be strings, numbers or booleans"
        ))),
    };
    match v {
        Value::Array(items) if items.is_empty() => {
            Err(PolicyError::Condition(format!("{op} {key}: no values")))
        }
        Value::Array(items) => items.iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

fn bad_value(op: &str, key: &str, value: &str, what: &str) -> PolicyError {
    PolicyError::Condition(format!("{op} {key}: {value:?} is not {what}"))
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// An ISO 8601 date-time (`2026-01-02T03:04:05Z`), a date (`2026-01-02`,
/// midnight UTC) or epoch seconds.
pub(crate) fn parse_date(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

fn parse_ip(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn parse_binary(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn typed<T>(
    op: &str,
    key: &str,
    values: &[String],
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, PolicyError> {
    values
        .iter()
        .map(|v| parse(v).ok_or_else(|| bad_value(op, key, v, what)))
        .collect()
}

impl Condition {
    fn parse(op: &str, key: &str, values: &Value, vars: bool) -> Result<Self, PolicyError> {
        let unknown = || PolicyError::UnknownOperator(op.to_owned());
        let (qualifier, base) = if let Some(b) = op.strip_prefix("ForAnyValue:") {
            (Qualifier::ForAnyValue, b)
        } else if let Some(b) = op.strip_prefix("ForAllValues:") {
            (Qualifier::ForAllValues, b)
        } else {
            (Qualifier::None, op)
        };
        let (base, if_exists) = match base.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (base, false),
        };
        let prefix_ok = key.split_once(':').is_some_and(|(p, name)| {
            !name.is_empty() && KEY_PREFIXES.contains(&p.to_ascii_lowercase().as_str())
        });
        if !prefix_ok {
            return Err(PolicyError::Condition(format!(
                "unknown condition key {key:?}"
            )));
        }
        let vals = scalars(op, key, values)?;
        let templates = || vals.iter().map(|v| Template::parse(v, vars)).collect();
        let str_test = |ignore_case, like| Test::Str {
            ignore_case,
            like,
            values: templates(),
        };
        let num = |cmp| typed(op, key, &vals, "a number", parse_num).map(|v| Test::Num(cmp, v));
        let date = |cmp| typed(op, key, &vals, "a date", parse_date).map(|v| Test::Date(cmp, v));
        let (test, negated) = match base {
            "StringEquals" => (str_test(false, false), false),
            "StringNotEquals" => (str_test(false, false), true),
            "StringEqualsIgnoreCase" => (str_test(true, false), false),
            "StringNotEqualsIgnoreCase" => (str_test(true, false), true),
            "StringLike" => (str_test(false, true), false),
            "StringNotLike" => (str_test(false, true), true),
            "ArnEquals" | "ArnLike" => (Test::Arn(templates()), false),
            "ArnNotEquals" | "ArnNotLike" => (Test::Arn(templates()), true),
            "NumericEquals" => (num(Cmp::Eq)?, false),
            "NumericNotEquals" => (num(Cmp::Eq)?, true),
            "NumericLessThan" => (num(Cmp::Lt)?, false),
            "NumericLessThanEquals" => (num(Cmp::Le)?, false),
            "NumericGreaterThan" => (num(Cmp::Gt)?, false),
            "NumericGreaterThanEquals" => (num(Cmp::Ge)?, false),
            "DateEquals" => (date(Cmp::Eq)?, false),
            "DateNotEquals" => (date(Cmp::Eq)?, true),
            "DateLessThan" => (date(Cmp::Lt)?, false),
            "DateLessThanEquals" => (date(Cmp::Le)?, false),
            "DateGreaterThan" => (date(Cmp::Gt)?, false),
            "DateGreaterThanEquals" => (date(Cmp::Ge)?, false),
            "Bool" => (
                Test::Bool(typed(op, key, &vals, "true or false", parse_bool)?),
                false,
            ),
            "BinaryEquals" => (
                Test::Binary(typed(op, key, &vals, "base64", parse_binary)?),
                false,
            ),
            "IpAddress" => (
                Test::Ip(typed(
                    op,
                    key,
                    &vals,
                    "an IP address or CIDR block",
                    parse_ip,
                )?),
                false,
            ),
            "NotIpAddress" => (
                Test::Ip(typed(
                    op,
                    key,
                    &vals,
                    "an IP address or CIDR block",
                    parse_ip,
                )?),
                true,
            ),
            "Null" if !if_exists && qualifier == Qualifier::None => (
                Test::Null(typed(op, key, &vals, "true or false", parse_bool)?),
                false,
            ),
            _ => return Err(unknown()),
        };
        Ok(Condition {
            qualifier,
            if_exists,
            negated,
            key: key.to_ascii_lowercase(),
            test,
        })
    }

    /// Whether the condition holds for `ctx`.
    /// The condition key, lowercase.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn holds(&self, ctx: &Context) -> bool {
        let present = ctx.get_lower(&self.key).filter(|v| !v.is_empty());
        if let Test::Null(wants_absent) = &self.test {
            return wants_absent
                .iter()
                .any(|&absent| absent == present.is_none());
        }
        let Some(values) = present else {
            return self.if_exists || self.negated || self.qualifier == Qualifier::ForAllValues;
        };
        let one = |v: &String| self.matches_any(v, ctx) != self.negated;
        match self.qualifier {
            Qualifier::ForAllValues => values.iter().all(one),
            Qualifier::ForAnyValue => values.iter().any(one),
            // a multi-valued key without a qualifier: any value may match
            Qualifier::None => values.iter().any(|v| self.matches_any(v, ctx)) != self.negated,
        }
    }

    /// Whether request value `v` matches one of the policy's values (the
    /// positive form of the operator).
    fn matches_any(&self, v: &str, ctx: &Context) -> bool {
        match &self.test {
            Test::Str {
                ignore_case,
                like,
                values,
            } => values.iter().any(|t| {
                if *like {
                    t.glob(ctx).is_some_and(|g| g.matches(v))
                } else {
                    t.text(ctx).is_some_and(|t: Cow<'_, str>| {
                        if *ignore_case {
                            t.to_lowercase() == v.to_lowercase()
                        } else {
                            t == v
                        }
                    })
                }
            }),
            Test::Arn(values) => values
                .iter()
                .any(|t| t.glob(ctx).is_some_and(|g| g.matches(v))),
            Test::Num(cmp, values) => {
                parse_num(v).is_some_and(|n| values.iter().any(|p| cmp.holds(&n, p)))
            }
            Test::Date(cmp, values) => {
                parse_date(v).is_some_and(|d| values.iter().any(|p| cmp.holds(&d, p)))
            }
            Test::Bool(values) => parse_bool(v).is_some_and(|b| values.contains(&b)),
            Test::Binary(values) => parse_binary(v).is_some_and(|b| values.contains(&b)),
            Test::Ip(nets) => v
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            Test::Null(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> Vec<Condition> {
        parse_block(&v, true).unwrap()
    }

    fn holds(v: Value, ctx: &Context) -> bool {
        cond(v).iter().all(|c| c.holds(ctx))
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        c
    }

    #[test]
    fn strings() {
        let c = ctx(&[("s3:prefix", "home/alice/"), ("aws:username", "alice")]);
        assert!(holds(
            json!({"StringEquals": {"s3:prefix": ["x", "home/alice/"]}}),
            &c
        ));
        assert!(!holds(
            json!({"StringEquals": {"s3:prefix": "HOME/alice/"}}),
            &c
        ));
        assert!(holds(
            json!({"StringEqualsIgnoreCase": {"s3:prefix": "HOME/alice/"}}),
            &c
        ));
        assert!(holds(
            json!({"StringNotEquals": {"s3:prefix": ["a", "b"]}}),
            &c
        ));
        assert!(!holds(
            json!({"StringNotEquals": {"s3:prefix": ["home/alice/"]}}),
            &c
        ));
        assert!(holds(json!({"StringLike": {"s3:prefix": "home/*"}}), &c));
        assert!(!holds(json!({"StringEquals": {"s3:prefix": "home/*"}}), &c));
        assert!(holds(json!({"StringNotLike": {"s3:prefix": "tmp/*"}}), &c));
        assert!(holds(
            json!({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}),
            &c
        ));
        assert!(!holds(
            json!({"StringLike": {"s3:prefix": "home/${aws:userid}/*"}}),
            &c
        ));
        // keys are case-insensitive
        assert!(holds(
            json!({"StringEquals": {"S3:Prefix": "home/alice/"}}),
            &c
        ));
    }

    #[test]
    fn absent_keys() {
        let c = Context::new();
        assert!(!holds(json!({"StringEquals": {"s3:prefix": "a"}}), &c));
        assert!(holds(json!({"StringNotEquals": {"s3:prefix": "a"}}), &c));
        assert!(holds(
            json!({"StringEqualsIfExists": {"s3:prefix": "a"}}),
            &c
        ));
        assert!(holds(json!({"Null": {"s3:prefix": "true"}}), &c));
        assert!(!holds(json!({"Null": {"s3:prefix": "false"}}), &c));
        let p = ctx(&[("s3:prefix", "b")]);
        assert!(!holds(
            json!({"StringEqualsIfExists": {"s3:prefix": "a"}}),
            &p
        ));
        assert!(holds(json!({"Null": {"s3:prefix": false}}), &p));
        assert!(holds(
            json!({"ForAllValues:StringEquals": {"jwt:groups": "a"}}),
            &c
        ));
        assert!(!holds(
            json!({"ForAnyValue:StringEquals": {"jwt:groups": "a"}}),
            &c
        ));
    }

    #[test]
    fn set_qualifiers() {
        let mut c = Context::new();
        c.set_all("jwt:groups", vec!["eng".into(), "ops".into()]);
        assert!(holds(
            json!({"ForAnyValue:StringEquals": {"jwt:groups": ["ops"]}}),
            &c
        ));
        assert!(!holds(
            json!({"ForAllValues:StringEquals": {"jwt:groups": ["ops"]}}),
            &c
        ));
        assert!(holds(
            json!({"ForAllValues:StringEquals": {"jwt:groups": ["ops", "eng", "x"]}}),
            &c
        ));
        assert!(holds(json!({"StringEquals": {"jwt:groups": "eng"}}), &c));
    }

    #[test]
    fn numbers_dates_bools_ips_binary() {
        let c = ctx(&[
            ("s3:max-keys", "100"),
            ("aws:CurrentTime", "2026-12-06T12:00:00Z"),
            ("aws:SecureTransport", "false"),
            ("aws:SourceIp", "10.1.2.3"),
            ("cairn:blob", "AAEC"),
        ]);
        assert!(holds(
            json!({"NumericLessThanEquals": {"s3:max-keys": 100}}),
            &c
        ));
        assert!(!holds(
            json!({"NumericLessThan": {"s3:max-keys": "100"}}),
            &c
        ));
        assert!(holds(
            json!({"NumericGreaterThan": {"s3:max-keys": "99.5"}}),
            &c
        ));
        assert!(holds(
            json!({"NumericNotEquals": {"s3:max-keys": [1, 2]}}),
            &c
        ));
        assert!(holds(json!({"NumericEquals": {"s3:max-keys": 100}}), &c));
        assert!(holds(
            json!({"NumericGreaterThanEquals": {"s3:max-keys": 100}}),
            &c
        ));
        assert!(holds(
            json!({"DateLessThan": {"aws:CurrentTime": "2027-01-01"}}),
            &c
        ));
        assert!(holds(
            json!({"DateGreaterThan": {"aws:CurrentTime": "2026-12-06T11:59:59Z"}}),
            &c
        ));
        assert!(holds(
            json!({"DateEquals": {"aws:CurrentTime": "1796558400"}}),
            &c
        ));
        assert!(holds(
            json!({"DateNotEquals": {"aws:CurrentTime": "2026-12-06"}}),
            &c
        ));
        assert!(holds(
            json!({"DateLessThanEquals": {"aws:CurrentTime": "2026-12-06T12:00:00Z"}}),
            &c
        ));
        assert!(holds(
            json!({"DateGreaterThanEquals": {"aws:CurrentTime": "2026-12-06T12:00:00Z"}}),
            &c
        ));
        assert!(holds(json!({"Bool": {"aws:SecureTransport": false}}), &c));
        assert!(!holds(json!({"Bool": {"aws:SecureTransport": "true"}}), &c));
        assert!(holds(
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            &c
        ));
        assert!(holds(
            json!({"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.1.2.3"]}}),
            &c
        ));
        assert!(holds(
            json!({"NotIpAddress": {"aws:SourceIp": "192.168.0.0/16"}}),
            &c
        ));
        assert!(!holds(
            json!({"NotIpAddress": {"aws:SourceIp": "10.1.0.0/16"}}),
            &c
        ));
        assert!(holds(json!({"BinaryEquals": {"cairn:blob": "AAEC"}}), &c));
        let v6 = ctx(&[("aws:SourceIp", "2001:db8::1")]);
        assert!(holds(
            json!({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}),
            &v6
        ));
        assert!(!holds(
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            &v6
        ));
    }

    #[test]
    fn arns() {
        let c = ctx(&[("aws:SourceArn", "arn:aws:iam::1:user/alice")]);
        assert!(holds(
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:iam::*:user/*"}}),
            &c
        ));
        assert!(holds(
            json!({"ArnEquals": {"aws:SourceArn": "arn:aws:iam::1:user/alice"}}),
            &c
        ));
        assert!(holds(
            json!({"ArnNotLike": {"aws:SourceArn": "arn:aws:iam::*:role/*"}}),
            &c
        ));
        assert!(!holds(
            json!({"ArnNotEquals": {"aws:SourceArn": "arn:aws:iam::1:user/alice"}}),
            &c
        ));
    }

    #[test]
    fn bad_conditions_are_refused() {
        for (v, want) in [
            (json!({"StringEqualz": {"s3:prefix": "a"}}), "operator"),
            (json!({"NullIfExists": {"s3:prefix": "true"}}), "operator"),
            (
                json!({"ForSomeValues:StringEquals": {"s3:prefix": "a"}}),
                "operator",
            ),
            (
                json!({"NumericEquals": {"s3:max-keys": "ten"}}),
                "not a number",
            ),
            (
                json!({"DateEquals": {"aws:CurrentTime": "yesterday"}}),
                "not a date",
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
                "not an IP",
            ),
            (
                json!({"Bool": {"aws:SecureTransport": "yes"}}),
                "true or false",
            ),
            (json!({"StringEquals": {"prefix": "a"}}), "condition key"),
            (json!({"StringEquals": {"ec2:thing": "a"}}), "condition key"),
            (json!({"StringEquals": {"s3:prefix": []}}), "no values"),
            (
                json!({"StringEquals": {"s3:prefix": {"a": 1}}}),
                "values must be",
            ),
            (json!({"StringEquals": "s3:prefix"}), "must map"),
            (json!(["StringEquals"]), "object of operators"),
        ] {
            let err = parse_block(&v, true).unwrap_err().to_string();
            assert!(err.contains(want), "{v}: {err}");
        }
    }
}
