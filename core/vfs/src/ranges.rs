//! The dirty ranges of a staged file: a set of byte intervals, kept
//! merged (no two overlap or touch) and in ascending order.

use std::collections::BTreeMap;

/// Half-open intervals `[start, end)`, merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges {
    /// start -> end
    map: BTreeMap<u64, u64>,
    total: u64,
}

impl Ranges {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes covered.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of intervals.
    pub fn count(&self) -> usize {
        self.map.len()
    }

    /// The intervals in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.map.iter().map(|(s, e)| (*s, *e))
    }

    /// Bytes of `[start, end)` not covered yet.
    pub fn uncovered(&self, start: u64, end: u64) -> u64 {
        let covered: u64 = self
            .overlapping(start, end)
            .map(|(s, e)| e - s)
            .sum::<u64>();
        end.saturating_sub(start).saturating_sub(covered)
    }

    /// The covered parts of `[start, end)`, clipped to it, ascending.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        // the interval that starts before `start` may reach into it
        let first = self
            .map
            .range(..start)
            .next_back()
            .filter(|(_, e)| **e > start)
            .map(|(s, e)| (*s, *e));
        let rest = self.map.range(start..end.max(start)).map(|(s, e)| (*s, *e));
        first
            .into_iter()
            .chain(rest)
            .map(move |(s, e)| (s.max(start), e.min(end)))
            .filter(|(s, e)| s < e)
    }

    /// Covers `[start, end)`; returns how many bytes were newly covered.
    pub fn insert(&mut self, start: u64, end: u64) -> u64 {
        if start >= end {
            return 0;
        }
        let added = self.uncovered(start, end);
        let mut s = start;
        let mut e = end;
        // an interval ending at or after `start` that starts before it
        if let Some((ps, pe)) = self.map.range(..start).next_back().map(|(a, b)| (*a, *b))
            && pe >= start
        {
            s = ps;
            e = e.max(pe);
            self.map.remove(&ps);
        }
        // intervals starting inside [start, end] are swallowed
        let inside: Vec<(u64, u64)> = self.map.range(start..=end).map(|(a, b)| (*a, *b)).collect();
        for (is, ie) in inside {
            e = e.max(ie);
            self.map.remove(&is);
        }
        self.map.insert(s, e);
        self.total += added;
        added
    }

    /// Drops everything at or past `n`; returns how many bytes went.
    pub fn truncate(&mut self, n: u64) -> u64 {
        let before = self.total;
        let cut: Vec<u64> = self.map.range(n..).map(|(s, _)| *s).collect();
        for s in cut {
            if let Some(e) = self.map.remove(&s) {
                self.total -= e - s;
            }
        }
        if let Some((_, e)) = self.map.range_mut(..n).next_back()
            && *e > n
        {
            self.total -= *e - n;
            *e = n;
        }
        before - self.total
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.total = 0;
    }

    /// The set of a list of intervals (a sidecar's); None unless they are
    /// well formed: non-empty, ascending, not overlapping.
    pub fn from_list(list: &[(u64, u64)]) -> Option<Self> {
        let mut r = Self::new();
        let mut prev = 0u64;
        for (i, &(s, e)) in list.iter().enumerate() {
            if s >= e || (i > 0 && s < prev) {
                return None;
            }
            prev = e;
            r.insert(s, e);
        }
        Some(r)
    }

    pub fn to_list(&self) -> Vec<(u64, u64)> {
        self.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng as _};

    #[test]
    fn inserts_merge_and_truncate_like_a_bitmap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..200 {
            let mut r = Ranges::new();
            let mut model = vec![false; 300];
            for _ in 0..30 {
                if rng.random_range(0..5) == 0 {
                    let n = rng.random_range(0..300u64);
                    let gone = r.truncate(n);
                    let want = model[n as usize..].iter().filter(|b| **b).count() as u64;
                    assert_eq!(gone, want);
                    model[n as usize..].fill(false);
                } else {
                    let s = rng.random_range(0..290u64);
                    let e = s + rng.random_range(0..10u64);
                    let want = model[s as usize..e as usize]
                        .iter()
                        .filter(|b| !**b)
                        .count();
                    assert_eq!(r.insert(s, e), want as u64);
                    model[s as usize..e as usize].fill(true);
                }
                // the set is the model, merged
                let mut prev_end = None;
                let mut bits = vec![false; 300];
                for (s, e) in r.iter() {
                    assert!(s < e);
                    if let Some(p) = prev_end {
                        assert!(s > p, "touching intervals are merged");
                    }
                    prev_end = Some(e);
                    bits[s as usize..e as usize].fill(true);
                }
                assert_eq!(bits, model);
                assert_eq!(r.total(), model.iter().filter(|b| **b).count() as u64);
                let (a, b) = (rng.random_range(0..300u64), rng.random_range(0..300u64));
                let (a, b) = (a.min(b), a.max(b));
                let cov: u64 = r.overlapping(a, b).map(|(s, e)| e - s).sum();
                let want = model[a as usize..b as usize].iter().filter(|b| **b).count();
                assert_eq!(cov, want as u64);
                assert_eq!(Ranges::from_list(&r.to_list()).as_ref(), Some(&r));
            }
        }
    }

    #[test]
    fn malformed_lists_are_refused() {
        assert!(Ranges::from_list(&[(5, 5)]).is_none());
        assert!(Ranges::from_list(&[(5, 9), (8, 10)]).is_none());
        assert!(Ranges::from_list(&[(5, 9), (1, 2)]).is_none());
        assert!(Ranges::from_list(&[(9, 5)]).is_none());
        assert_eq!(Ranges::from_list(&[(1, 2), (2, 3)]).unwrap().count(), 1);
    }
}
