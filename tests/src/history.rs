//! A recorded history of PUTs and GETs on a few keys, and its check
//! (issue 21): every GET returns one whole version that some PUT wrote
//! (never a mix of shards, never bytes nobody wrote), and no GET returns
//! a version older than one whose PUT was acknowledged before the GET
//! began.
//!
//! Each PUT's body names its writer and sequence number in a first line
//! and continues with bytes generated from them, so a body read back is
//! checked whole against what that PUT sent.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::data::random_bytes;

/// Which PUT wrote a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Written {
    pub writer: u32,
    pub seq: u32,
}

impl Written {
    /// The body this PUT sends: `len` bytes (at least its first line,
    /// which says the length too: a cut-off body is told apart).
    pub fn body(self, len: usize) -> Vec<u8> {
        let mut b = format!("history w={} s={} n={len}\n", self.writer, self.seq).into_bytes();
        let seed = (u64::from(self.writer) << 32) | u64::from(self.seq);
        let rest = len.saturating_sub(b.len());
        b.extend_from_slice(&random_bytes(rest, seed));
        b
    }

    /// Which PUT wrote `body`, if the whole body is exactly what it sent.
    pub fn of(body: &[u8]) -> Result<Written> {
        let Some(nl) = body.iter().position(|&c| c == b'\n') else {
            bail!("a body of {} bytes without a first line", body.len());
        };
        let first = String::from_utf8_lossy(&body[..nl]);
        let mut w = None;
        let mut s = None;
        let mut n = None;
        for part in first.split(' ').skip(1) {
            match part.split_once('=') {
                Some(("w", v)) => w = v.parse().ok(),
                Some(("s", v)) => s = v.parse().ok(),
                Some(("n", v)) => n = v.parse::<usize>().ok(),
                _ => {}
            }
        }
        let (Some(writer), Some(seq), Some(len)) = (w, s, n) else {
            bail!("not a history body: {first:?}");
        };
        let put = Written { writer, seq };
        if len != body.len() || put.body(len) != body {
            bail!(
                "the {} bytes read are not what {put:?} wrote (a mix of versions?)",
                body.len()
            );
        }
        Ok(put)
    }
}

/// What one operation did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A PUT that was acknowledged (200).
    Put(Written),
    /// A PUT that failed: it may or may not have taken effect.
    PutFailed(Written),
    /// A GET's answer: the version read, or none (404).
    Got(Option<Written>),
    /// A GET that failed (an error status, or a body no PUT wrote).
    GetFailed(String),
}

/// One operation on one key, with when it was asked and answered.
#[derive(Debug, Clone)]
pub struct Op {
    pub key: String,
    pub start: Instant,
    pub end: Instant,
    pub outcome: Outcome,
}

/// What a history held, for the test's report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub puts: usize,
    pub puts_failed: usize,
    pub gets: usize,
    pub gets_failed: usize,
}

/// Checks a history; returns what it held, or every violation found.
pub fn check(ops: &[Op]) -> Result<Tally> {
    let mut tally = Tally::default();
    // each PUT by what it wrote: (key, start, end if acknowledged)
    let mut puts: HashMap<Written, (&str, Instant, Option<Instant>)> = HashMap::new();
    for op in ops {
        match &op.outcome {
            Outcome::Put(w) => {
                tally.puts += 1;
                puts.insert(*w, (&op.key, op.start, Some(op.end)));
            }
            Outcome::PutFailed(w) => {
                tally.puts_failed += 1;
                puts.insert(*w, (&op.key, op.start, None));
            }
            Outcome::Got(_) => tally.gets += 1,
            Outcome::GetFailed(_) => tally.gets_failed += 1,
        }
    }
    let mut wrong = Vec::new();
    for r in ops {
        let read = match &r.outcome {
            Outcome::Got(read) => read,
            Outcome::GetFailed(e) => {
                wrong.push(format!("GET {} failed: {e}", r.key));
                continue;
            }
            _ => continue,
        };
        // the version read must be this key's, asked before the read ended
        let read_end = match read {
            Some(v) => match puts.get(v) {
                Some((key, start, end)) if *key == r.key && *start < r.end => *end,
                _ => {
                    wrong.push(format!(
                        "GET {} read {v:?}, no PUT of it began before",
                        r.key
                    ));
                    continue;
                }
            },
            None => None,
        };
        // a newer acknowledged PUT: ended before the read began, and
        // began after the version read was acknowledged (or any, for a 404)
        let newer = puts.iter().find(|(_, (key, start, end))| {
            *key == r.key
                && end.is_some_and(|e| e < r.start)
                && match (read, read_end) {
                    (None, _) => true,
                    (Some(_), Some(read_end)) => read_end < *start,
                    (Some(_), None) => false,
                }
        });
        if let Some((w, _)) = newer {
            wrong.push(format!(
                "GET {} read {read:?} after the PUT of {w:?} had been acknowledged",
                r.key
            ));
        }
    }
    if !wrong.is_empty() {
        let n = wrong.len();
        wrong.truncate(20);
        bail!("{n} violations in the history:\n{}", wrong.join("\n"));
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn op(key: &str, at: (u64, u64), outcome: Outcome) -> Op {
        let t0 = Instant::now();
        Op {
            key: key.into(),
            start: t0 + Duration::from_millis(at.0),
            end: t0 + Duration::from_millis(at.1),
            outcome,
        }
    }

    const A: Written = Written { writer: 1, seq: 1 };
    const B: Written = Written { writer: 2, seq: 1 };

    #[test]
    fn bodies_are_recognised_whole_and_only_whole() {
        let body = A.body(5000);
        assert_eq!(Written::of(&body).unwrap(), A);
        let mut mixed = body.clone();
        mixed[3000..].copy_from_slice(&B.body(5000)[3000..]);
        assert!(Written::of(&mixed).is_err());
        assert!(Written::of(&body[..4000]).is_err());
        assert!(Written::of(b"no first line").is_err());
    }

    #[test]
    fn a_read_older_than_an_acknowledged_put_is_caught() {
        let stale = [
            op("k", (0, 10), Outcome::Put(A)),
            op("k", (20, 30), Outcome::Put(B)),
            op("k", (40, 50), Outcome::Got(Some(A))),
        ];
        assert!(check(&stale).is_err());
        let missing = [
            op("k", (0, 10), Outcome::Put(A)),
            op("k", (20, 30), Outcome::Got(None)),
        ];
        assert!(check(&missing).is_err());
        let other_key = [
            op("j", (0, 10), Outcome::Put(A)),
            op("k", (20, 30), Outcome::Got(Some(A))),
        ];
        assert!(check(&other_key).is_err());
        let future = [
            op("k", (0, 10), Outcome::Got(Some(A))),
            op("k", (20, 30), Outcome::Put(A)),
        ];
        assert!(check(&future).is_err());
    }

    #[test]
    fn concurrent_and_failed_puts_may_be_read() {
        let ok = [
            op("k", (0, 10), Outcome::Put(A)),
            // B overlaps the read: either version may be read
            op("k", (20, 60), Outcome::Put(B)),
            op("k", (30, 40), Outcome::Got(Some(A))),
            op("k", (30, 40), Outcome::Got(Some(B))),
            // a failed PUT may have taken effect, and is never "older"
            op(
                "k",
                (70, 80),
                Outcome::PutFailed(Written { writer: 3, seq: 1 }),
            ),
            op(
                "k",
                (90, 95),
                Outcome::Got(Some(Written { writer: 3, seq: 1 })),
            ),
            op("k", (90, 95), Outcome::Got(Some(B))),
            op("n", (0, 5), Outcome::Got(None)),
        ];
        let t = check(&ok).unwrap();
        assert_eq!((t.puts, t.puts_failed, t.gets), (2, 1, 5));
    }
}
