//! BERT's uncased WordPiece tokenizer, as `tokenizer.json` describes it for all-MiniLM-L6-v2:
//! the BERT normaliser (clean the text, space out CJK ideographs, strip accents, lower-case),
//! the BERT pre-tokeniser (split at white space, every punctuation character a word of its
//! own) and greedy longest-match WordPiece with the `##` continuation prefix.
//!
//! Where it departs from the reference (`tokenizers`): a character counts as punctuation when
//! it is ASCII punctuation or in the ranges of [`is_unicode_punctuation`], which cover the
//! punctuation blocks logs print (General Punctuation, CJK, full-width, Latin-1) but not every
//! character of Unicode's P categories.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::LoadError;

/// Words longer than this (in characters) become `[UNK]`, as in the reference.
const MAX_WORD_CHARS: usize = 100;

/// The vocabulary and the ids of the special tokens.
pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    cls: u32,
    sep: u32,
    unk: u32,
}

impl Tokenizer {
    /// Reads the WordPiece vocabulary from a `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, LoadError> {
        let json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| LoadError::Format(format!("tokenizer.json: {e}")))?;
        let model = &json["model"];
        if model["type"] != "WordPiece" {
            return Err(LoadError::Format(format!(
                "tokenizer.json: model.type is {}, expected \"WordPiece\"",
                model["type"]
            )));
        }
        let vocab: HashMap<String, u32> = model["vocab"]
            .as_object()
            .ok_or_else(|| LoadError::Format("tokenizer.json: model.vocab is not a map".into()))?
            .iter()
            .map(|(token, id)| {
                id.as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .map(|id| (token.clone(), id))
                    .ok_or_else(|| {
                        LoadError::Format(format!("tokenizer.json: id of {token:?} is not a u32"))
                    })
            })
            .collect::<Result<_, _>>()?;
        let special = |token: &str| {
            vocab.get(token).copied().ok_or_else(|| {
                LoadError::Format(format!("tokenizer.json: the vocabulary has no {token}"))
            })
        };
        Ok(Tokenizer {
            cls: special("[CLS]")?,
            sep: special("[SEP]")?,
            unk: special("[UNK]")?,
            vocab,
        })
    }

    /// The number of tokens in the vocabulary.
    pub fn vocab_len(&self) -> usize {
        self.vocab.len()
    }

    /// `[CLS]`, the text's word pieces, `[SEP]`: at most `max_len` ids in all (the text's
    /// pieces cut at the end, as the reference truncates a single sequence).
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let room = max_len.saturating_sub(2);
        let mut ids = vec![self.cls];
        let normalised = normalise(text);
        'words: for word in pre_tokenise(&normalised) {
            for id in self.word_pieces(word) {
                if ids.len() > room {
                    break 'words;
                }
                ids.push(id);
            }
        }
        ids.push(self.sep);
        ids
    }

    /// Greedy longest-match-first: the whole word is `[UNK]` when any part has no piece.
    fn word_pieces(&self, word: &str) -> Vec<u32> {
        if word.chars().count() > MAX_WORD_CHARS {
            return vec![self.unk];
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        let mut candidate = String::with_capacity(word.len() + 2);
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                candidate.clear();
                if start > 0 {
                    candidate.push_str("##");
                }
                candidate.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(&candidate) {
                    found = Some(id);
                    break;
                }
                // Step back one character, never into the middle of one.
                end = word[..end]
                    .char_indices()
                    .next_back()
                    .map_or(start, |(i, _)| i);
            }
            match found {
                Some(id) => {
                    pieces.push(id);
                    start = end;
                }
                None => return vec![self.unk],
            }
        }
        pieces
    }
}

/// The BERT normaliser with `clean_text`, `handle_chinese_chars`, `strip_accents` and
/// `lowercase` all on.
pub(crate) fn normalise(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' || c == '\u{fffd}' || is_control(c) {
            continue;
        }
        if is_whitespace(c) {
            cleaned.push(' ');
        } else if is_cjk(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    let mut out = String::with_capacity(cleaned.len());
    if cleaned.is_ascii() {
        out.extend(cleaned.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        for c in cleaned.nfd().filter(|&c| !is_combining_mark(c)) {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Split at white space; every punctuation character is a word of its own.
pub(crate) fn pre_tokenise(text: &str) -> impl Iterator<Item = &str> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if is_whitespace(c) {
            if let Some(s) = start.take() {
                words.push(&text[s..i]);
            }
        } else if is_punctuation(c) {
            if let Some(s) = start.take() {
                words.push(&text[s..i]);
            }
            words.push(&text[i..i + c.len_utf8()]);
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push(&text[s..]);
    }
    words.into_iter()
}

fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Control and format characters (Unicode Cc and the common Cf), except tab and newlines.
fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    c.is_control()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_ascii() && is_unicode_punctuation(c))
}

/// The non-ASCII punctuation (Unicode P categories) of the blocks logs print.
fn is_unicode_punctuation(c: char) -> bool {
    matches!(c,
        '\u{a1}' | '\u{a7}' | '\u{ab}' | '\u{b6}' | '\u{b7}' | '\u{bb}' | '\u{bf}'
        | '\u{37e}' | '\u{387}'
        | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{2043}' | '\u{2045}'..='\u{2051}'
        | '\u{2053}'..='\u{205e}'
        | '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3011}' | '\u{3014}'..='\u{301f}'
        | '\u{ff01}'..='\u{ff03}' | '\u{ff05}'..='\u{ff0a}' | '\u{ff0c}'..='\u{ff0f}'
        | '\u{ff1a}' | '\u{ff1b}' | '\u{ff1f}' | '\u{ff20}' | '\u{ff3b}'..='\u{ff3d}'
        | '\u{ff3f}' | '\u{ff5b}' | '\u{ff5d}' | '\u{ff5f}'..='\u{ff65}')
}

/// The CJK ideograph blocks BERT spaces out.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}' | '\u{20000}'..='\u{2a6df}'
        | '\u{2a700}'..='\u{2b73f}' | '\u{2b740}'..='\u{2b81f}' | '\u{2b820}'..='\u{2ceaf}'
        | '\u{f900}'..='\u{faff}' | '\u{2f800}'..='\u{2fa1f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_lowercases_strips_accents_and_spaces_out_cjk() {
        assert_eq!(normalise("Héllo\tWÖRLD\u{200b}"), "hello world");
        assert_eq!(normalise("a中b"), "a 中 b");
        assert_eq!(normalise("x\u{0}y\u{fffd}z"), "xyz");
    }

    #[test]
    fn pre_tokenise_splits_white_space_and_isolates_each_punctuation_character() {
        let words: Vec<&str> = pre_tokenise("fatal: too-many  clients…(db=orders)").collect();
        assert_eq!(
            words,
            [
                "fatal", ":", "too", "-", "many", "clients", "…", "(", "db", "=", "orders", ")"
            ]
        );
    }
}
