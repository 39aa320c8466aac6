//! The label ↔ value map of one incident (the vault's content).
//!
//! Deliberately opaque: `Debug` shows only a count, and nothing public returns a raw value.
//! Rehydration is `pub(crate)` — reachable only through the engine's action boundary.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Consistent pseudonyms: the same `(kind, value)` always gets the same `[KIND_N]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pseudonyms {
    by_value: HashMap<(String, String), String>,
    by_label: BTreeMap<String, String>,
    counters: BTreeMap<String, u32>,
}

impl fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonyms")
            .field("entries", &self.by_label.len())
            .finish_non_exhaustive()
    }
}

impl Pseudonyms {
    pub fn new() -> Self {
        Self::default()
    }

    /// The label of `value`, assigning the next number of its kind on first sight.
    pub fn label_for(&mut self, kind: &str, value: &str) -> String {
        if let Some(label) = self.by_value.get(&(kind.to_owned(), value.to_owned())) {
            return label.clone();
        }
        let n = self.counters.entry(kind.to_owned()).or_insert(0);
        *n += 1;
        let label = format!("[{kind}_{n}]");
        self.by_value
            .insert((kind.to_owned(), value.to_owned()), label.clone());
        self.by_label.insert(label.clone(), value.to_owned());
        label
    }

    pub fn len(&self) -> usize {
        self.by_label.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_label.is_empty()
    }

    /// `(label, kind, value)` for sealing; private to the shield.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.by_value
            .iter()
            .map(|((kind, value), label)| (label.as_str(), kind.as_str(), value.as_str()))
    }

    /// Puts back an entry read from a sealed vault, keeping the numbering consistent.
    pub(super) fn restore(&mut self, label: String, kind: String, value: String) {
        let n = label
            .rsplit_once('_')
            .and_then(|(_, n)| n.trim_end_matches(']').parse::<u32>().ok())
            .unwrap_or(0);
        let counter = self.counters.entry(kind.clone()).or_insert(0);
        *counter = (*counter).max(n);
        self.by_label.insert(label.clone(), value.clone());
        self.by_value.insert((kind, value), label);
    }

    /// The labels handed out so far (never the values).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.by_label.keys().map(String::as_str)
    }

    /// `text` with every known label replaced by its original value.
    #[allow(dead_code)] // used by the action boundary (executors), which arrives with actions
    pub(crate) fn rehydrate(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let candidate = &rest[open..];
            let replaced = candidate.find(']').and_then(|close| {
                let label = &candidate[..=close];
                self.by_label.get(label).map(|value| (value, close + 1))
            });
            match replaced {
                Some((value, used)) => {
                    out.push_str(value);
                    rest = &candidate[used..];
                }
                None => {
                    out.push('[');
                    rest = &candidate[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}
