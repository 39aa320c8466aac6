//! The read cache: answers to the incident list, kept between incident changes.
//!
//! The console's pages and the integrations that poll ask the same few list queries again and
//! again, and the answer is the same for every signed-in caller (`incidents` requires a
//! principal and shows every incident to every role). An answer is kept as its JSON text, found
//! by the document's text, its operation name and its variables, and served again while both
//! hold:
//! - no incident event has been seen since it was computed. The bus counts them
//!   ([`crate::base::bus::EventBus::incident_epoch`]): this replica's changes once they have
//!   committed, before the request that made them is answered, and other replicas' as Redis
//!   delivers them;
//! - it is younger than `[graphql] read_cache_ms`. That bounds how late a change is seen when
//!   its event never arrives (Redis pub/sub is at-most-once) or a write publishes none.
//!
//! Only documents whose every field is one of the list's ([`listed_only`], decided once per
//! parsed document) qualify, and only for a signed-in caller; an answer with errors is never
//! kept. The cache holds at most [`ReadCache::MAX`] answers of at most
//! [`ReadCache::MAX_ANSWER`] bytes; past that it starts over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use axum::body::Bytes;

/// What a kept answer is found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    text: String,
    operation: Option<String>,
    /// The variables as JSON.
    variables: String,
}

impl Key {
    /// The key of `request`, or `None` when its variables cannot be written as JSON.
    pub fn of(request: &async_graphql::Request) -> Option<Key> {
        Some(Key {
            text: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
        })
    }
}

struct Kept {
    answer: Bytes,
    epoch: u64,
    at: Instant,
}

/// Answers kept by [`Key`]; see the module's documentation.
pub struct ReadCache {
    max_age: Duration,
    entries: Mutex<HashMap<Key, Kept>>,
}

impl ReadCache {
    pub const MAX: usize = 128;
    pub const MAX_ANSWER: usize = 256 * 1024;

    /// A cache whose answers live at most `max_age`; zero turns it off.
    pub fn new(max_age: Duration) -> ReadCache {
        ReadCache {
            max_age,
            entries: Mutex::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.max_age.is_zero()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Kept>> {
        // A cache: a panic while holding the lock leaves nothing to repair.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer kept for `key`, if it was computed at `epoch` and is young enough.
    pub fn get(&self, key: &Key, epoch: u64, now: Instant) -> Option<Bytes> {
        let entries = self.entries();
        let kept = entries.get(key)?;
        (kept.epoch == epoch && now.saturating_duration_since(kept.at) < self.max_age)
            .then(|| kept.answer.clone())
    }

    /// Keeps `answer`, computed from what was stored at `epoch`, as of `at` (when its reading
    /// started).
    pub fn keep(&self, key: Key, answer: Bytes, epoch: u64, at: Instant) {
        if !self.enabled() || answer.len() > ReadCache::MAX_ANSWER {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= ReadCache::MAX && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, Kept { answer, epoch, at });
    }
}

/// Where a selection stands in the list's types.
#[derive(Debug, Clone, Copy)]
enum Level {
    Root,
    Connection,
    Edge,
    Incident,
    PageInfo,
    Leaf,
}

/// What field `name` selected at `level` leads to, if it is one of the list's.
fn step(level: Level, name: &str) -> Option<Level> {
    if name == "__typename" {
        return Some(Level::Leaf);
    }
    match (level, name) {
        (Level::Root, "incidents") => Some(Level::Connection),
        (Level::Connection, "totalCount") => Some(Level::Leaf),
        (Level::Connection, "edges") => Some(Level::Edge),
        (Level::Connection, "nodes") => Some(Level::Incident),
        (Level::Connection, "pageInfo") => Some(Level::PageInfo),
        (Level::Edge, "cursor") => Some(Level::Leaf),
        (Level::Edge, "node") => Some(Level::Incident),
        (Level::PageInfo, "hasPreviousPage" | "hasNextPage" | "startCursor" | "endCursor") => {
            Some(Level::Leaf)
        }
        // The incident's own columns and its alert count: every write to them publishes an
        // incident event. Not `mergedFrom`, `escalation`, `comments`, `analysis`…
        (
            Level::Incident,
            "id" | "title" | "severity" | "status" | "service" | "mergedInto" | "alertCount"
            | "createdAt" | "updatedAt" | "acknowledgedBy" | "acknowledgedAt" | "assignee"
            | "resolvedAt",
        ) => Some(Level::Leaf),
        _ => None,
    }
}

fn selects_listed(set: &SelectionSet, level: Level) -> bool {
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => {
            let field = &field.node;
            match step(level, field.name.node.as_str()) {
                Some(Level::Leaf) => field.selection_set.node.items.is_empty(),
                Some(next) => selects_listed(&field.selection_set.node, next),
                None => false,
            }
        }
        // Fragments could name any type; a document with one is simply not kept.
        Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
    })
}

/// Whether `document` is queries of `incidents` whose every field is one of the list's.
pub fn listed_only(document: &ExecutableDocument) -> bool {
    if !document.fragments.is_empty() {
        return false;
    }
    let listed = |operation: &async_graphql::parser::types::OperationDefinition| {
        let set = &operation.selection_set.node;
        // A query of `__typename` alone costs less than keeping it.
        let lists = set.items.iter().any(|item| {
            matches!(&item.node, Selection::Field(field) if field.node.name.node == "incidents")
        });
        operation.ty == OperationType::Query && lists && selects_listed(set, Level::Root)
    };
    match &document.operations {
        DocumentOperations::Single(operation) => listed(&operation.node),
        DocumentOperations::Multiple(operations) => {
            operations.values().all(|operation| listed(&operation.node))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(text: &str) -> bool {
        listed_only(&async_graphql::parser::parse_query(text).expect("parses"))
    }

    #[test]
    fn only_documents_made_of_the_lists_fields_qualify() {
        assert!(listed(
            "{ incidents(first: 20) { totalCount edges { cursor node { id title severity \
             status service createdAt alertCount mergedInto assignee acknowledgedBy } } \
             pageInfo { hasNextPage endCursor } } }"
        ));
        assert!(listed(
            "query List($first: Int!) { __typename list: incidents(first: $first) { nodes { id } } }"
        ));
        // A field outside the incident's own columns, another root, a mutation, a fragment.
        assert!(!listed(
            "{ incidents { edges { node { id comments { text } } } } }"
        ));
        assert!(!listed(
            "{ incidents { edges { node { id analysis { summary } } } } }"
        ));
        assert!(!listed("{ incidents { totalCount } me { username } }"));
        assert!(!listed("mutation { logout }"));
        assert!(!listed("{ __typename }"));
        assert!(!listed(
            "{ incidents { edges { node { ...F } } } } fragment F on Incident { id }"
        ));
        assert!(!listed(
            "{ incidents { edges { node { ... on Incident { id } } } } }"
        ));
        // A leaf asked for as an object is refused by validation, and is not kept either.
        assert!(!listed("{ incidents { totalCount { x } } }"));
    }

    fn key(variables: &str) -> Key {
        Key {
            text: "{ incidents { totalCount } }".into(),
            operation: None,
            variables: variables.into(),
        }
    }

    #[test]
    fn an_answer_is_served_only_at_its_epoch_and_within_its_age() {
        let cache = ReadCache::new(Duration::from_millis(1000));
        let start = Instant::now();
        cache.keep(key("{}"), Bytes::from_static(b"A"), 7, start);
        assert_eq!(
            cache.get(&key("{}"), 7, start),
            Some(Bytes::from_static(b"A"))
        );
        // Other variables, an incident event since, too old.
        assert_eq!(cache.get(&key("{\"first\":5}"), 7, start), None);
        assert_eq!(cache.get(&key("{}"), 8, start), None);
        assert_eq!(
            cache.get(&key("{}"), 7, start + Duration::from_millis(1000)),
            None
        );
    }

    #[test]
    fn a_cache_of_age_zero_keeps_nothing_and_a_full_one_starts_over() {
        let off = ReadCache::new(Duration::ZERO);
        let now = Instant::now();
        off.keep(key("{}"), Bytes::from_static(b"A"), 0, now);
        assert_eq!(off.get(&key("{}"), 0, now), None);

        let cache = ReadCache::new(Duration::from_secs(60));
        for i in 0..ReadCache::MAX {
            cache.keep(key(&i.to_string()), Bytes::from_static(b"A"), 0, now);
        }
        assert!(cache.get(&key("0"), 0, now).is_some());
        cache.keep(key("new"), Bytes::from_static(b"B"), 0, now);
        assert_eq!(cache.get(&key("0"), 0, now), None);
        assert_eq!(
            cache.get(&key("new"), 0, now),
            Some(Bytes::from_static(b"B"))
        );
        let big = Bytes::from(vec![b' '; ReadCache::MAX_ANSWER + 1]);
        cache.keep(key("big"), big, 0, now);
        assert_eq!(cache.get(&key("big"), 0, now), None);
    }
}
