//! The AUTH_SYS identity of the call being served. nfs3_server shows a
//! call's credential to the filesystem only in `authorize`, which it runs
//! in the task that then serves the call (one spawned task per call), so
//! the identity is kept by task id for that call's operations. Should a
//! later nfs3_server call `authorize` elsewhere, nothing is found and new
//! objects get the export's default owner, as without this.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::Id;

/// A call's operations run right after its `authorize`; older records are
/// of finished calls.
const KEEP: Duration = Duration::from_secs(10);
/// How often finished calls' records are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub gids: Vec<u32>,
}

pub struct Callers {
    inner: Mutex<Inner>,
}

struct Inner {
    by_task: HashMap<Id, (Caller, Instant)>,
    swept: Instant,
}

impl Callers {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                by_task: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Records the current task's caller (`None`: not AUTH_SYS).
    pub fn record(&self, caller: Option<Caller>) {
        let Some(task) = tokio::task::try_id() else {
            return;
        };
        let now = Instant::now();
        let mut g = self.inner.lock();
        if now.duration_since(g.swept) >= SWEEP_EVERY {
            g.by_task
                .retain(|_, (_, at)| now.duration_since(*at) < KEEP);
            g.swept = now;
        }
        match caller {
            Some(c) => {
                g.by_task.insert(task, (c, now));
            }
            None => {
                g.by_task.remove(&task);
            }
        }
    }

    /// The caller of the call this task serves, if it sent AUTH_SYS.
    pub fn current(&self) -> Option<Caller> {
        let task = tokio::task::try_id()?;
        self.inner.lock().by_task.get(&task).map(|(c, _)| c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn each_task_sees_its_own_caller() {
        let callers = Arc::new(Callers::new());
        let mut tasks = Vec::new();
        for uid in 1000..1010 {
            let c = callers.clone();
            tasks.push(tokio::spawn(async move {
                c.record(Some(Caller {
                    uid,
                    gid: uid + 1,
                    gids: vec![uid + 2],
                }));
                tokio::task::yield_now().await;
                c.current()
            }));
        }
        for (uid, t) in (1000..1010).zip(tasks) {
            assert_eq!(
                t.await.unwrap(),
                Some(Caller {
                    uid,
                    gid: uid + 1,
                    gids: vec![uid + 2]
                })
            );
        }
        let c = callers.clone();
        let other = tokio::spawn(async move { c.current() }).await.unwrap();
        assert_eq!(other, None, "a task that recorded nothing has no caller");
    }
}
