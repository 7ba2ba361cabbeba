//! Drive arguments: `{1...N}` ellipsis expansion (as MinIO spells it).

use anyhow::{Context as _, bail};

/// Expands every `{a...b}` in `arg` (numbers; `{01...16}` keeps the
/// zero padding), producing the cartesian product in order.
pub fn expand(arg: &str) -> anyhow::Result<Vec<String>> {
    let Some(open) = arg.find('{') else {
        return Ok(vec![arg.to_owned()]);
    };
    let close = arg[open..]
        .find('}')
        .map(|i| open + i)
        .with_context(|| format!("{arg}: '{{' without '}}'"))?;
    let inner = &arg[open + 1..close];
    let (lo, hi) = inner
        .split_once("...")
        .with_context(|| format!("{arg}: expected {{FIRST...LAST}}, got {{{inner}}}"))?;
    let width = if lo.starts_with('0') && lo.len() > 1 {
        lo.len()
    } else {
        0
    };
    let a: u64 = lo
        .parse()
        .with_context(|| format!("{arg}: {lo:?} is not a number"))?;
    let b: u64 = hi
        .parse()
        .with_context(|| format!("{arg}: {hi:?} is not a number"))?;
    if a > b {
        bail!("{arg}: the range {a}...{b} is empty");
    }
    if b - a >= 4096 {
        bail!("{arg}: the range {a}...{b} is too large");
    }
    let rest = expand(&arg[close + 1..])?;
    let mut out = Vec::new();
    for i in a..=b {
        for r in &rest {
            out.push(format!("{}{:0width$}{}", &arg[..open], i, r, width = width));
        }
    }
    Ok(out)
}

/// Whether a drive argument is a URL (`http://host/path`): a drive of
/// another server, which only a cluster could serve.
fn is_url(arg: &str) -> bool {
    arg.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

pub fn expand_all(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for a in args {
        if is_url(a) && !a.starts_with("http://") {
            bail!("drive {a}: only http:// drive URLs are supported");
        }
        out.extend(expand(a)?);
    }
    let mut seen = std::collections::HashSet::new();
    for d in &out {
        if !seen.insert(d) {
            bail!("drive {d} is given twice");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands() {
        assert_eq!(expand("/d{1...3}").unwrap(), ["/d1", "/d2", "/d3"]);
        assert_eq!(
            expand("/m{01...02}/x{1...2}").unwrap(),
            ["/m01/x1", "/m01/x2", "/m02/x1", "/m02/x2"]
        );
        assert_eq!(expand("/plain").unwrap(), ["/plain"]);
        assert!(expand("/d{3...1}").is_err());
        assert!(expand("/d{1..3}").is_err());
        assert!(expand_all(&["/a".into(), "/a".into()]).is_err());
        let urls = expand_all(&["http://127.0.0.{1...2}:9000/srv/d{1...2}".into()]).unwrap();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:9000/srv/d1",
                "http://127.0.0.1:9000/srv/d2",
                "http://127.0.0.2:9000/srv/d1",
                "http://127.0.0.2:9000/srv/d2"
            ]
        );
        assert!(expand_all(&["HTTPS://h/d1".into()]).is_err());
        assert_eq!(expand_all(&["./a:b".into()]).unwrap(), ["./a:b"]);
    }
}
