//! Policy documents: parsing with every element checked, and evaluation
//! as AWS does it (an explicit Deny wins, then an Allow, else no).

use serde_json::{Map, Value};

use crate::PolicyError;
use crate::action::ActionPattern;
use crate::condition::{self, Condition};
use crate::context::{Principal, Request};
use crate::template::Template;

/// Where a document is used, which decides the elements it must and may
/// have, and its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a user, group, role or session: no `Principal`.
    Identity,
    /// A bucket policy: `Principal` or `NotPrincipal` in every statement.
    Bucket,
    /// A role's trust policy: `Principal`, no `Resource`.
    Trust,
}

impl PolicyKind {
    /// The largest document accepted, in characters that are not
    /// whitespace (AWS: 6,144 for managed policies, 20 KB for bucket
    /// policies, 2,048 for trust policies).
    pub fn max_chars(self) -> usize {
        match self {
            PolicyKind::Identity => 6144,
            PolicyKind::Bucket => 20 * 1024,
            PolicyKind::Trust => 2048,
        }
    }
}

/// `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// The outcome of evaluating policies for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allow,
    /// A statement denies it: nothing else can allow it.
    Deny,
    /// No statement applies (an implicit deny).
    NotApplicable,
}

impl Decision {
    /// Combines the decisions of several policies: Deny wins, then Allow.
    pub fn and(self, other: Decision) -> Decision {
        match (self, other) {
            (Decision::Deny, _) | (_, Decision::Deny) => Decision::Deny,
            (Decision::Allow, _) | (_, Decision::Allow) => Decision::Allow,
            _ => Decision::NotApplicable,
        }
    }
}

/// An element that lists what it covers, or what it does not.
#[derive(Debug, Clone, PartialEq)]
enum Match<T> {
    /// `Action`, `Resource`, `Principal`: any entry.
    Only(Vec<T>),
    /// `NotAction`, `NotResource`, `NotPrincipal`: no entry.
    Except(Vec<T>),
}

impl<T> Match<T> {
    fn covers(&self, hit: impl Fn(&T) -> bool) -> bool {
        match self {
            Match::Only(list) => list.iter().any(hit),
            Match::Except(list) => !list.iter().any(hit),
        }
    }
}

/// The callers a `Principal` element names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Principals {
    aws: Vec<String>,
    canonical: Vec<String>,
    federated: Vec<String>,
    service: Vec<String>,
}

impl Principals {
    fn names(&self, p: &Principal) -> bool {
        self.aws.iter().any(|e| p.is_aws(e))
            || p.canonical_id
                .as_ref()
                .is_some_and(|id| self.canonical.iter().any(|e| e == id))
            || p.federated
                .as_ref()
                .is_some_and(|f| self.federated.iter().any(|e| e == f))
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    sid: Option<String>,
    effect: Effect,
    principal: Option<Match<Principals>>,
    action: Match<ActionPattern>,
    resource: Option<Match<Template>>,
    conditions: Vec<Condition>,
}

impl Statement {
    fn applies(&self, req: &Request<'_>) -> bool {
        if let Some(p) = &self.principal
            && !p.covers(|names| names.names(req.principal))
        {
            return false;
        }
        if !self.action.covers(|a| a.matches(req.action)) {
            return false;
        }
        if let Some(r) = &self.resource {
            let hit = |t: &Template| t.glob(req.context).is_some_and(|g| g.matches(req.resource));
            if !r.covers(hit) {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.holds(req.context))
    }
}

/// A parsed, checked policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    id: Option<String>,
    statements: Vec<Statement>,
}

const VERSION_CURRENT: &str = "2012-10-17";
const VERSION_OLD: &str = "2008-10-17";

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, PolicyError> {
    v.as_object()
        .ok_or_else(|| PolicyError::Syntax(format!("{what} must be a JSON object")))
}

/// A string or a non-empty array of strings.
fn strings(v: &Value, element: &str) -> Result<Vec<String>, PolicyError> {
    let bad = || PolicyError::Syntax(format!("{element} must be a string or an array of strings"));
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        Value::Array(_) => Err(PolicyError::Syntax(format!("{element} is empty"))),
        _ => Err(bad()),
    }
}

/// Reads the pair `Name`/`NotName` of a statement: exactly one of them
/// when `required`, at most one otherwise.
fn pair<T>(
    st: &Map<String, Value>,
    name: &str,
    required: bool,
    parse: impl Fn(&Value, &str) -> Result<Vec<T>, PolicyError>,
) -> Result<Option<Match<T>>, PolicyError> {
    let not = format!("Not{name}");
    match (st.get(name), st.get(&not)) {
        (Some(_), Some(_)) => Err(PolicyError::Syntax(format!(
            "a statement cannot have both {name} and {not}"
        ))),
        (Some(v), None) => Ok(Some(Match::Only(parse(v, name)?))),
        (None, Some(v)) => Ok(Some(Match::Except(parse(v, &not)?))),
        (None, None) if required => Err(PolicyError::Syntax(format!(
            "a statement needs {name} or {not}"
        ))),
        (None, None) => Ok(None),
    }
}

fn principals(v: &Value, element: &str) -> Result<Vec<Principals>, PolicyError> {
    if v.as_str() == Some("*") {
        return Ok(vec![Principals {
            aws: vec!["*".into()],
            ..Principals::default()
        }]);
    }
    let map = object(v, element)?;
    let mut p = Principals::default();
    for (kind, names) in map {
        let names = strings(names, element)?;
        let list = match kind.as_str() {
            "AWS" => &mut p.aws,
            "CanonicalUser" => &mut p.canonical,
            "Federated" => &mut p.federated,
            "Service" => &mut p.service,
            other => {
                return Err(PolicyError::Syntax(format!(
                    "{element}: unknown principal type {other:?}"
                )));
            }
        };
        list.extend(names);
    }
    Ok(vec![p])
}

fn resources(v: &Value, element: &str, vars: bool) -> Result<Vec<Template>, PolicyError> {
    strings(v, element)?
        .into_iter()
        .map(|r| {
            if r == "*" || r.starts_with("arn:") {
                Ok(Template::parse(&r, vars))
            } else {
                Err(PolicyError::Resource(r))
            }
        })
        .collect()
}

fn statement(v: &Value, kind: PolicyKind, vars: bool) -> Result<Statement, PolicyError> {
    let st = object(v, "a statement")?;
    const FIELDS: &[&str] = &[
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    ];
    if let Some(unknown) = st.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(PolicyError::Syntax(format!(
            "unknown statement element {unknown:?}"
        )));
    }
    let sid = match st.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(PolicyError::Syntax("Sid must be a string".into())),
    };
    let effect = match st.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => {
            return Err(PolicyError::Syntax(format!(
                "Effect {other:?} is not Allow or Deny"
            )));
        }
        None => return Err(PolicyError::Syntax("a statement needs an Effect".into())),
    };
    let principal = match kind {
        PolicyKind::Identity => {
            if st.contains_key("Principal") || st.contains_key("NotPrincipal") {
                return Err(PolicyError::Syntax(
                    "an identity policy cannot name a Principal".into(),
                ));
            }
            None
        }
        PolicyKind::Bucket | PolicyKind::Trust => pair(st, "Principal", true, principals)?,
    };
    let action = pair(st, "Action", true, |v, e| {
        strings(v, e)?
            .iter()
            .map(|a| ActionPattern::parse(a))
            .collect()
    })?
    .ok_or_else(|| PolicyError::Syntax("a statement needs Action or NotAction".into()))?;
    let resource = match kind {
        PolicyKind::Trust => {
            if st.contains_key("Resource") || st.contains_key("NotResource") {
                return Err(PolicyError::Syntax(
                    "a trust policy cannot name a Resource".into(),
                ));
            }
            None
        }
        PolicyKind::Identity | PolicyKind::Bucket => {
            pair(st, "Resource", true, |v, e| resources(v, e, vars))?
        }
    };
    let conditions = match st.get("Condition") {
        Some(c) => condition::parse_block(c, vars)?,
        None => Vec::new(),
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

impl Policy {
    /// Parses and checks `json` as a policy of `kind`. Any problem (bad
    /// JSON, an unknown element, action or condition operator, a value of
    /// the wrong type, a document over the size limit) is an error naming
    /// it, and nothing is returned.
    pub fn parse(json: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let chars = json.chars().filter(|c| !c.is_whitespace()).count();
        if chars > kind.max_chars() {
            return Err(PolicyError::TooLarge {
                size: chars,
                max: kind.max_chars(),
            });
        }
        let doc: Value =
            serde_json::from_str(json).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        let top = object(&doc, "a policy")?;
        if let Some(unknown) = top
            .keys()
            .find(|k| !["Version", "Id", "Statement"].contains(&k.as_str()))
        {
            return Err(PolicyError::Syntax(format!(
                "unknown policy element {unknown:?}"
            )));
        }
        let vars = match top.get("Version") {
            Some(Value::String(v)) if v == VERSION_CURRENT => true,
            Some(Value::String(v)) if v == VERSION_OLD => false,
            None => false,
            Some(v) => return Err(PolicyError::Version(v.to_string())),
        };
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PolicyError::Syntax("Id must be a string".into())),
        };
        let statements = match top.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|s| statement(s, kind, vars))
                .collect::<Result<Vec<_>, _>>()?,
            Some(s @ Value::Object(_)) => vec![statement(s, kind, vars)?],
            Some(_) => return Err(PolicyError::Syntax("Statement is empty".into())),
            None => return Err(PolicyError::Syntax("a policy needs a Statement".into())),
        };
        Ok(Policy { id, statements })
    }

    /// A policy that allows nothing (as a boundary, it refuses all).
    pub fn deny_all() -> Policy {
        Policy {
            id: None,
            statements: Vec::new(),
        }
    }

    /// Whether a condition of this policy names a key starting with
    /// `prefix` (lowercase), e.g. `s3:existingobjecttag/`: a front reads
    /// what such a key needs only when a policy asks for it.
    pub fn mentions_key(&self, prefix: &str) -> bool {
        self.statements
            .iter()
            .any(|s| s.conditions.iter().any(|c| c.key().starts_with(prefix)))
    }

    /// The document's `Id`, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `Sid`s of the statements, in order (statements without one
    /// are left out).
    pub fn sids(&self) -> impl Iterator<Item = &str> {
        self.statements.iter().filter_map(|s| s.sid.as_deref())
    }

    /// What this document says about `req`.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let mut decision = Decision::NotApplicable;
        for st in &self.statements {
            if st.applies(req) {
                match st.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => decision = Decision::Allow,
                }
            }
        }
        decision
    }

    /// Whether any statement allows anonymous callers or everyone
    /// (`Principal: "*"`) without a condition: the bucket is public, as
    /// GetBucketPolicyStatus reports it.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|st| {
            st.effect == Effect::Allow
                && st.conditions.is_empty()
                && match &st.principal {
                    Some(Match::Only(list)) => list.iter().any(|p| p.aws.iter().any(|a| a == "*")),
                    Some(Match::Except(_)) => true,
                    None => false,
                }
        })
    }
}

/// What several documents say together: a Deny in any wins, then an
/// Allow in any.
pub fn evaluate_all<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    req: &Request<'_>,
) -> Decision {
    let mut decision = Decision::NotApplicable;
    for p in policies {
        decision = decision.and(p.evaluate(req));
        if decision == Decision::Deny {
            break;
        }
    }
    decision
}
