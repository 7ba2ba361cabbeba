//! Listings over several sets: every set lists with the same options,
//! and the pages merge in key order. Each set's page is sorted and
//! complete up to where it stopped, so the first `max` entries of the
//! merge are exactly the deployment's first `max` entries (a set that
//! stopped early returned `max` entries before its stop, so nothing it
//! did not return can rank among them). A key lives on one set, so the
//! versions of a key stay in their set's order.

use cairn_api::list::ListCollector;
use cairn_api::versioning::version_label;
use cairn_api::{
    ListOptions, ListPage, ListUploadsOptions, ListUploadsPage, ListVersionsPage, ObjectInfo,
    VersionEntry,
};

/// An entry of a listing: an item (object, version, upload) or a
/// common prefix.
enum Entry<T> {
    Item(T),
    Prefix(String),
}

/// The entries of every set in key order; a common prefix several sets
/// share appears once. Stable: one set's entries of one key keep their
/// order.
fn merged<T>(lists: Vec<Vec<Entry<T>>>, key: impl Fn(&T) -> &str) -> Vec<Entry<T>> {
    let name = |e: &Entry<T>| -> String {
        match e {
            Entry::Item(t) => key(t).to_owned(),
            Entry::Prefix(p) => p.clone(),
        }
    };
    let mut all: Vec<(String, Entry<T>)> =
        lists.into_iter().flatten().map(|e| (name(&e), e)).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.dedup_by(|a, b| matches!((&a.1, &b.1), (Entry::Prefix(x), Entry::Prefix(y)) if x == y));
    all.into_iter().map(|(_, e)| e).collect()
}

/// Objects and common prefixes of every set's page, through the one S3
/// listing collector.
pub(super) fn objects(pages: Vec<ListPage>, opts: ListOptions) -> ListPage {
    let any_truncated = pages.iter().any(|p| p.is_truncated);
    let lists = pages
        .into_iter()
        .map(|p| {
            p.objects
                .into_iter()
                .map(Entry::Item)
                .chain(p.common_prefixes.into_iter().map(Entry::Prefix))
                .collect()
        })
        .collect();
    let mut c = ListCollector::new(opts);
    for e in merged(lists, |o: &ObjectInfo| o.key.as_str()) {
        let full = match e {
            Entry::Item(o) => {
                let key = o.key.clone();
                c.push(&key, || Some(o))
            }
            Entry::Prefix(p) => c.push(&p, || None),
        };
        if full == cairn_api::list::Push::Full {
            break;
        }
    }
    let mut page = c.finish();
    if any_truncated && !page.is_truncated {
        // a set has more after what it returned
        page.is_truncated = true;
        page.next_marker = last_listed(&page);
    }
    page
}

/// The greater of the last object and the last common prefix.
fn last_listed(page: &ListPage) -> Option<String> {
    let o = page.objects.last().map(|o| o.key.clone());
    let p = page.common_prefixes.last().cloned();
    o.max(p)
}

/// Versions and common prefixes of every set's page, `max` entries.
pub(super) fn versions(pages: Vec<ListVersionsPage>, max: usize) -> ListVersionsPage {
    let any_truncated = pages.iter().any(|p| p.is_truncated);
    let lists = pages
        .into_iter()
        .map(|p| {
            p.versions
                .into_iter()
                .map(Entry::Item)
                .chain(p.common_prefixes.into_iter().map(Entry::Prefix))
                .collect()
        })
        .collect();
    let all = merged(lists, |v: &VersionEntry| v.info.key.as_str());
    let truncated = any_truncated || all.len() > max;
    let mut page = ListVersionsPage {
        is_truncated: truncated,
        ..Default::default()
    };
    for e in all.into_iter().take(max) {
        match e {
            Entry::Item(v) => {
                page.next_key_marker = Some(v.info.key.clone());
                page.next_version_id_marker =
                    Some(version_label(v.info.version_id.as_deref()).to_owned());
                page.versions.push(v);
            }
            Entry::Prefix(p) => {
                page.next_key_marker = Some(p.clone());
                page.next_version_id_marker = None;
                page.common_prefixes.push(p);
            }
        }
    }
    if !truncated {
        page.next_key_marker = None;
        page.next_version_id_marker = None;
    }
    page
}

/// Multipart uploads of every set's page, paged by the one rule every
/// layer pages uploads with.
pub(super) fn uploads(pages: Vec<ListUploadsPage>, opts: &ListUploadsOptions) -> ListUploadsPage {
    let any_truncated = pages.iter().any(|p| p.is_truncated);
    let all = pages.into_iter().flat_map(|p| p.uploads).collect();
    let mut page = cairn_api::multipart::page_uploads(all, opts);
    page.is_truncated |= any_truncated;
    page
}
