//! This node's lockers: one per drive it serves, kept in memory. A lock
//! is held by a request id (`uid`) until it is released or until its
//! holder stops refreshing it for [`LockConfig::ttl`] (a killed node's
//! locks expire on their own). A write lock is granted with a fence
//! (generation) the asker proposes; the locker refuses a fence that is
//! not above every fence it granted for the same object before, and says
//! which, so the asker can propose a higher one.
//!
//! Memory is bounded: entries of objects nobody holds are kept only for
//! their last fence, and past [`MAX_IDLE_ENTRIES`] they are dropped after
//! raising a floor that every forgotten object's fence starts from.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Entries of unheld objects kept for their fences before the floor
/// takes them over.
pub const MAX_IDLE_ENTRIES: usize = 65_536;

/// Lock timings (the defaults are the cluster's; tests shorten them).
#[derive(Debug, Clone, Copy)]
pub struct LockConfig {
    /// A lock not refreshed for this long is gone.
    pub ttl: Duration,
    /// How often a holder refreshes its locks.
    pub refresh: Duration,
    /// How long an asker retries while others hold the lock.
    pub wait: Duration,
    /// How long one round of asks may take (a dead node is skipped).
    pub call: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self::with_ttl(Duration::from_secs(30))
    }
}

impl LockConfig {
    /// The defaults with locks living `ttl`, refreshed every third of it
    /// (a refresh round that waits out a dead node's call, a third at
    /// most, still lands before the lock expires).
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            refresh: ttl / 3,
            wait: Duration::from_secs(10),
            call: Duration::from_secs(2).min(ttl / 3),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Read,
    Write,
}

/// One ask of one drive's locker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    pub drive: String,
    pub resource: String,
    pub uid: String,
    pub kind: Kind,
    /// The proposed fence (write locks).
    #[serde(default)]
    pub fence: u64,
}

/// A locker's answer to one ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "answer")]
pub enum Answer {
    Granted,
    /// Held by others.
    Busy,
    /// Free, but the fence proposed is not above `max`.
    Stale {
        max: u64,
    },
    /// (refresh, unlock) done; (refresh) not held by this uid any more.
    Done,
    Gone,
}

/// What an asker sends a node: one operation on several drives' lockers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockOp {
    Lock,
    Refresh,
    Unlock,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LockCall {
    pub op: LockOp,
    pub asks: Vec<Ask>,
}

#[derive(Debug, Default)]
struct Entry {
    writer: Option<(String, Instant)>,
    readers: Vec<(String, Instant)>,
    /// The highest fence granted.
    fence: u64,
}

impl Entry {
    fn prune(&mut self, now: Instant) {
        if self.writer.as_ref().is_some_and(|(_, e)| *e <= now) {
            self.writer = None;
        }
        self.readers.retain(|(_, e)| *e > now);
    }

    fn idle(&self) -> bool {
        self.writer.is_none() && self.readers.is_empty()
    }
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<(String, String), Entry>,
    /// The fence every forgotten object's starts above.
    floor: u64,
}

/// The lockers of this node's drives.
#[derive(Debug)]
pub struct Lockers {
    ttl: Duration,
    state: Mutex<State>,
}

impl Lockers {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    /// Answers each ask of `call`, in order.
    pub fn answer(&self, call: &LockCall) -> Vec<Answer> {
        let now = Instant::now();
        let mut st = self.state.lock();
        let answers = call
            .asks
            .iter()
            .map(|a| Self::one(&mut st, call.op, a, now, self.ttl))
            .collect();
        if st.entries.len() > MAX_IDLE_ENTRIES {
            Self::forget_idle(&mut st, now);
        }
        answers
    }

    fn one(st: &mut State, op: LockOp, a: &Ask, now: Instant, ttl: Duration) -> Answer {
        let floor = st.floor;
        let key = (a.drive.clone(), a.resource.clone());
        let e = st.entries.entry(key).or_insert_with(|| Entry {
            fence: floor,
            ..Default::default()
        });
        e.prune(now);
        let until = now + ttl;
        match op {
            LockOp::Lock => match a.kind {
                Kind::Write if !e.idle() => Answer::Busy,
                Kind::Write if a.fence <= e.fence => Answer::Stale { max: e.fence },
                Kind::Write => {
                    e.fence = a.fence;
                    e.writer = Some((a.uid.clone(), until));
                    Answer::Granted
                }
                Kind::Read if e.writer.is_some() => Answer::Busy,
                Kind::Read => {
                    e.readers.push((a.uid.clone(), until));
                    Answer::Granted
                }
            },
            LockOp::Refresh => {
                let mut held = false;
                if let Some((u, exp)) = &mut e.writer
                    && *u == a.uid
                {
                    *exp = until;
                    held = true;
                }
                for (u, exp) in &mut e.readers {
                    if *u == a.uid {
                        *exp = until;
                        held = true;
                    }
                }
                if held { Answer::Done } else { Answer::Gone }
            }
            LockOp::Unlock => {
                if e.writer.as_ref().is_some_and(|(u, _)| *u == a.uid) {
                    e.writer = None;
                }
                e.readers.retain(|(u, _)| *u != a.uid);
                Answer::Done
            }
        }
    }

    /// Drops the entries nobody holds, keeping their fences in the floor.
    fn forget_idle(st: &mut State, now: Instant) {
        let mut floor = st.floor;
        st.entries.retain(|_, e| {
            e.prune(now);
            if e.idle() {
                floor = floor.max(e.fence);
                false
            } else {
                true
            }
        });
        st.floor = floor;
    }

    /// How many objects' entries are kept (for tests and metrics).
    pub fn entries(&self) -> usize {
        self.state.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(uid: &str, kind: Kind, fence: u64) -> Ask {
        Ask {
            drive: "/d1".into(),
            resource: "b/k".into(),
            uid: uid.into(),
            kind,
            fence,
        }
    }

    fn call(l: &Lockers, op: LockOp, a: Ask) -> Answer {
        let got = l.answer(&LockCall { op, asks: vec![a] });
        got.first().copied().unwrap_or(Answer::Gone)
    }

    #[test]
    fn writers_exclude_everyone_and_fences_only_grow() {
        let l = Lockers::new(Duration::from_secs(30));
        assert_eq!(
            call(&l, LockOp::Lock, ask("a", Kind::Write, 5)),
            Answer::Granted
        );
        assert_eq!(
            call(&l, LockOp::Lock, ask("b", Kind::Write, 9)),
            Answer::Busy
        );
        assert_eq!(
            call(&l, LockOp::Lock, ask("r", Kind::Read, 0)),
            Answer::Busy
        );
        assert_eq!(
            call(&l, LockOp::Unlock, ask("a", Kind::Write, 0)),
            Answer::Done
        );
        // free, but not above the last fence granted
        assert_eq!(
            call(&l, LockOp::Lock, ask("b", Kind::Write, 5)),
            Answer::Stale { max: 5 }
        );
        assert_eq!(
            call(&l, LockOp::Lock, ask("b", Kind::Write, 6)),
            Answer::Granted
        );
        assert_eq!(
            call(&l, LockOp::Refresh, ask("b", Kind::Write, 0)),
            Answer::Done
        );
        assert_eq!(
            call(&l, LockOp::Refresh, ask("a", Kind::Write, 0)),
            Answer::Gone
        );
    }

    #[test]
    fn readers_share_and_locks_expire() {
        let l = Lockers::new(Duration::from_millis(50));
        assert_eq!(
            call(&l, LockOp::Lock, ask("r1", Kind::Read, 0)),
            Answer::Granted
        );
        assert_eq!(
            call(&l, LockOp::Lock, ask("r2", Kind::Read, 0)),
            Answer::Granted
        );
        assert_eq!(
            call(&l, LockOp::Lock, ask("w", Kind::Write, 1)),
            Answer::Busy
        );
        std::thread::sleep(Duration::from_millis(80));
        // nobody refreshed: both readers are gone
        assert_eq!(
            call(&l, LockOp::Refresh, ask("r1", Kind::Read, 0)),
            Answer::Gone
        );
        assert_eq!(
            call(&l, LockOp::Lock, ask("w", Kind::Write, 1)),
            Answer::Granted
        );
    }

    #[test]
    fn forgotten_objects_keep_their_fences_in_the_floor() {
        let l = Lockers::new(Duration::from_secs(30));
        for i in 0..=MAX_IDLE_ENTRIES as u64 {
            let mut a = ask("u", Kind::Write, 1000 + i);
            a.resource = format!("b/{i}");
            assert_eq!(call(&l, LockOp::Lock, a.clone()), Answer::Granted);
            assert_eq!(call(&l, LockOp::Unlock, a), Answer::Done);
        }
        assert!(l.entries() <= MAX_IDLE_ENTRIES);
        // any object's fence now starts above every one forgotten
        let a = ask("v", Kind::Write, 1000);
        assert!(matches!(
            call(&l, LockOp::Lock, a),
            Answer::Stale { max } if max >= 1000 + MAX_IDLE_ENTRIES as u64 - 1
        ));
    }
}
