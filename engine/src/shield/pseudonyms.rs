//! The label ↔ value map of one incident (the vault's content).
//!
//! Deliberately opaque: `Debug` shows only a count, and nothing public returns a raw value.
//! Rehydration is `pub(crate)` — reachable only through the engine's action boundary.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Consistent pseudonyms: the same value always gets the same `[KIND_N]`, whatever detector
/// finds it later (the kind it was first found as stays).
#[derive(Clone, Default)]
pub struct Pseudonyms {
    /// Every value's bytes, one after another (one growing buffer instead of an allocation
    /// per value); `entries` holds where each lies.
    values: String,
    /// Each value's place in `values` and its label, in order of first sight.
    entries: Vec<Entry>,
    /// value → its entry. Looked up by `&str`: a repeat costs one hash and no allocation.
    /// The reverse map is built only when rehydrating.
    by_value: HashTable<Slot>,
    /// foldhash: several times faster than SipHash on short values, and seeded per map (it
    /// claims only minimal resistance to inputs written to collide).
    hasher: foldhash::fast::RandomState,
    /// Further labels of a value restored from a vault sealed before one value had one label.
    aliases: Vec<(String, Named)>,
    /// The kinds seen, in order of first sight, each with its last number.
    kinds: Vec<(Box<str>, u32)>,
}

/// Where a value lies in `values`, and its label.
#[derive(Clone, Copy)]
struct Entry {
    start: usize,
    end: usize,
    named: Named,
}

/// A table slot: an index into `entries` and 32 bits of the value's hash. With a new value in
/// nearly every line of a stream, reading entries and values was most of the map's time: the
/// hash kept in the slot rules out nearly every other value without reading its entry, and
/// lets the table grow without reading any value again. Eight bytes, so the table of 100,000
/// values (1 MB) is a third of what it was with the entries in it.
#[derive(Clone, Copy)]
struct Slot {
    hash: u32,
    entry: u32,
}

/// The table's 64-bit hash from the 32 bits a slot keeps: its top bits (which the table
/// compares first) must vary too.
fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// How many values a map had labelled at some point (see [`Pseudonyms::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(usize);

/// `[KIND_N]`: an index into `kinds` and N.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Named {
    kind: u16,
    n: u32,
}

/// Equal when they give the same labels to the same values (in whatever order they were
/// restored).
impl PartialEq for Pseudonyms {
    fn eq(&self, other: &Self) -> bool {
        let set = |p: &Pseudonyms| {
            p.entries()
                .map(|(label, kind, value)| (label, kind.to_owned(), value.to_owned()))
                .collect::<std::collections::BTreeSet<_>>()
        };
        self.len() == other.len() && set(self) == set(other)
    }
}

impl Eq for Pseudonyms {}

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
    /// One hash and one probe of the table, whether the value is new or not.
    pub fn push_label(&mut self, kind: &str, value: &str, out: &mut String) {
        let hash = self.hash(value);
        let (values, entries) = (&self.values, &self.entries);
        let found = self.by_value.entry(
            spread(hash),
            |slot| slot.hash == hash && is_value(values, entries, *slot, value),
            |slot| spread(slot.hash),
        );
        // Seen before, perhaps as another kind (`token=x`, then `password=x`): the same label.
        let named = match found {
            hashbrown::hash_table::Entry::Occupied(slot) => {
                self.entries[slot.get().entry as usize].named
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let index = kind_index(&mut self.kinds, kind);
                let counter = &mut self.kinds[usize::from(index)].1;
                *counter = counter.saturating_add(1);
                let named = Named {
                    kind: index,
                    n: *counter,
                };
                if let Some(entry) = remember(&mut self.values, &mut self.entries, value, named) {
                    vacant.insert(Slot { hash, entry });
                }
                named
            }
        };
        self.write_label(named, out);
    }

    /// The 32 bits of `value`'s hash a slot keeps.
    fn hash(&self, value: &str) -> u32 {
        self.hasher.hash_one(value) as u32
    }

    /// The label of `value`, if it has one.
    fn named(&self, value: &str) -> Option<Named> {
        let hash = self.hash(value);
        self.by_value
            .find(spread(hash), |slot| {
                slot.hash == hash && is_value(&self.values, &self.entries, *slot, value)
            })
            .map(|slot| self.entries[slot.entry as usize].named)
    }

    /// Gives `value` (which has no label yet) the label `named`.
    fn insert(&mut self, value: &str, named: Named) {
        let hash = self.hash(value);
        if let Some(entry) = remember(&mut self.values, &mut self.entries, value, named) {
            self.by_value
                .insert_unique(spread(hash), Slot { hash, entry }, |slot| spread(slot.hash));
        }
    }

    fn write_label(&self, named: Named, out: &mut String) {
        out.push('[');
        out.push_str(&self.kinds[usize::from(named.kind)].0);
        out.push('_');
        let mut digits = [0u8; 10];
        let mut n = named.n;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[at..] {
            out.push(char::from(d));
        }
        out.push(']');
    }

    fn label(&self, named: Named) -> String {
        let mut label = String::new();
        self.write_label(named, &mut label);
        label
    }

    pub fn len(&self) -> usize {
        self.by_value.len() + self.aliases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(label, kind, value)` for sealing; private to the shield.
    pub(super) fn entries(&self) -> impl Iterator<Item = (String, &str, &str)> {
        let aliases = self.aliases.iter().map(|(value, n)| (*n, value.as_str()));
        self.own_since(Mark(0))
            .chain(aliases)
            .map(|(n, value)| (self.label(n), &*self.kinds[usize::from(n.kind)].0, value))
    }

    /// Where the map stands now: [`Pseudonyms::entries_since`] a mark gives what was added
    /// after it (labels are only ever added, in order).
    pub fn mark(&self) -> Mark {
        Mark(self.entries.len())
    }

    /// `(label, kind, value)` of the values labelled after `mark`, for sealing a segment.
    pub(super) fn entries_since(&self, mark: Mark) -> impl Iterator<Item = (String, &str, &str)> {
        self.own_since(mark)
            .map(|(n, value)| (self.label(n), &*self.kinds[usize::from(n.kind)].0, value))
    }

    fn own_since(&self, mark: Mark) -> impl Iterator<Item = (Named, &str)> {
        self.entries
            .get(mark.0..)
            .unwrap_or_default()
            .iter()
            .map(|entry| (entry.named, &self.values[entry.start..entry.end]))
    }

    /// Puts back an entry read from a sealed vault, keeping the numbering consistent.
    pub(super) fn restore(&mut self, label: String, kind: String, value: String) {
        let Some(n) = label
            .rsplit_once('_')
            .and_then(|(_, n)| n.trim_end_matches(']').parse::<u32>().ok())
        else {
            return;
        };
        let index = kind_index(&mut self.kinds, &kind);
        let counter = &mut self.kinds[usize::from(index)].1;
        *counter = (*counter).max(n);
        let named = Named { kind: index, n };
        match self.named(&value) {
            Some(existing) if existing != named => self.aliases.push((value, named)),
            Some(_) => {}
            None => self.insert(&value, named),
        }
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

/// Appends `value` and its entry; returns the entry's index for the table. Past 2^32 values
/// (their entries alone would take over 100 GB) a new value still gets its label, but is not
/// remembered.
fn remember(
    values: &mut String,
    entries: &mut Vec<Entry>,
    value: &str,
    named: Named,
) -> Option<u32> {
    let index = u32::try_from(entries.len()).ok()?;
    let start = values.len();
    values.push_str(value);
    entries.push(Entry {
        start,
        end: values.len(),
        named,
    });
    Some(index)
}

/// Whether `slot`'s value is `value`. Called after the 32 bits of hash in the slot matched,
/// so nearly always for the value itself: the entry and the value are read only then.
fn is_value(values: &str, entries: &[Entry], slot: Slot, value: &str) -> bool {
    let entry = &entries[slot.entry as usize];
    values.as_bytes().get(entry.start..entry.end) == Some(value.as_bytes())
}

/// The index of `kind` in `kinds`, added if new. Kinds are the detectors' labels (a few dozen
/// at most); past 65,536 of them the last slot is shared rather than wrapping around.
fn kind_index(kinds: &mut Vec<(Box<str>, u32)>, kind: &str) -> u16 {
    let index = match kinds.iter().position(|(k, _)| &**k == kind) {
        Some(i) => i,
        None if kinds.len() < usize::from(u16::MAX) => {
            kinds.push((kind.into(), 0));
            kinds.len() - 1
        }
        None => kinds.len() - 1,
    };
    u16::try_from(index).unwrap_or(u16::MAX)
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
