//! Wildcard patterns as IAM uses them: `*` is any run of characters
//! (including none and including `/`), `?` is exactly one character.
//!
//! A pattern is parsed once into tokens; matching runs in O(len(text) x
//! number of stars) at worst, without recursion, so a hostile pattern
//! such as `*a*a*a*a*b` cannot make evaluation explode.

/// One piece of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Characters that must appear as they are.
    Lit(Box<str>),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A parsed wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    /// Parses `pattern`, where `*` and `?` are wildcards.
    pub(crate) fn new(pattern: &str) -> Self {
        let mut b = GlobBuilder::default();
        for c in pattern.chars() {
            match c {
                '*' => b.star(),
                '?' => b.one(),
                c => b.lit_char(c),
            }
        }
        b.finish()
    }

    /// Whether the pattern has no wildcard (an exact comparison).
    pub(crate) fn literal(&self) -> Option<&str> {
        match self.toks.as_slice() {
            [] => Some(""),
            [Tok::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Whether `text` matches the whole pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        if let Some(lit) = self.literal() {
            return lit == text;
        }
        let toks = self.toks.as_slice();
        let (mut pi, mut ti) = (0usize, 0usize);
        // (token after the last star, text position that star now covers up to)
        let mut back: Option<(usize, usize)> = None;
        loop {
            let rest = text.get(ti..).unwrap_or_default();
            let step = match toks.get(pi) {
                Some(Tok::Star) => {
                    back = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                Some(Tok::One) => rest.chars().next().map(char::len_utf8),
                Some(Tok::Lit(s)) => rest.starts_with(&**s).then_some(s.len()),
                None if rest.is_empty() => return true,
                None => None,
            };
            if let Some(n) = step {
                ti += n;
                pi += 1;
                continue;
            }
            // Mismatch: let the last star swallow one more character.
            match back {
                Some((after, covered)) => {
                    let Some(c) = text.get(covered..).and_then(|r| r.chars().next()) else {
                        return false;
                    };
                    let next = covered + c.len_utf8();
                    back = Some((after, next));
                    pi = after;
                    ti = next;
                }
                None => return false,
            }
        }
    }
}

/// Builds a [`Glob`] piece by piece (policy variables resolve into
/// literal text that must not be read as wildcards).
#[derive(Default)]
pub(crate) struct GlobBuilder {
    toks: Vec<Tok>,
    lit: String,
}

impl GlobBuilder {
    fn flush(&mut self) {
        if !self.lit.is_empty() {
            let s = std::mem::take(&mut self.lit);
            self.toks.push(Tok::Lit(s.into_boxed_str()));
        }
    }

    pub(crate) fn star(&mut self) {
        self.flush();
        // `**` is the same as `*`
        if self.toks.last() != Some(&Tok::Star) {
            self.toks.push(Tok::Star);
        }
    }

    pub(crate) fn one(&mut self) {
        self.flush();
        self.toks.push(Tok::One);
    }

    pub(crate) fn lit_char(&mut self, c: char) {
        self.lit.push(c);
    }

    pub(crate) fn lit(&mut self, s: &str) {
        self.lit.push_str(s);
    }

    pub(crate) fn finish(mut self) -> Glob {
        self.flush();
        Glob { toks: self.toks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).matches(t)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at/all"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a?c", "aéc"), "? is one character, not one byte");
        assert!(m("*.txt", "dir/x.txt"));
        assert!(!m("*.txt", "dir/x.txt.gz"));
        assert!(m("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
        assert!(!m("arn:aws:s3:::b/*", "arn:aws:s3:::bb/x"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(m("ab", "ab"));
        assert!(!m("ab", "abc"));
        assert!(!m("", "a"));
        assert!(m("", ""));
    }

    #[test]
    fn hostile_pattern_stays_fast() {
        let p = "*a".repeat(40) + "b";
        let t = "a".repeat(10_000);
        assert!(!m(&p, &t));
    }

    /// The reference: a plain recursive matcher over characters.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_reference(p in "[ab*?é]{0,8}", t in "[abé]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            prop_assert_eq!(m(&p, &t), reference(&pc, &tc));
        }
    }
}
