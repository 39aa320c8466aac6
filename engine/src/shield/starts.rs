//! Where matches can start. One multi-pattern automaton run over a whole log line keeps many
//! partial matches alive at every byte (every word could begin an e-mail address, a key name,
//! a card number) and builds its states as it meets new text, which made it the Shield's cost.
//! Instead, each detector says where its matches can start ([`Start`]): after a literal, at a
//! key before `=`, at a word shaped like a number or an address. One pass over the bytes (word
//! tables, marks, colon runs) and a search for two literals find those positions, and only
//! there is the detector's own pattern tried, anchored. Within the limits each rule documents
//! (how far back an address or a key is looked for, how long an IPv6 run is tried at every
//! position), every position a pattern can match at passes its test, so the findings are those
//! of the single automaton; `tests.rs` compares the two on the corpora and generated text.

use super::detectors::{Alphabet, Builtin, Shape, Start, aws_secret_word};

/// How far back from `@` an address's local part is looked for: four times what RFC 5321
/// allows (64 octets). Every word boundary in it is a candidate.
const LOCAL_PART: usize = 256;

/// The longest run of hexadecimal digits and colons whose every position is tried as an IPv6
/// address's start: an address with a zone-less port is at most 45 bytes.
const MAX_IPV6_RUN: usize = 64;

/// A candidate: a byte offset and the index of the detector to try there.
pub(crate) type Candidate = (usize, usize);

/// A literal a detector's matches begin with or around, and what it stands for.
#[derive(Debug, Clone, Copy)]
struct Literal {
    /// Lower case; compared ASCII case-insensitively (the pattern decides case).
    bytes: &'static [u8],
    /// Its first three bytes (its last three for key words), packed: compared first.
    tag: u32,
    detector: usize,
    start: Start,
}

/// A literal found wherever it is, by its least common byte.
#[derive(Debug)]
struct Anywhere {
    literal: &'static [u8],
    /// The literal's least common byte (by `memchr`'s ranking of byte frequencies), and where.
    rare: u8,
    rare_at: usize,
    detector: usize,
    /// The class of the run the pattern reads through.
    class: u16,
}

/// Literals by their first byte (lower case), or by their last for key words.
type Table = Vec<Vec<Literal>>;

#[derive(Debug)]
pub(crate) struct Starts {
    /// Literals that begin with a word character, tried at word starts.
    words: Table,
    /// Literals that begin with punctuation (`://`, `@`, `--`), tried where that byte is.
    marks: Table,
    /// Key words, tried at word ends followed by a value's lead-in, by their last byte.
    keys: Table,
    /// Literals found wherever they are (`eyJ` of a JWT glued to what precedes it).
    anywhere: Vec<Anywhere>,
    /// Detectors by shape, in priority order.
    shapes: Vec<(Shape, usize)>,
    /// The first two bytes of the word literals: most words are passed over on them.
    pairs: Pairs,
}

/// A set of byte pairs (ASCII case-insensitive: every case of a pair is in it), one bit each.
#[derive(Debug)]
struct Pairs(Vec<u64>);

impl Pairs {
    fn new() -> Pairs {
        Pairs(vec![0; 65_536 / 64])
    }

    fn index(a: u8, b: u8) -> usize {
        usize::from(a) << 8 | usize::from(b)
    }

    fn insert(&mut self, a: u8, b: u8) {
        for a in [a.to_ascii_lowercase(), a.to_ascii_uppercase()] {
            for b in [b.to_ascii_lowercase(), b.to_ascii_uppercase()] {
                let i = Pairs::index(a, b);
                self.0[i / 64] |= 1 << (i % 64);
            }
        }
    }

    /// Whether the two bytes at `at` are in the set.
    fn begins(&self, bytes: &[u8], at: usize) -> bool {
        match bytes.get(at..at + 2) {
            Some(&[a, b]) => {
                let i = Pairs::index(a, b);
                self.0[i / 64] & 1 << (i % 64) != 0
            }
            _ => false,
        }
    }
}

/// Byte classes, one bit each.
const WORD: u16 = 1; // [A-Za-z0-9_]: a regex word character
const HEX: u16 = 2; // [0-9A-Fa-f]
const DIGIT: u16 = 4; // [0-9]
const KEY: u16 = 8; // [A-Za-z0-9_.-]: a key name's characters
const MAILBOX: u16 = 16; // [A-Za-z0-9._%+-]: an address's local part
const SCHEME: u16 = 32; // [A-Za-z0-9+.-]
const IPV6: u16 = 64; // [0-9A-Fa-f:]
const MARK: u16 = 128; // a byte some literal begins with that is not a word character
const BLANK: u16 = 256; // [ \t]
const JOINS: u16 = 512; // [A-Za-z0-9/+=._-]: a base64 word's bytes, and what joins its parts
const BASE64: u16 = 1024; // [A-Za-z0-9+/]
const BASE64URL: u16 = 2048; // [A-Za-z0-9_-]

const CLASSES: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut class = 0;
        if c.is_ascii_alphanumeric() || c == b'_' {
            class |= WORD | KEY;
        }
        if c.is_ascii_hexdigit() {
            class |= HEX | IPV6;
        }
        if c.is_ascii_digit() {
            class |= DIGIT;
        }
        if c == b'.' || c == b'-' {
            class |= KEY;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-') {
            class |= MAILBOX;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-') {
            class |= SCHEME;
        }
        if c == b':' {
            class |= IPV6;
        }
        if matches!(c, b'-' | b':' | b'@' | b'%' | b'/') {
            class |= MARK;
        }
        if c == b' ' || c == b'\t' {
            class |= BLANK;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'/' | b'+' | b'=' | b'.' | b'_' | b'-') {
            class |= JOINS;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'/' | b'+') {
            class |= BASE64;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-') {
            class |= BASE64URL;
        }
        table[i] = class;
        i += 1;
    }
    table
};

fn is(bytes: &[u8], at: usize, class: u16) -> bool {
    bytes
        .get(at)
        .is_some_and(|&b| CLASSES[usize::from(b)] & class != 0)
}

/// A regex word boundary (`\b`, ASCII) at `at`.
fn boundary(bytes: &[u8], at: usize) -> bool {
    let before = at > 0 && is(bytes, at - 1, WORD);
    before != is(bytes, at, WORD)
}

/// The start of the run of `class` bytes that ends at `end` (at most `limit` long).
fn run_back(bytes: &[u8], end: usize, class: u16, limit: usize) -> usize {
    let floor = end.saturating_sub(limit);
    let mut at = end;
    while at > floor && is(bytes, at - 1, class) {
        at -= 1;
    }
    at
}

/// How many bytes of `class` follow `at` (at most `limit`).
fn run_len(bytes: &[u8], at: usize, class: u16, limit: usize) -> usize {
    let rest = bytes.get(at..).unwrap_or_default();
    let rest = &rest[..rest.len().min(limit)];
    rest.iter()
        .position(|&b| CLASSES[usize::from(b)] & class == 0)
        .unwrap_or(rest.len())
}

fn lower(literal: &'static str) -> &'static [u8] {
    // Literals are written as the patterns spell them; the table holds them lower-cased.
    let owned: Vec<u8> = literal.bytes().map(|b| b.to_ascii_lowercase()).collect();
    Box::leak(owned.into_boxed_slice())
}

/// Three bytes from `at`, lower-cased and packed (`None` past the end).
fn tag(bytes: &[u8], at: usize) -> Option<u32> {
    let three = bytes.get(at..at.checked_add(3)?)?;
    Some(
        three
            .iter()
            .fold(0, |tag, b| tag << 8 | u32::from(b.to_ascii_lowercase())),
    )
}

fn ends_with_ignore_case(bytes: &[u8], end: usize, word: &[u8]) -> bool {
    end >= word.len() && bytes[end - word.len()..end].eq_ignore_ascii_case(word)
}

fn starts_with_ignore_case(bytes: &[u8], at: usize, word: &[u8]) -> bool {
    bytes
        .get(at..at + word.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(word))
}

/// Whether what follows a key word at `end` introduces its value, as the structured-secret
/// pattern needs: `\`? a quote? then blanks and `=`/`:`, or blanks and a quote.
fn lead_in(bytes: &[u8], mut end: usize) -> bool {
    // Nearly every word is followed by a blank and another word, or by punctuation that
    // leads nowhere: decided on the first bytes.
    match bytes.get(end) {
        Some(b'=' | b':' | b'"' | b'\'' | b'\\') => {}
        Some(b' ' | b'\t') => {
            if !matches!(
                bytes.get(end + 1),
                Some(b'=' | b':' | b'"' | b'\'' | b'\\' | b' ' | b'\t')
            ) {
                return false;
            }
        }
        _ => return false,
    }
    if bytes.get(end) == Some(&b'\\') {
        end += 1;
    }
    if matches!(bytes.get(end), Some(b'"' | b'\'')) {
        end += 1;
    }
    let blanks = run_len(bytes, end, BLANK, usize::MAX);
    match bytes.get(end + blanks) {
        Some(b'=' | b':') => true,
        Some(b'"' | b'\'' | b'\\') => blanks > 0,
        _ => false,
    }
}

impl Starts {
    pub(crate) fn new(builtins: &[Builtin]) -> Starts {
        let mut words: Table = vec![Vec::new(); 256];
        let mut marks: Table = vec![Vec::new(); 256];
        let mut keys: Table = vec![Vec::new(); 256];
        let mut shapes = Vec::new();
        let mut anywhere = Vec::new();
        let mut pairs = Pairs::new();
        for (detector, builtin) in builtins.iter().enumerate() {
            let literals: &[&str] = match builtin.start {
                Start::At(literals) | Start::Blank(literals) | Start::Key(literals) => literals,
                Start::Scheme => &["://"],
                Start::Mailbox => &["@", "%40"],
                Start::Dsn => &["@tcp(", "@unix(", "@udp("],
                Start::Shape(shape) => {
                    shapes.push((shape, detector));
                    &[]
                }
                Start::Anywhere(literals, alphabet) => {
                    let class = match alphabet {
                        Alphabet::Base64 => BASE64,
                        Alphabet::Base64Url => BASE64URL,
                    };
                    for literal in literals {
                        let literal = literal.as_bytes();
                        let rare_at = memchr::arch::all::packedpair::Pair::new(literal)
                            .map_or(0, |pair| usize::from(pair.index1()));
                        anywhere.push(Anywhere {
                            literal,
                            rare: literal[rare_at],
                            rare_at,
                            detector,
                            class,
                        });
                    }
                    &[]
                }
            };
            for literal in literals {
                let bytes = lower(literal);
                let key = matches!(builtin.start, Start::Key(_));
                let word = CLASSES[usize::from(bytes[0])] & WORD != 0;
                let tag = tag(
                    bytes,
                    if key {
                        bytes.len().saturating_sub(3)
                    } else {
                        0
                    },
                );
                assert!(
                    tag.is_some() || !(key || word),
                    "literal `{literal}` is shorter than its tag"
                );
                let entry = Literal {
                    bytes,
                    tag: tag.unwrap_or_default(),
                    detector,
                    start: builtin.start,
                };
                let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
                    continue;
                };
                if key {
                    keys[usize::from(last)].push(entry);
                } else if word {
                    pairs.insert(bytes[0], bytes[1]);
                    words[usize::from(first)].push(entry);
                } else {
                    debug_assert!(CLASSES[usize::from(first)] & MARK != 0, "{literal}");
                    marks[usize::from(first)].push(entry);
                }
            }
        }
        Starts {
            words,
            marks,
            keys,
            anywhere,
            shapes,
            pairs,
        }
    }

    /// Every candidate in `text` but those of the literals found anywhere ([`Starts::anywhere`]),
    /// appended to `out` (unsorted), from one pass over its bytes; and the bare AWS secret keys
    /// (byte ranges, in order) in `secrets`.
    pub(crate) fn collect(
        &self,
        text: &str,
        out: &mut Vec<Candidate>,
        secrets: &mut Vec<(usize, usize)>,
    ) {
        let bytes = text.as_bytes();
        let mut colons_done = 0;
        // How far the address and DSN runs given a candidate go (see `at_literal`).
        let mut reach = Reach::default();
        // Where the current run of bytes that join a word began.
        let mut run = 0;
        let mut at = 0;
        while at < bytes.len() {
            let b = bytes[at];
            let class = CLASSES[usize::from(b)];
            if class & WORD != 0 {
                let end = at + 1 + word_len(&bytes[at + 1..]);
                self.word_start(bytes, at, end, class, out);
                self.word_end(bytes, end, out);
                at = end;
                continue;
            }
            if class & JOINS == 0 {
                if at >= run + 40 {
                    secret_run(bytes, run, at, secrets);
                }
                run = at + 1;
            }
            if class & MARK != 0 {
                let second = bytes.get(at + 1).map(u8::to_ascii_lowercase);
                for literal in &self.marks[usize::from(b)] {
                    let next = literal.bytes.get(1).copied();
                    if (next.is_none() || next == second)
                        && starts_with_ignore_case(bytes, at, literal.bytes)
                    {
                        at_literal(bytes, at, *literal, out, &mut reach);
                    }
                }
                if b == b':' && at >= colons_done && !self.shapes.is_empty() {
                    colons_done = self.colon_run(bytes, at, out);
                }
            }
            at += 1;
        }
        secret_run(bytes, run, bytes.len(), secrets);
    }

    /// The candidates of the literals found anywhere (`eyJ`, base64 PEM) in `text`, appended
    /// to `out` literal by literal. No run they stand for crosses a newline, so a block of
    /// lines searched at once gives each line the candidates a search of it alone would.
    pub(crate) fn anywhere(&self, text: &[u8], out: &mut Vec<Candidate>) {
        for literal in &self.anywhere {
            // Later occurrences in the same run share the first one's fate: only it is tried.
            let mut run_end = 0;
            for rare in memchr::memchr_iter(literal.rare, text) {
                let Some(at) = rare.checked_sub(literal.rare_at) else {
                    continue;
                };
                if at >= run_end && text[at..].starts_with(literal.literal) {
                    out.push((at, literal.detector));
                    run_end = at + run_len(text, at, literal.class, usize::MAX).max(1);
                }
            }
        }
    }

    /// The word `at..end` may begin a literal or a shape.
    fn word_start(
        &self,
        bytes: &[u8],
        at: usize,
        end: usize,
        class: u16,
        out: &mut Vec<Candidate>,
    ) {
        if self.pairs.begins(bytes, at) {
            let head = tag(bytes, at);
            for literal in &self.words[usize::from(bytes[at].to_ascii_lowercase())] {
                if head == Some(literal.tag) && starts_with_ignore_case(bytes, at, literal.bytes) {
                    at_literal(bytes, at, *literal, out, &mut Reach::default());
                }
            }
        }
        if class & HEX != 0 && !self.shapes.is_empty() && may_begin_shape(bytes, at, end) {
            self.shapes_at(bytes, at, end, out);
        }
    }

    /// A key word ends at `end` if a value's lead-in follows.
    fn word_end(&self, bytes: &[u8], end: usize, out: &mut Vec<Candidate>) {
        // Most words end in a byte no key word ends in (a digit, most letters): decided before
        // what follows them is read.
        let keys = &self.keys[usize::from(bytes[end - 1].to_ascii_lowercase())];
        if keys.is_empty() || !lead_in(bytes, end) {
            return;
        }
        let tail = end.checked_sub(3).and_then(|at| tag(bytes, at));
        for literal in keys {
            if tail == Some(literal.tag) && ends_with_ignore_case(bytes, end, literal.bytes) {
                at_literal(
                    bytes,
                    end - literal.bytes.len(),
                    *literal,
                    out,
                    &mut Reach::default(),
                );
            }
        }
    }

    fn push_shape(&self, shape: Shape, at: usize, out: &mut Vec<Candidate>) {
        for &(s, detector) in &self.shapes {
            if s == shape {
                out.push((at, detector));
            }
        }
    }

    /// The shapes that can start with the word `at..end`. A shape's first group is a whole
    /// word of a length it allows, followed by its separator; a card may also be one long run
    /// of digits.
    fn shapes_at(&self, bytes: &[u8], at: usize, end: usize, out: &mut Vec<Candidate>) {
        let len = end - at;
        let byte = |i: usize| bytes.get(at + i).copied();
        let card = || {
            // 13 to 19 digits in at most 22 bytes of digits, blanks and dashes.
            matches!(bytes[at], b'2'..=b'6')
                && bytes[at..]
                    .iter()
                    .take(22)
                    .take_while(|&&b| b.is_ascii_digit() || b == b' ' || b == b'-')
                    .filter(|b| b.is_ascii_digit())
                    .count()
                    >= 13
        };
        // After a group of four, eight or twelve digits and its separator, a card goes on with
        // digits: a group of four (six for American Express), or after twelve its last one to
        // seven. Dates (`2026-11-25`) stop here.
        let grouped = || {
            let digits = if len == 12 { 1 } else { 4 };
            bytes
                .get(end + 1..end + 1 + digits)
                .is_some_and(|group| group.iter().all(u8::is_ascii_digit))
        };
        match bytes.get(end) {
            Some(b'-') => {
                if len == 8
                    && byte(13) == Some(b'-')
                    && byte(18) == Some(b'-')
                    && byte(23) == Some(b'-')
                {
                    self.push_shape(Shape::Uuid, at, out);
                }
                if len == 2 && byte(5) == Some(b'-') && byte(14) == Some(b'-') {
                    self.push_shape(Shape::Mac, at, out);
                }
                if matches!(len, 4 | 8 | 12) && grouped() && card() {
                    self.push_shape(Shape::Card, at, out);
                }
            }
            Some(b':') if len <= 2 => {
                let colons = bytes[at..].iter().take(17).filter(|&&b| b == b':').count();
                if colons >= 5 {
                    self.push_shape(Shape::Mac, at, out);
                }
            }
            Some(b'.') => {
                if len <= 3 && next_is_dotted_quad(bytes, at) {
                    self.push_shape(Shape::Ipv4, at, out);
                }
                if len == 4 && byte(9) == Some(b'.') {
                    self.push_shape(Shape::DottedMac, at, out);
                }
            }
            Some(b' ') if matches!(len, 4 | 8 | 12) && grouped() && card() => {
                self.push_shape(Shape::Card, at, out)
            }
            _ => {}
        }
        if len >= 13 && card() {
            self.push_shape(Shape::Card, at, out);
        }
    }

    /// The run of hexadecimal digits and colons around the colon at `colon`, if it holds
    /// `::` or six colons (IPv6 candidates). Returns where the run ends.
    fn colon_run(&self, bytes: &[u8], colon: usize, out: &mut Vec<Candidate>) -> usize {
        let start = run_back(bytes, colon, IPV6, usize::MAX);
        // One pass to the run's end: its colons, and whether two are adjacent.
        let (mut colons, mut double, mut after_colon) = (0, false, false);
        let mut end = start;
        while let Some(&b) = bytes.get(end)
            && CLASSES[usize::from(b)] & IPV6 != 0
        {
            let colon = b == b':';
            double |= colon && after_colon;
            colons += usize::from(colon);
            after_colon = colon;
            end += 1;
        }
        let run = &bytes[start..end];
        if double || colons >= 6 {
            // Trimmed or rejected at its start (`:::1`, a port glued on), an address may still
            // begin further in: every position of a run as long as an address can be, only
            // the start of a longer one (a run of colons is not tried byte by byte).
            let tried = if run.len() <= MAX_IPV6_RUN {
                run.len()
            } else {
                1
            };
            for at in start..start + tried {
                self.push_shape(Shape::Ipv6, at, out);
            }
        }
        end
    }
}

/// Where the match of a shape detector's pattern that starts at `at` ends, read directly for
/// the shapes whose pattern is a fixed series of maximal runs (the commonest values of a log:
/// IPv4 addresses and UUIDs), instead of running the automaton: `Some(None)` when the pattern
/// does not match there, `None` for the other shapes (their automaton decides). It agrees with
/// the pattern at every position (`tests.rs` checks both on generated text).
pub(crate) fn direct_match(shape: Shape, bytes: &[u8], at: usize) -> Option<Option<usize>> {
    // `\b` before the first group: a word character that no word character precedes.
    let starts_word = is(bytes, at, WORD) && !(at > 0 && is(bytes, at - 1, WORD));
    // `\b` after the last group, which ends a maximal run of the group's class.
    let ends_word = |end: usize| !is(bytes, end, WORD);
    // Groups of one to `most` `class` bytes (each run maximal) joined by `separator`: where
    // the last ends. A run cut short by the class cannot be extended or shortened into a
    // match: the next byte is the separator or it is not.
    let groups = |count: usize, separator: u8, class: u16, most: usize| {
        let mut end = at;
        for group in 0..count {
            let from = end;
            while end - from <= most
                && let Some(&b) = bytes.get(end)
                && CLASSES[usize::from(b)] & class != 0
            {
                end += 1;
            }
            if end == from || end - from > most {
                return None;
            }
            if group + 1 < count {
                if bytes.get(end) != Some(&separator) {
                    return None;
                }
                end += 1;
            }
        }
        Some(end)
    };
    let end = match shape {
        // `\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b`
        Shape::Ipv4 => groups(4, b'.', DIGIT, 3),
        // `\b[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+\b`
        Shape::Uuid => groups(5, b'-', HEX, usize::MAX - 1),
        Shape::Mac | Shape::DottedMac | Shape::Ipv6 | Shape::Card => return None,
    };
    Some(end.filter(|&end| starts_word && ends_word(end)))
}

/// Whether the word `at..end` may begin a shape: the first tests of [`Starts::shapes_at`]
/// (the byte after the word, the word's length), which most words fail.
fn may_begin_shape(bytes: &[u8], at: usize, end: usize) -> bool {
    let len = end - at;
    len >= 13
        || match bytes.get(end) {
            Some(b'-' | b'.') => true,
            Some(b':') => len <= 2,
            Some(b' ') => matches!(len, 4 | 8 | 12),
            _ => false,
        }
}

/// How many word characters (`[A-Za-z0-9_]`) `bytes` begins with. Words are most of a log's
/// bytes, so they are taken eight at a time: a byte below 0x80 is in `lo..=hi` when adding
/// `0x80 - lo` sets its top bit and adding `0x7f - hi` does not, and no sum carries into the
/// next byte.
fn word_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let within = |x: u64, lo: u8, hi: u8| {
        (x + ONES * u64::from(0x80 - lo)) & !(x + ONES * u64::from(0x7f - hi)) & TOPS
    };
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let c = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let ascii = !c & TOPS;
        let x = c & !TOPS;
        let underscore = {
            let eq = x ^ (ONES * u64::from(b'_'));
            !((eq | TOPS) - ONES) & TOPS & !eq
        };
        let word =
            (within(x, b'0', b'9') | within(x, b'A', b'Z') | within(x, b'a', b'z') | underscore)
                & ascii;
        if word != TOPS {
            return at + ((!word & TOPS).trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| CLASSES[usize::from(b)] & WORD == 0)
        .unwrap_or(bytes.len() - at)
}

/// A bare AWS secret key if the run of joining bytes `start..end` is one.
#[cold]
fn secret_run(bytes: &[u8], start: usize, end: usize, secrets: &mut Vec<(usize, usize)>) {
    if end >= start + 40
        && let Some(len) = aws_secret_word(&bytes[start..end])
    {
        secrets.push((start, start + len));
    }
}

/// Whether four dotted groups of one to three digits start at `at`.
fn next_is_dotted_quad(bytes: &[u8], mut at: usize) -> bool {
    for group in 0..4 {
        let len = run_len(bytes, at, DIGIT, 4);
        if !(1..=3).contains(&len) {
            return false;
        }
        at += len;
        if group < 3 {
            if bytes.get(at) != Some(&b'.') {
                return false;
            }
            at += 1;
        }
    }
    true
}

/// The candidates a literal found at `start` stands for.
/// How far the runs already given a candidate go, for the literals found by the marks pass
/// (`@`, `%40`, `@tcp(`): a later literal inside them adds nothing.
#[derive(Debug, Default)]
struct Reach {
    /// The end of the last address run given its candidate.
    mailbox: usize,
    /// The last DSN literal whose window was taken.
    dsn: usize,
}

/// `reach`: how far the address and DSN runs already given a candidate go (later literals
/// inside them add nothing).
fn at_literal(
    bytes: &[u8],
    start: usize,
    literal: Literal,
    out: &mut Vec<Candidate>,
    reach: &mut Reach,
) {
    let detector = literal.detector;
    match literal.start {
        Start::At(_) => out.push((start, detector)),
        Start::Blank(_) => {
            if start == 0 || bytes[start - 1] == b'\n' {
                out.push((start, detector));
            } else if matches!(bytes[start - 1], b' ' | b'\t') {
                out.push((start - 1, detector));
            }
        }
        Start::Key(_) => {
            // The key's first word start (whatever its length), and each in its last 64
            // bytes, the part that decides (`secret_key_kind`): a start between the two reads
            // the same key words as the first.
            let near = run_back(bytes, start, KEY, 64);
            let first = run_back(bytes, near, KEY, usize::MAX);
            let key_start = |at: usize| is(bytes, at, WORD) && boundary(bytes, at);
            if let Some(at) = (first..near).find(|&at| key_start(at)) {
                out.push((at, detector));
            }
            for at in near..=start {
                if key_start(at) {
                    out.push((at, detector));
                }
            }
        }
        Start::Scheme => {
            let from = run_back(bytes, start, SCHEME, 64);
            if let Some(first) = (from..start).find(|&at| bytes[at].is_ascii_alphabetic()) {
                out.push((first, detector));
            }
        }
        Start::Mailbox => {
            // From the run's first boundary every `@` or `%40` in it is tried (the pattern
            // backs off to each): later boundaries and later `%40`s share its fate.
            if start < reach.mailbox {
                return;
            }
            let from = run_back(bytes, start, MAILBOX, LOCAL_PART);
            // Only a candidate covers the literals after it, and only a `%40`'s: the run goes
            // on through it, while an `@` ends the local part, so a `%40` after it begins an
            // address of its own (`_@A%40example.com`, `@A%40example.com`).
            if let Some(at) = (from..start).find(|&at| boundary(bytes, at)) {
                out.push((at, detector));
                if bytes[start] != b'@' {
                    reach.mailbox = start + 1 + run_len(bytes, start + 1, MAILBOX, usize::MAX);
                }
            }
        }
        Start::Dsn => {
            let from = {
                let floor = start.saturating_sub(256);
                let mut at = start;
                while at > floor && !matches!(bytes[at - 1], b' ' | b'\t' | b'\n' | b'"' | b'\'') {
                    at -= 1;
                }
                at
            }
            .max(reach.dsn);
            reach.dsn = start;
            for at in from..start {
                if is(bytes, at, KEY) && boundary(bytes, at) {
                    out.push((at, detector));
                }
            }
        }
        Start::Shape(_) | Start::Anywhere(..) => {}
    }
}
