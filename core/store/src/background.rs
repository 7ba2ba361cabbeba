//! The store's own threads: the drive monitor, the healer and the scanner
//! each run on a thread of their own with a small runtime, whose blocking
//! pool is theirs too. Request load can fill the server runtime's blocking
//! pool and queue every job behind it; a health probe or a heal waiting in
//! that queue would measure the queue, not the drive (and a probe that
//! times out marks the drive offline). Here they never wait behind client
//! requests.

use std::future::Future;

/// Most blocking threads one background runtime may run at once (a heal
/// reads up to N shards and writes up to N drives in parallel).
const BLOCKING_THREADS: usize = 64;

/// Runs `task()` to its end on a new thread named `name`. A thread or
/// runtime that cannot start is logged: the server then runs without that
/// background duty rather than not at all.
pub(crate) fn spawn<F, Fut>(name: &str, task: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread_name = format!("cairn-{name}");
    let runtime_name = thread_name.clone();
    let started = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(runtime_name)
                .max_blocking_threads(BLOCKING_THREADS)
                .build();
            match rt {
                Ok(rt) => rt.block_on(task()),
                Err(e) => tracing::error!(error = %e, "cannot start a background runtime"),
            }
        });
    if let Err(e) = started {
        tracing::error!(task = name, error = %e, "cannot start a background thread");
    }
}
