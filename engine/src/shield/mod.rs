//! The Privacy Shield: finds personal and secret values in text and replaces each with a
//! label such as `[IP_1]`, the same label for the same value within one incident.
//!
//! Each detector is a pattern and the positions its matches can start at: one pass over the
//! bytes finds those positions (`starts.rs`), and the detector's pattern is tried, anchored,
//! only there. Candidates are taken in order of
//! position; at one position the earlier detector in priority order wins (specific shapes
//! before generic ones); findings never overlap. Candidates that need more than a pattern (card
//! numbers: Luhn; IPv6: must parse) are confirmed after their match, and a rejected candidate
//! lets the next detector try the same position. Within the limits `starts.rs` documents, the
//! result is what one leftmost-first automaton of all the patterns finds, without running such
//! an automaton over every byte.

pub mod boundary;
mod detectors;
mod pseudonyms;
mod starts;
mod vault;

use std::panic::{RefUnwindSafe, UnwindSafe};

use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::{pool::Pool, syntax};
use regex_automata::{Anchored, Input, MatchKind, hybrid, meta};
use serde::Deserialize;

use detectors::{BUILTINS, Check, Shape, Start, ValuePart, luhn_valid, value_range};
pub use pseudonyms::{Mark, Pseudonyms};
pub use vault::{VaultError, VaultKey};

/// A detector from configuration, e.g. pod names: `{name = "pod", pattern = "…", label = "POD"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetector {
    pub name: String,
    pub pattern: String,
    /// The label's prefix: `POD` gives `[POD_1]`. Upper-case letters, digits and `_`.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShieldError {
    #[error("detector `{name}`: invalid pattern: {message}")]
    BadPattern { name: String, message: String },
    #[error("detector `{name}`: label `{label}` must be 1-32 of A-Z, 0-9 and _")]
    BadLabel { name: String, label: String },
    #[error("detector `{name}`: pattern matches the empty string")]
    MatchesEmpty { name: String },
}

#[derive(Debug, Clone)]
struct Detector {
    kind: String,
    check: Check,
    value: ValuePart,
    /// The shape the word pass finds this detector's candidates by, if it is one; the
    /// matches of some shapes are read directly instead of by the automaton
    /// ([`starts::direct_match`]).
    shape: Option<Shape>,
}

/// A detected value: its byte range in the text and its kind (`IP`, `EMAIL`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding<'s> {
    pub start: usize,
    pub end: usize,
    pub kind: &'s str,
}

fn secret<'s>(start: usize, end: usize) -> Finding<'s> {
    Finding {
        start,
        end,
        kind: "SECRET",
    }
}

/// Buffers one scan fills, kept by callers that scan many texts.
#[derive(Default)]
struct Scratch {
    candidates: Vec<starts::Candidate>,
    secrets: Vec<(usize, usize)>,
}

/// Where a text's candidates of the literals found anywhere come from: a search of the text,
/// or the search of the block of lines it lies in (a stream's), from `offset` in the block.
#[derive(Clone, Copy)]
enum AnywhereCandidates<'a> {
    Search,
    Found {
        candidates: &'a [starts::Candidate],
        offset: usize,
    },
}

type MakeCaches =
    Box<dyn Fn() -> Vec<hybrid::dfa::Cache> + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// The compiled detectors. Cheap to share (`Arc`) and safe to use from many threads.
pub struct Shield {
    /// Where the built-in detectors' matches can start.
    starts: starts::Starts,
    /// One lazy DFA per detector, run anchored at its candidates: it builds only the states
    /// those short runs visit.
    anchored: Vec<hybrid::dfa::DFA>,
    /// The DFAs' caches, one set per thread at a time.
    caches: Pool<Vec<hybrid::dfa::Cache>, MakeCaches>,
    /// Configured detectors say nothing of where they start: their regexes find them.
    custom: Vec<(usize, meta::Regex)>,
    detectors: Vec<Detector>,
}

impl std::fmt::Debug for Shield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shield")
            .field("detectors", &self.detectors)
            .finish_non_exhaustive()
    }
}

/// One leftmost-first regex of `patterns` (a configured detector's, which finds its
/// candidates).
fn build(patterns: &[&str]) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        // Detectors are ASCII; byte-level matching keeps the automaton small and fast.
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .utf8_empty(false),
        )
        .build_many(patterns)
        .map_err(|e| e.to_string())
}

/// A detector's pattern as a lazy DFA for anchored searches: it reports where the match that
/// starts at a candidate ends (leftmost-first), which is all the Shield needs.
fn anchored(pattern: &str) -> Result<hybrid::dfa::DFA, String> {
    hybrid::dfa::DFA::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
        .configure(hybrid::dfa::Config::new().match_kind(MatchKind::LeftmostFirst))
        .build(pattern)
        .map_err(|e| e.to_string())
}

fn valid_label(label: &str) -> bool {
    (1..=32).contains(&label.len())
        && label
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl Shield {
    /// The built-in detectors only.
    pub fn builtin() -> Shield {
        Shield::new(&[]).expect("built-in detectors compile")
    }

    /// The built-in detectors followed by `custom` ones (lower priority at equal positions).
    pub fn new(custom: &[CustomDetector]) -> Result<Shield, ShieldError> {
        let mut detectors: Vec<Detector> = BUILTINS
            .iter()
            .map(|b| Detector {
                kind: b.kind.to_owned(),
                check: b.check,
                value: b.value,
                shape: match b.start {
                    Start::Shape(shape) => Some(shape),
                    _ => None,
                },
            })
            .collect();
        let mut dfas = Vec::with_capacity(BUILTINS.len() + custom.len());
        for builtin in BUILTINS {
            dfas.push(anchored(builtin.pattern).expect("built-in detector compiles"));
        }
        let mut regexes = Vec::with_capacity(custom.len());
        for c in custom {
            if !valid_label(&c.label) {
                return Err(ShieldError::BadLabel {
                    name: c.name.clone(),
                    label: c.label.clone(),
                });
            }
            let bad = |message| ShieldError::BadPattern {
                name: c.name.clone(),
                message,
            };
            let regex = build(&[c.pattern.as_str()]).map_err(bad)?;
            if regex.is_match("") {
                return Err(ShieldError::MatchesEmpty {
                    name: c.name.clone(),
                });
            }
            dfas.push(anchored(&c.pattern).map_err(bad)?);
            regexes.push((detectors.len(), regex));
            detectors.push(Detector {
                kind: c.label.clone(),
                check: Check::None,
                value: ValuePart::Whole,
                shape: None,
            });
        }
        let for_caches = dfas.clone();
        let make: MakeCaches = Box::new(move || {
            for_caches
                .iter()
                .map(hybrid::dfa::Cache::new)
                .collect::<Vec<_>>()
        });
        Ok(Shield {
            starts: starts::Starts::new(BUILTINS),
            anchored: dfas,
            caches: Pool::new(make),
            custom: regexes,
            detectors,
        })
    }

    /// The value range of detector `index` matching `text[start..end]`, if it is confirmed.
    fn confirm(&self, index: usize, text: &str, start: usize, end: usize) -> Option<Finding<'_>> {
        let detector = &self.detectors[index];
        // Byte-level classes (`[^\s,;]`) can end a match inside a character: take all of it.
        let end = (end..=text.len()).find(|&i| text.is_char_boundary(i))?;
        let matched = text.get(start..end)?;
        let rest = text.get(start..)?;
        let (mut s, mut e) = value_range(detector.value, matched, rest)?;
        let value = rest.get(s..e)?;
        let kind = match detector.check {
            Check::None => Some(detector.kind.as_str()),
            Check::Luhn => luhn_valid(matched).then_some(detector.kind.as_str()),
            Check::Ipv6 => {
                let (a, b) = detectors::ipv6_within(text, start, end)?;
                (s, e) = (a - start, b - start);
                Some(detector.kind.as_str())
            }
            Check::Ipv4 => (detectors::octets(matched)
                && !detectors::inside_dotted_number(text, start, end))
            .then_some(detector.kind.as_str()),
            Check::Lengths(lengths) => {
                detectors::lengths_are(matched, lengths).then_some(detector.kind.as_str())
            }
            Check::SecretKey => {
                let key_end = detectors::key_end(matched)?;
                // In a query string a value ends at the next parameter.
                // … also a string that holds one (`query: Some("key=…")`, `"query":"key=…"`).
                let head = &text[..start];
                let query = head.ends_with(['?', '&'])
                    || ["query: Some(\"", "\"query\":\"", "query=\""]
                        .iter()
                        .any(|q| head.ends_with(q));
                let spaced = !matched[key_end..].contains(['=', ':']);
                let value = match value.find('&') {
                    Some(amp) if query => {
                        e = s + amp;
                        &value[..amp]
                    }
                    _ => value,
                };
                detectors::secret_key_kind(&matched[..key_end], value, query, spaced)
            }
            Check::PemPrivateKey => {
                detectors::pem_private_key(matched).then_some(detector.kind.as_str())
            }
            Check::FlagValue => {
                // Prose about a flag is not its value: `Using --password via the CLI is …`.
                let after = &rest.as_bytes()[e..];
                let prose = value.bytes().all(|b| b.is_ascii_lowercase())
                    && after.first() == Some(&b' ')
                    && after.get(1).is_some_and(u8::is_ascii_lowercase);
                let flag = matched.trim_start().split([' ', '\t']).next()?;
                let flag = flag.trim_start_matches('-');
                (!prose)
                    .then(|| detectors::secret_key_kind(flag, value, false, false))
                    .flatten()
            }
            Check::MinLen(len) => (matched.len() >= len).then_some(detector.kind.as_str()),
            Check::BasicCredential => {
                detectors::basic_credential(value).then_some(detector.kind.as_str())
            }
        }?;
        Some(Finding {
            start: start + s,
            end: start + e,
            kind,
        })
    }

    /// Every detected value in `text`, in order, never overlapping.
    pub fn find(&self, text: &str) -> Vec<Finding<'_>> {
        let mut findings = Vec::new();
        let mut caches = self.caches.get();
        let mut scratch = Scratch::default();
        self.each_finding(
            text,
            &mut scratch,
            &mut caches,
            AnywhereCandidates::Search,
            |finding| findings.push(finding),
        );
        findings
    }

    /// The positions where a detector's pattern may match, in order of position and then of
    /// priority; and the bare AWS secret keys, in order.
    fn candidates(&self, text: &str, scratch: &mut Scratch, anywhere: AnywhereCandidates<'_>) {
        scratch.candidates.clear();
        scratch.secrets.clear();
        let out = &mut scratch.candidates;
        self.starts.collect(text, out, &mut scratch.secrets);
        match anywhere {
            AnywhereCandidates::Search => self.starts.anywhere(text.as_bytes(), out),
            AnywhereCandidates::Found { candidates, offset } => {
                out.extend(candidates.iter().map(|&(at, index)| (at - offset, index)))
            }
        }
        for (index, regex) in &self.custom {
            let mut at = 0;
            while let Some(m) = regex.search(&Input::new(text).range(at..)) {
                out.push((m.start(), *index));
                at = m.end().max(m.start() + 1);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Calls `found` with every detected value in `text`, in order, never overlapping.
    /// `caches`: the anchored DFAs' caches, taken from the pool once per text or stream.
    fn each_finding<'s>(
        &'s self,
        text: &str,
        scratch: &mut Scratch,
        caches: &mut [hybrid::dfa::Cache],
        anywhere: AnywhereCandidates<'_>,
        mut found: impl FnMut(Finding<'s>),
    ) {
        self.candidates(text, scratch, anywhere);
        let mut confirmed = |start: usize, index: usize| {
            let direct = self.detectors[index]
                .shape
                .and_then(|shape| starts::direct_match(shape, text.as_bytes(), start));
            let end = match direct {
                Some(end) => end?,
                None => {
                    let input = Input::new(text).range(start..).anchored(Anchored::Yes);
                    // No quit bytes and no give-up threshold are configured: a search cannot
                    // fail.
                    self.anchored[index]
                        .try_search_fwd(&mut caches[index], &input)
                        .ok()??
                        .offset()
                }
            };
            self.confirm(index, text, start, end)
        };
        // Bare AWS secret keys come from the word pass; where one overlaps a pattern's
        // finding, the pattern's finding wins.
        let mut secrets = scratch.secrets.iter().copied().peekable();
        let mut emitted = 0;
        let mut emit = |finding: Finding<'s>| {
            while let Some(&(start, end)) = secrets.peek() {
                if start >= finding.end {
                    break;
                }
                if end <= finding.start && start >= emitted {
                    found(secret(start, end));
                }
                secrets.next();
            }
            emitted = finding.end;
            found(finding);
        };
        let candidates = &scratch.candidates;
        let mut at = 0;
        for (i, &(start, index)) in candidates.iter().enumerate() {
            if start < at {
                continue;
            }
            let Some(finding) = confirmed(start, index) else {
                continue;
            };
            // What a credential's match held before its value is scanned too, up to the
            // value: the user of `scheme://user:password@` or of `-u user:password` may be an
            // address or a key.
            let held_user = self.detectors[index].value.has_user();
            let mut inner = start + 1;
            for &(before, index) in &candidates[i + 1..] {
                if !held_user {
                    break;
                }
                if before >= finding.start {
                    break;
                }
                if before < inner {
                    continue;
                }
                if let Some(held) = confirmed(before, index)
                    && held.end <= finding.start
                {
                    inner = held.end.max(before + 1);
                    emit(held);
                }
            }
            // The scan goes on right after a value: what a match held beyond it (the rest of a
            // query string, a URL's host) is scanned too.
            at = finding.end.max(start + 1);
            emit(finding);
        }
        for (start, end) in secrets {
            if start >= emitted {
                found(secret(start, end));
            }
        }
    }

    /// `text` with every detected value replaced by its label in `names`.
    pub fn redact(&self, text: &str, names: &mut Pseudonyms) -> String {
        let mut out = String::with_capacity(text.len());
        self.redact_into(text, names, &mut out);
        out
    }

    /// Copies `input` to `output` line by line, redacted, with one label map for the whole
    /// stream (`awoooi redact`). Invalid UTF-8 becomes U+FFFD; line endings are kept.
    pub fn redact_stream(
        &self,
        mut input: impl std::io::Read,
        mut output: impl std::io::Write,
    ) -> std::io::Result<Pseudonyms> {
        const BLOCK: usize = 1 << 20;
        let mut names = Pseudonyms::new();
        let mut scratch = Scratch::default();
        let mut caches = self.caches.get();
        let mut redacted = String::new();
        // The candidates of the literals found anywhere in a block, in order.
        let mut anywhere = Vec::new();
        // Whole lines are taken from a block at a time; a partial last line waits for the
        // next read (or the end of the input).
        // Zeroed once (and again only where a line longer than a block makes it grow).
        let mut block: Vec<u8> = vec![0; BLOCK];
        let mut filled = 0;
        loop {
            if block.len() - filled < BLOCK / 2 {
                block.resize(filled + BLOCK / 2, 0);
            }
            let read = loop {
                match input.read(&mut block[filled..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            let end = filled + read;
            let done = read == 0;
            let whole = if done {
                end
            } else {
                // Only what this read added can hold the last newline.
                match memchr::memrchr(b'\n', &block[filled..end]) {
                    Some(newline) => filled + newline + 1,
                    None => {
                        filled = end;
                        continue;
                    }
                }
            };
            redacted.clear();
            // Valid UTF-8 (nearly every log) is checked once, not walked chunk by chunk.
            let text = match std::str::from_utf8(&block[..whole]) {
                Ok(text) => std::borrow::Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(&block[..whole]),
            };
            // The literals found anywhere are searched once per block: one search of a
            // megabyte costs less than its set-up on every line.
            anywhere.clear();
            self.starts.anywhere(text.as_bytes(), &mut anywhere);
            anywhere.sort_unstable();
            let mut line_start = 0;
            let mut next = 0;
            let newlines = memchr::memchr_iter(b'\n', text.as_bytes()).map(|newline| newline + 1);
            for line_end in newlines.chain(std::iter::once(text.len())) {
                let first = next;
                while anywhere.get(next).is_some_and(|&(at, _)| at < line_end) {
                    next += 1;
                }
                let found = AnywhereCandidates::Found {
                    candidates: &anywhere[first..next],
                    offset: line_start,
                };
                // A newline is one byte of ASCII: every line lies on character boundaries.
                if let Some(line) = text.get(line_start..line_end).filter(|l| !l.is_empty()) {
                    let (names, out) = (&mut names, &mut redacted);
                    self.redact_with(line, names, out, &mut scratch, &mut caches, found);
                }
                line_start = line_end;
            }
            output.write_all(redacted.as_bytes())?;
            if done {
                break;
            }
            block.copy_within(whole..end, 0);
            filled = end - whole;
        }
        output.flush()?;
        Ok(names)
    }

    /// Appends `text` to `out` with every detected value replaced by its label in `names`
    /// (for streams: one buffer for every line).
    pub fn redact_into(&self, text: &str, names: &mut Pseudonyms, out: &mut String) {
        let mut caches = self.caches.get();
        let mut scratch = Scratch::default();
        self.redact_with(
            text,
            names,
            out,
            &mut scratch,
            &mut caches,
            AnywhereCandidates::Search,
        );
    }

    fn redact_with(
        &self,
        text: &str,
        names: &mut Pseudonyms,
        out: &mut String,
        scratch: &mut Scratch,
        caches: &mut [hybrid::dfa::Cache],
        anywhere: AnywhereCandidates<'_>,
    ) {
        let mut last = 0;
        self.each_finding(text, scratch, caches, anywhere, |finding| {
            // Findings lie on ASCII boundaries; `get` keeps this panic-free regardless.
            let (Some(before), Some(value)) = (
                text.get(last..finding.start),
                text.get(finding.start..finding.end),
            ) else {
                return;
            };
            out.push_str(before);
            names.push_label(finding.kind, value, out);
            last = finding.end;
        });
        out.push_str(text.get(last..).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests;
