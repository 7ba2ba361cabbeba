//! The parameters of a query-protocol request: `Name=value` pairs from
//! the URI's query and the form-encoded body (both count, as in AWS),
//! with the list (`Tags.member.1.Key`) and scalar readers the actions
//! use.

use super::error::QueryError;

/// A request's parameters, in the order given.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The pairs of the URI's query string and, when given, of the body.
    pub(crate) fn parse(query: Option<&str>, body: Option<&[u8]>) -> Self {
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        if let Some(b) = body {
            pairs.extend(form_urlencoded::parse(b).into_owned());
        }
        Params(pairs)
    }

    /// The value of `name` (the last one given), if present.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, present and not empty.
    pub(crate) fn opt(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value of required parameter `name`.
    pub(crate) fn req(&self, name: &str) -> Result<&str, QueryError> {
        self.opt(name).ok_or_else(|| QueryError::missing(name))
    }

    /// An integer parameter, if given.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, QueryError> {
        self.opt(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    QueryError::validation(format!(
                        "Value '{v}' at '{name}' failed to satisfy constraint: Member must be an integer"
                    ))
                })
            })
            .transpose()
    }

    /// A boolean parameter (`true`/`false`), if given.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, QueryError> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(QueryError::validation(format!(
                "Value '{v}' at '{name}' failed to satisfy constraint: Member must be true or false"
            ))),
        }
    }

    /// The page a list call asks for: `Marker` (the last name of the
    /// previous page) and `MaxItems` (1 to 1000, default 100).
    pub(crate) fn page(&self) -> Result<Page, QueryError> {
        let max = self.int("MaxItems")?.unwrap_or(100);
        if !(1..=1000).contains(&max) {
            return Err(QueryError::validation(format!(
                "Value '{max}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
            )));
        }
        Ok(Page {
            marker: self.opt("Marker").map(str::to_owned),
            max: usize::try_from(max).unwrap_or(100),
        })
    }
}

/// One page of a list call.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    marker: Option<String>,
    max: usize,
}

impl Page {
    /// The items after the marker (items sorted by `key`), at most `max`,
    /// and the marker of the next page when more follow.
    pub(crate) fn take<T>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> &str,
    ) -> (Vec<T>, Option<String>) {
        let mut rest: Vec<T> = items
            .into_iter()
            .filter(|t| self.marker.as_deref().is_none_or(|m| key(t) > m))
            .collect();
        if rest.len() <= self.max {
            return (rest, None);
        }
        rest.truncate(self.max);
        let next = rest.last().map(|t| key(t).to_owned());
        (rest, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_body_both_count() {
        let p = Params::parse(
            Some("Action=ListUsers&Version=2010-05-08"),
            Some(b"UserName=al%20ice&MaxItems=2&Flag=TRUE"),
        );
        assert_eq!(p.get("Action"), Some("ListUsers"));
        assert_eq!(p.req("UserName").unwrap(), "al ice");
        assert_eq!(p.int("MaxItems").unwrap(), Some(2));
        assert_eq!(p.bool("Flag").unwrap(), Some(true));
        assert_eq!(p.req("Nope").unwrap_err().code, "MissingParameter");
        assert_eq!(p.int("UserName").unwrap_err().code, "ValidationError");
    }

    #[test]
    fn pages() {
        let p = Params::parse(Some("MaxItems=2"), None).page().unwrap();
        let (items, next) = p.take(vec!["a", "b", "c"], |s| s);
        assert_eq!((items, next.as_deref()), (vec!["a", "b"], Some("b")));
        let p = Params::parse(Some("MaxItems=2&Marker=b"), None)
            .page()
            .unwrap();
        assert_eq!(p.take(vec!["a", "b", "c"], |s| s), (vec!["c"], None));
        assert!(Params::parse(Some("MaxItems=0"), None).page().is_err());
        assert!(Params::parse(Some("MaxItems=x"), None).page().is_err());
    }
}
