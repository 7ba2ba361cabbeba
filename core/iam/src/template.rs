//! Text with policy variables: `arn:aws:s3:::home/${aws:username}/*`.
//!
//! `${key}` is the request's value of condition key `key` (single-valued
//! keys only), `${key, 'default'}` falls back to `default`, and `${*}`,
//! `${?}`, `${$}` are a literal `*`, `?`, `$`. A variable's value is
//! always literal text, never a wildcard. Variables exist only in
//! `"Version": "2012-10-17"` documents; in older ones `${...}` is text.

use std::borrow::Cow;

use crate::context::Context;
use crate::glob::{Glob, GlobBuilder};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Policy text: wildcards in it are wildcards where the element
    /// allows them.
    Text(String),
    /// Text that is literal even where wildcards are allowed.
    Literal(String),
    Var {
        /// The condition key, lowercase.
        key: String,
        default: Option<String>,
    },
}

/// A policy string, with its variables found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
    /// The pattern, when there is no variable to resolve.
    fixed: Option<Glob>,
    /// The whole text, with `${*}`-style escapes resolved, when there is
    /// no variable.
    fixed_text: Option<String>,
}

impl Template {
    /// Parses `s`; with `vars` false, `${...}` is plain text.
    pub(crate) fn parse(s: &str, vars: bool) -> Template {
        let pieces = if vars {
            split(s)
        } else {
            vec![Piece::Text(s.to_owned())]
        };
        let has_var = pieces.iter().any(|p| matches!(p, Piece::Var { .. }));
        let mut t = Template {
            pieces,
            fixed: None,
            fixed_text: None,
        };
        if !has_var {
            let none = Context::new();
            t.fixed = t.build_glob(&none);
            t.fixed_text = t.build_text(&none);
        }
        t
    }

    /// The text with variables resolved; `None` if a variable has no
    /// value and no default (the entry then matches nothing).
    pub(crate) fn text<'a>(&'a self, ctx: &Context) -> Option<Cow<'a, str>> {
        match &self.fixed_text {
            Some(t) => Some(Cow::Borrowed(t)),
            None => self.build_text(ctx).map(Cow::Owned),
        }
    }

    /// The text as a wildcard pattern, variables resolved literally.
    pub(crate) fn glob<'a>(&'a self, ctx: &Context) -> Option<Cow<'a, Glob>> {
        match &self.fixed {
            Some(g) => Some(Cow::Borrowed(g)),
            None => self.build_glob(ctx).map(Cow::Owned),
        }
    }

    fn build_text(&self, ctx: &Context) -> Option<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) | Piece::Literal(t) => out.push_str(t),
                Piece::Var { key, default } => out.push_str(var_value(ctx, key, default)?),
            }
        }
        Some(out)
    }

    fn build_glob(&self, ctx: &Context) -> Option<Glob> {
        let mut b = GlobBuilder::default();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => {
                    for c in t.chars() {
                        match c {
                            '*' => b.star(),
                            '?' => b.one(),
                            c => b.lit_char(c),
                        }
                    }
                }
                Piece::Literal(t) => b.lit(t),
                Piece::Var { key, default } => b.lit(var_value(ctx, key, default)?),
            }
        }
        Some(b.finish())
    }
}

fn var_value<'a>(ctx: &'a Context, key: &str, default: &'a Option<String>) -> Option<&'a str> {
    match ctx.get_lower(key) {
        Some([one]) => Some(one.as_str()),
        _ => default.as_deref(),
    }
}

fn split(s: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let (before, after) = rest.split_at(start);
        text.push_str(before);
        let inner_and_more = after.get(2..).unwrap_or_default();
        let Some(end) = inner_and_more.find('}') else {
            // not a variable: keep it as text
            text.push_str(after);
            rest = "";
            break;
        };
        let (inner, more) = inner_and_more.split_at(end);
        rest = more.get(1..).unwrap_or_default();
        let piece = match inner.trim() {
            "*" => Piece::Literal("*".into()),
            "?" => Piece::Literal("?".into()),
            "$" => Piece::Literal("$".into()),
            v => match v.split_once(',') {
                Some((key, default)) => {
                    let d = default.trim();
                    let d = d
                        .strip_prefix('\'')
                        .and_then(|d| d.strip_suffix('\''))
                        .unwrap_or(d);
                    Piece::Var {
                        key: key.trim().to_ascii_lowercase(),
                        default: Some(d.to_owned()),
                    }
                }
                None => Piece::Var {
                    key: v.to_ascii_lowercase(),
                    default: None,
                },
            },
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(piece);
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_resolve_literally() {
        let mut ctx = Context::new();
        ctx.set("aws:username", "a*b");
        let t = Template::parse("arn:aws:s3:::home/${aws:username}/*", true);
        let g = t.glob(&ctx).unwrap();
        assert!(g.matches("arn:aws:s3:::home/a*b/x"));
        assert!(
            !g.matches("arn:aws:s3:::home/aXb/x"),
            "a value is never a wildcard"
        );
        assert_eq!(t.text(&ctx).unwrap(), "arn:aws:s3:::home/a*b/*");
        assert!(t.glob(&Context::new()).is_none(), "no value, no default");
    }

    #[test]
    fn defaults_escapes_and_old_versions() {
        let t = Template::parse("${aws:username, 'nobody'}-${*}${?}${$}", true);
        assert_eq!(t.text(&Context::new()).unwrap(), "nobody-*?$");
        assert!(t.glob(&Context::new()).unwrap().matches("nobody-*?$"));
        assert!(!t.glob(&Context::new()).unwrap().matches("nobody-xy$"));
        let old = Template::parse("${aws:username}", false);
        assert_eq!(old.text(&Context::new()).unwrap(), "${aws:username}");
        let open = Template::parse("a${b", true);
        assert_eq!(open.text(&Context::new()).unwrap(), "a${b");
    }

    #[test]
    fn multi_valued_keys_are_not_variables() {
        let mut ctx = Context::new();
        ctx.set_all("jwt:groups", vec!["a".into(), "b".into()]);
        assert!(Template::parse("${jwt:groups}", true).text(&ctx).is_none());
    }
}
