//! The label ↔ value map of one incident (the vault's content).
//!
//! Deliberately opaque: `Debug` shows only a count, and nothing public returns a raw value.
//! Rehydration is `pub(crate)` — reachable only through the engine's action boundary.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;

/// Consistent pseudonyms: the same value always gets the same `[KIND_N]`, whatever detector
/// finds it later (the kind it was first found as stays).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pseudonyms {
    /// kind → value → N. Looked up by `&str`, so a repeat costs no allocation; a new value
    /// costs one. The reverse map is built only when rehydrating (rare).
    by_value: HashMap<String, HashMap<String, u32>>,
    counters: HashMap<String, u32>,
}

impl fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonyms")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl Pseudonyms {
    pub fn new() -> Self {
        Self::default()
    }

    /// The label of `value`, assigning the next number of its kind on first sight.
    pub fn label_for(&mut self, kind: &str, value: &str) -> String {
        let mut label = String::new();
        self.push_label(kind, value, &mut label);
        label
    }

    /// Appends the label of `value` to `out` (no allocation when the value was seen before).
    pub fn push_label(&mut self, kind: &str, value: &str, out: &mut String) {
        // Seen before as another kind (`token=x`, then `password=x`): the same label.
        if !self
            .by_value
            .get(kind)
            .is_some_and(|v| v.contains_key(value))
            && let Some((other, n)) = self
                .by_value
                .iter()
                .find_map(|(k, values)| values.get(value).map(|n| (k, *n)))
        {
            let _ = write!(out, "[{other}_{n}]");
            return;
        }
        let n = match self.by_value.get_mut(kind) {
            Some(values) => match values.get(value) {
                Some(n) => *n,
                None => {
                    let counter = self.counters.get_mut(kind).expect("kinds have counters");
                    *counter += 1;
                    values.insert(value.to_owned(), *counter);
                    *counter
                }
            },
            None => {
                self.counters.insert(kind.to_owned(), 1);
                self.by_value
                    .insert(kind.to_owned(), HashMap::from([(value.to_owned(), 1)]));
                1
            }
        };
        let _ = write!(out, "[{kind}_{n}]");
    }

    pub fn len(&self) -> usize {
        self.by_value.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(label, kind, value)` for sealing; private to the shield.
    pub(super) fn entries(&self) -> impl Iterator<Item = (String, &str, &str)> {
        self.by_value.iter().flat_map(|(kind, values)| {
            values
                .iter()
                .map(move |(value, n)| (format!("[{kind}_{n}]"), kind.as_str(), value.as_str()))
        })
    }

    /// Puts back an entry read from a sealed vault, keeping the numbering consistent.
    pub(super) fn restore(&mut self, label: String, kind: String, value: String) {
        let Some(n) = label
            .rsplit_once('_')
            .and_then(|(_, n)| n.trim_end_matches(']').parse::<u32>().ok())
        else {
            return;
        };
        let counter = self.counters.entry(kind.clone()).or_insert(0);
        *counter = (*counter).max(n);
        self.by_value.entry(kind).or_default().insert(value, n);
    }

    /// The labels handed out so far (never the values).
    pub fn labels(&self) -> impl Iterator<Item = String> + '_ {
        self.entries().map(|(label, _, _)| label)
    }

    /// `text` with every label of this map replaced by the label `into` gives the same value
    /// (assigning one if it has none): moves text from one incident's labels to another's
    /// without a raw value ever leaving the engine.
    pub fn relabel(&self, text: &str, into: &mut Pseudonyms) -> String {
        let by_label: HashMap<String, (&str, &str)> = self
            .entries()
            .map(|(label, kind, value)| (label, (kind, value)))
            .collect();
        replace_labels(text, |label, out| match by_label.get(label) {
            Some((kind, value)) => {
                into.push_label(kind, value, out);
                true
            }
            None => false,
        })
    }

    /// `text` with every known label replaced by its original value.
    pub(crate) fn rehydrate(&self, text: &str) -> String {
        let by_label: HashMap<String, &str> = self
            .entries()
            .map(|(label, _, value)| (label, value))
            .collect();
        replace_labels(text, |label, out| match by_label.get(label) {
            Some(value) => {
                out.push_str(value);
                true
            }
            None => false,
        })
    }
}

/// Copies `text`, letting `replace` write each `[…]` it knows (returning true).
fn replace_labels(text: &str, mut replace: impl FnMut(&str, &mut String) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let candidate = &rest[open..];
        let used = candidate
            .find(']')
            .and_then(|close| replace(&candidate[..=close], &mut out).then_some(close + 1));
        match used {
            Some(used) => rest = &candidate[used..],
            None => {
                out.push('[');
                rest = &candidate[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
