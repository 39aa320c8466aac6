//! The Privacy Shield: finds personal and secret values in text and replaces each with a
//! label such as `[IP_1]`, the same label for the same value within one incident.
//!
//! All detectors are compiled into one multi-pattern automaton, so a text is scanned once
//! whatever the number of detectors. At one position the earlier detector in priority order
//! wins (specific shapes before generic ones); matches never overlap. Candidates that need more
//! than a pattern (card numbers: Luhn; IPv6: must parse) are confirmed after the scan, and a
//! rejected candidate lets the next detector try the same position.

pub mod boundary;
mod detectors;
mod pseudonyms;
mod vault;

use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, meta};
use serde::Deserialize;

use detectors::{BUILTINS, Check, ValuePart, luhn_valid, value_range};
pub use pseudonyms::Pseudonyms;
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
}

/// A detected value: its byte range in the text and its kind (`IP`, `EMAIL`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding<'s> {
    pub start: usize,
    pub end: usize,
    pub kind: &'s str,
}

/// The compiled detectors. Cheap to share (`Arc`) and safe to use from many threads.
#[derive(Debug)]
pub struct Shield {
    all: meta::Regex,
    /// One regex per detector, for re-trying a position after a rejected candidate.
    each: Vec<meta::Regex>,
    detectors: Vec<Detector>,
}

fn build(patterns: &[&str]) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        // Detectors are ASCII; byte-level matching keeps the automaton small and fast.
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .utf8_empty(false)
                // Many patterns make many DFA states; a roomier cache avoids falling back
                // to the (much slower) NFA simulation.
                .hybrid_cache_capacity(16 * 1024 * 1024),
        )
        .build_many(patterns)
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
            })
            .collect();
        let mut patterns: Vec<&str> = BUILTINS.iter().map(|b| b.pattern).collect();
        let mut each = Vec::with_capacity(patterns.len() + custom.len());
        for builtin in BUILTINS {
            each.push(build(&[builtin.pattern]).expect("built-in detector compiles"));
        }
        for c in custom {
            if !valid_label(&c.label) {
                return Err(ShieldError::BadLabel {
                    name: c.name.clone(),
                    label: c.label.clone(),
                });
            }
            let single =
                build(&[c.pattern.as_str()]).map_err(|message| ShieldError::BadPattern {
                    name: c.name.clone(),
                    message,
                })?;
            if single.is_match("") {
                return Err(ShieldError::MatchesEmpty {
                    name: c.name.clone(),
                });
            }
            each.push(single);
            patterns.push(&c.pattern);
            detectors.push(Detector {
                kind: c.label.clone(),
                check: Check::None,
                value: ValuePart::Whole,
            });
        }
        let all = build(&patterns).map_err(|message| ShieldError::BadPattern {
            name: "(combined)".into(),
            message,
        })?;
        Ok(Shield {
            all,
            each,
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

    /// Lower-priority detectors' chance at `start` after detector `rejected` was not confirmed.
    fn retry_at(&self, text: &str, start: usize, rejected: usize) -> Option<Finding<'_>> {
        (rejected + 1..self.detectors.len()).find_map(|index| {
            let input = Input::new(text).range(start..).anchored(Anchored::Yes);
            let m = self.each[index].search(&input)?;
            self.confirm(index, text, m.start(), m.end())
        })
    }

    /// Every detected value in `text`, in order, never overlapping.
    pub fn find(&self, text: &str) -> Vec<Finding<'_>> {
        let mut findings = Vec::new();
        self.each_finding(text, |finding| findings.push(finding));
        findings
    }

    /// Calls `found` with every detected value in `text`, in order, never overlapping.
    fn each_finding<'s>(&'s self, text: &str, mut found: impl FnMut(Finding<'s>)) {
        // Bare AWS secret keys come from a separate linear pass over the words; where one
        // overlaps an automaton's finding, the automaton's finding wins.
        let mut words = detectors::aws_secret_words(text).peekable();
        let secret = |(start, end)| Finding {
            start,
            end,
            kind: "SECRET",
        };
        let mut emitted = 0;
        let mut at = 0;
        while at < text.len() {
            let input = Input::new(text).range(at..);
            let Some(m) = self.all.search(&input) else {
                break;
            };
            let index = m.pattern().as_usize();
            let confirmed = self
                .confirm(index, text, m.start(), m.end())
                .or_else(|| self.retry_at(text, m.start(), index));
            let Some(finding) = confirmed else {
                // A long rejected candidate (a run of colons, of hex) is passed whole: trying
                // it again one byte later would make such a run quadratic.
                at = if m.len() > 64 { m.end() } else { m.start() + 1 };
                continue;
            };
            while let Some(&(start, end)) = words.peek() {
                if start >= finding.end {
                    break;
                }
                if end <= finding.start && start >= emitted {
                    found(secret((start, end)));
                }
                words.next();
            }
            // The scan goes on right after a value: what a match held beyond it (the rest of a
            // query string, a URL's host) is scanned too.
            emitted = finding.end;
            at = finding.end.max(m.start() + 1);
            found(finding);
        }
        for (start, end) in words {
            if start >= emitted {
                found(secret((start, end)));
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
        mut input: impl std::io::BufRead,
        mut output: impl std::io::Write,
    ) -> std::io::Result<Pseudonyms> {
        let mut names = Pseudonyms::new();
        let mut line = Vec::new();
        let mut redacted = String::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            redacted.clear();
            self.redact_into(&String::from_utf8_lossy(&line), &mut names, &mut redacted);
            output.write_all(redacted.as_bytes())?;
        }
        output.flush()?;
        Ok(names)
    }

    /// Appends `text` to `out` with every detected value replaced by its label in `names`
    /// (for streams: one buffer for every line).
    pub fn redact_into(&self, text: &str, names: &mut Pseudonyms, out: &mut String) {
        let mut last = 0;
        self.each_finding(text, |finding| {
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
