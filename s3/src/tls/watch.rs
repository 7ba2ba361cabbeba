//! Certificates reloaded while serving: the folder is looked at every
//! `POLL` (and at once on SIGHUP); a pair whose files changed is loaded
//! again once they have stayed the same for one look (a copy in progress
//! is not read half-written). A pair that fails to load keeps serving its
//! previous certificate and is reported once (ERROR) per change of its
//! files; new connections get the new certificates, open ones keep theirs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use tracing::{error, info, warn};

use super::certs::{self, CertError, Pair, Slot, Stamp};
use super::resolve::{Certs, Resolver};

/// How often the folder is looked at.
const POLL: Duration = Duration::from_secs(2);

/// What was loaded from the folder, and what was last tried.
pub(crate) struct Loader {
    root: PathBuf,
    provider: Arc<CryptoProvider>,
    /// The pairs served, by slot name (`""`: the default one).
    pairs: BTreeMap<String, Pair>,
    /// Each slot's files when last loaded or tried (failures included,
    /// so a broken pair is reported once per change).
    tried: BTreeMap<String, Stamp>,
    /// The folder could not be listed at the last look (reported once).
    list_failed: bool,
}

impl Loader {
    /// Loads every pair of the folder; any that fails fails the start.
    pub(crate) fn initial(
        root: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<(Self, Certs), CertError> {
        let mut pairs = BTreeMap::new();
        let mut tried = BTreeMap::new();
        for slot in certs::scan(&root)? {
            let pair = certs::load(&slot.dir, &provider)?;
            log_pair(&slot, &pair, "certificate loaded");
            tried.insert(slot.name.clone(), slot.stamp);
            pairs.insert(slot.name, pair);
        }
        let certs = Certs::new(&pairs).ok_or_else(|| CertError::NoCertificate(root.clone()))?;
        Ok((
            Self {
                root,
                provider,
                pairs,
                tried,
                list_failed: false,
            },
            certs,
        ))
    }

    /// Loads the pairs of `slots` that changed since last tried, drops
    /// the ones gone; the certificates to serve when anything changed.
    fn refresh(&mut self, slots: &[Slot]) -> Option<Certs> {
        let mut changed = false;
        for slot in slots {
            if self.tried.get(&slot.name) == Some(&slot.stamp) {
                continue;
            }
            self.tried.insert(slot.name.clone(), slot.stamp);
            match certs::load(&slot.dir, &self.provider) {
                Ok(pair) => {
                    log_pair(slot, &pair, "certificate reloaded");
                    self.pairs.insert(slot.name.clone(), pair);
                    changed = true;
                }
                Err(e) if self.pairs.contains_key(&slot.name) => error!(
                    dir = %slot.dir.display(), error = %e,
                    "the changed certificate cannot be loaded; serving the previous one"
                ),
                Err(e) => error!(
                    dir = %slot.dir.display(), error = %e,
                    "the new certificate cannot be loaded; not serving it"
                ),
            }
        }
        let gone: Vec<String> = self
            .pairs
            .keys()
            .filter(|n| !n.is_empty() && !slots.iter().any(|s| &s.name == *n))
            .cloned()
            .collect();
        for name in gone {
            info!(name, "certificate folder removed; no longer served");
            self.pairs.remove(&name);
            changed = true;
        }
        self.tried.retain(|n, _| slots.iter().any(|s| &s.name == n));
        if changed {
            Certs::new(&self.pairs)
        } else {
            None
        }
    }

    /// The folder's pairs now (None, reported once, if it cannot be read).
    fn scan(&mut self) -> Option<Vec<Slot>> {
        match certs::scan(&self.root) {
            Ok(s) => {
                self.list_failed = false;
                Some(s)
            }
            Err(e) => {
                if !std::mem::replace(&mut self.list_failed, true) {
                    error!(error = %e, "cannot look at the certificates folder; serving the loaded certificates");
                }
                None
            }
        }
    }
}

fn log_pair(slot: &Slot, pair: &Pair, what: &str) {
    let which = if slot.name.is_empty() {
        "default"
    } else {
        slot.name.as_str()
    };
    info!(certificate = which, dir = %slot.dir.display(), names = ?pair.names, "{what}");
}

/// Watches the folder until dropped (the task is aborted).
pub(crate) struct Watch(tokio::task::JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts watching `loader`'s folder, swapping `resolver`'s certificates.
pub(crate) fn start(loader: Loader, resolver: Arc<Resolver>) -> Watch {
    let loader = Arc::new(std::sync::Mutex::new(loader));
    Watch(tokio::spawn(async move {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP; certificates reload by polling only");
                None
            }
        };
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // the previous look's slots: files are loaded once they stay the same
        let mut previous: Option<Vec<Slot>> = None;
        loop {
            let hupped = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => true,
            };
            if hupped {
                info!("SIGHUP: reloading the certificates");
            }
            let loader = loader.clone();
            let prev = previous.take();
            let looked = tokio::task::spawn_blocking(move || {
                let mut l = loader
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let slots = l.scan()?;
                let certs = if hupped || prev.as_ref() == Some(&slots) {
                    l.refresh(&slots)
                } else {
                    // changing (or the first look): loaded at the next
                    // look if they stay the same
                    None
                };
                Some((slots, certs))
            })
            .await;
            match looked {
                Ok(Some((slots, certs))) => {
                    if let Some(c) = certs {
                        resolver.set(c);
                    }
                    previous = Some(slots);
                }
                Ok(None) => {}
                Err(e) => error!(error = %e, "certificate reload task failed"),
            }
        }
    }))
}
