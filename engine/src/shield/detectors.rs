//! The built-in detectors: what a value looks like, and which part of a match is the value.

/// How a candidate match is confirmed beyond its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    None,
    /// Card numbers: 13–19 digits passing the Luhn checksum.
    Luhn,
    /// IPv6 candidates, trimmed of a leading `:` and trailing `:`/`.`, must parse as an
    /// address, and not be a path's `::` (`Result::unwrap`).
    Ipv6,
    /// The candidate's parts, split at `-`, have exactly these lengths.
    Lengths(&'static [usize]),
    /// IPv4 candidates: parts up to 255, and not four parts of a longer dotted number (a version, an OID) nor
    /// a version's value.
    Ipv4,
    /// `key = value` candidates: the key must name a secret ([`secret_key_kind`] decides, and
    /// gives the kind).
    SecretKey,
    /// `Basic …` candidates must decode (base64) to printable `user:password`.
    BasicCredential,
}

/// Which part of a match is replaced by the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValuePart {
    Whole,
    /// `password = "hunter2"` → only `hunter2`.
    AfterAssignment,
    /// `scheme://user:secret@host` → only `secret`.
    UrlPassword,
    /// `Bearer abc…` → only the token.
    AfterScheme,
}

#[derive(Debug, Clone)]
pub(crate) struct Builtin {
    pub kind: &'static str,
    pub pattern: &'static str,
    pub check: Check,
    pub value: ValuePart,
}

const fn d(kind: &'static str, pattern: &'static str, check: Check, value: ValuePart) -> Builtin {
    Builtin {
        kind,
        pattern,
        check,
        value,
    }
}

/// In priority order: when two detectors match at the same position, the earlier one wins.
/// Specific shapes (JWT, vendor keys, assignments) come before generic ones (IP, card).
pub(crate) const BUILTINS: &[Builtin] = &[
    d(
        "JWT",
        r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        Check::None,
        ValuePart::Whole,
    ),
    d(
        "PASSWORD",
        r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@",
        Check::None,
        ValuePart::UrlPassword,
    ),
    // Structured secrets: `DB_PASSWORD=…`, `"clientSecret": "…"`, `x-api-key: …`,
    // `spring.datasource.password=…`, `sessionid=…`. One pattern for every key that ends like a
    // secret's name; the key decides whether it is one, and which kind.
    d(
        "SECRET",
        r#"(?i)\b(?:[A-Za-z0-9_][A-Za-z0-9_.-]*)?(?:pass(?:word|wd|phrase)?|pwd|secret|token|key|sess(?:ion)?(?:[_-]?id)?|sid)["']?[ \t]*[=:][ \t]*(?:"(?:[^"\\\n]|\\.)+"|'[^'\n]+'|["']?[^\s"'&,;]+)"#,
        Check::SecretKey,
        ValuePart::AfterAssignment,
    ),
    d(
        "TOKEN",
        r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*",
        Check::None,
        ValuePart::AfterScheme,
    ),
    d(
        "PASSWORD",
        r"(?i)\bbasic[ \t]+[A-Za-z0-9+/]{4,}={0,2}",
        Check::BasicCredential,
        ValuePart::AfterScheme,
    ),
    d(
        "AWS_KEY",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]+\b",
        Check::Lengths(&[20]),
        ValuePart::Whole,
    ),
    d(
        "TOKEN",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
        Check::None,
        ValuePart::Whole,
    ),
    d(
        "TOKEN",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
        Check::None,
        ValuePart::Whole,
    ),
    d(
        "TOKEN",
        r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
        Check::None,
        ValuePart::Whole,
    ),
    d(
        "TOKEN",
        r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",
        Check::None,
        ValuePart::Whole,
    ),
    d(
        "EMAIL",
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        Check::None,
        ValuePart::Whole,
    ),
    // Loose shapes with their lengths checked after the scan: counted repetitions multiply the
    // automaton's states (and the time to build them) far more than they narrow the search.
    d(
        "UUID",
        r"\b[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+\b",
        Check::Lengths(&[8, 4, 4, 4, 12]),
        ValuePart::Whole,
    ),
    d(
        "MAC",
        r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b",
        Check::None,
        ValuePart::Whole,
    ),
    // Cisco's dotted notation: `aabb.ccdd.eeff`.
    d(
        "MAC",
        r"\b[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\b",
        Check::None,
        ValuePart::Whole,
    ),
    // IPv6: a loose candidate (compressed with `::`, or all eight groups) that must parse;
    // [`ipv6_within`] trims what surrounds it (`host:fe80::2`, `2001:db8::1: refused`).
    d(
        "IP",
        r"[0-9A-Fa-f:]*::[0-9A-Fa-f:.]*|(?:[0-9A-Fa-f]+:){6}[0-9A-Fa-f.:]+",
        Check::Ipv6,
        ValuePart::Whole,
    ),
    d(
        "IP",
        r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b",
        Check::Ipv4,
        ValuePart::Whole,
    ),
    // American Express grouping: 4-6-5.
    d(
        "CREDIT_CARD",
        r"\b3[47][0-9]{2}[ -][0-9]{6}[ -][0-9]{5}\b",
        Check::Luhn,
        ValuePart::Whole,
    ),
    d(
        "CREDIT_CARD",
        r"\b(?:4[0-9]{3}|5[1-5][0-9]{2}|2[2-7][0-9]{2}|3[47][0-9]{2}|6(?:011|5[0-9]{2}))(?:[ -]?[0-9]{4}){2}[ -]?[0-9]{1,7}\b",
        Check::Luhn,
        ValuePart::Whole,
    ),
];

/// The address inside an IPv6 candidate `text[start..end]`: without a leading single `:`
/// (`host:fe80::2`) or trailing `:`/`.` (`2001:db8::1: refused`), if it parses and is not a
/// code path's `::`.
pub(crate) fn ipv6_within(text: &str, mut start: usize, mut end: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    if bytes[start] == b':' && bytes.get(start + 1) != Some(&b':') {
        start += 1;
    }
    while end > start + 2
        && matches!(bytes[end - 1], b':' | b'.')
        && !(bytes[end - 1] == b':' && bytes[end - 2] == b':')
    {
        end -= 1;
    }
    let ok = text.get(start..end)?.parse::<std::net::Ipv6Addr>().is_ok()
        && !inside_path(text, start, end);
    ok.then_some((start, end))
}

/// Whether `text[start..end]` (an IPv6 candidate) is a code path's separator rather than an
/// address: `::` alone, or continuing an identifier or a `::` path (`tower_http::trace`).
pub(crate) fn inside_path(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    let ident = |i: usize| {
        bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    let colon = |i: usize| bytes.get(i) == Some(&b':');
    let before =
        start > 0 && (ident(start - 1) || (start > 1 && colon(start - 1) && colon(start - 2)));
    let after = ident(end) || (colon(end) && colon(end + 1));
    &text[start..end] == "::" || before || after
}

/// Whether every part of `candidate` (split at `-`) has its length in `lengths`.
pub(crate) fn lengths_are(candidate: &str, lengths: &[usize]) -> bool {
    let mut parts = candidate.split('-');
    lengths
        .iter()
        .all(|&n| parts.next().is_some_and(|p| p.len() == n))
        && parts.next().is_none()
}

/// Whether `candidate` is four dotted numbers of at most 255.
pub(crate) fn octets(candidate: &str) -> bool {
    candidate.split('.').all(|p| p.parse::<u8>().is_ok())
}

/// Whether `text[start..end]` (four dotted numbers) belongs to something longer or is a
/// version: a digit part before or after it (`1.3.6.1.4.1`), a pre-release or build suffix
/// (`7.7.37.114-alpha.2`), or a value named a version (`Version=8.0.0.0`).
pub(crate) fn inside_dotted_number(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let before = start >= 2 && bytes[start - 1] == b'.' && digit_at(start - 2);
    let after = bytes.get(end) == Some(&b'.') && digit_at(end + 1);
    let suffix = matches!(bytes.get(end), Some(b'-' | b'+'))
        && bytes.get(end + 1).is_some_and(u8::is_ascii_alphabetic);
    let named = {
        let head = text[..start].trim_end_matches(['=', ':', ' ', '"', '\'']);
        let word: String = head
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
            .to_ascii_lowercase();
        word == "v" || word == "ver" || word.ends_with("version")
    };
    before || after || suffix || named
}

/// The kind of secret a structured key names, if it names one: the last word of the key
/// (snake, kebab, dotted or camel case) decides — `DB_PASSWORD`, `PGPASSWORD`, `clientSecret`,
/// `x-api-key`, `aws_secret_access_key`, `csrftoken`, `JSESSIONID`. Keys that only end like
/// one (`bypass`, `monkey`, `partitionKey`, `AWS_ACCESS_KEY_ID`) name nothing secret, and the
/// shell's `PWD` holds a directory.
pub(crate) fn secret_key_kind(key: &str, value: &str) -> Option<&'static str> {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    let last = words.last()?.as_str();
    let before = words.len().checked_sub(2).map(|i| words[i].as_str());
    let glued = |suffixes: &[&str]| suffixes.iter().any(|s| last.ends_with(s));
    if glued(&["password", "passwd", "passphrase"]) || last == "pass" {
        return Some("PASSWORD");
    }
    if last == "pwd" || last.ends_with("pwd") && last != "oldpwd" {
        let directory = value.starts_with(['/', '~']) && before.is_none();
        return (!directory && last != "oldpwd").then_some("PASSWORD");
    }
    if glued(&["secret"]) {
        return Some("SECRET");
    }
    if glued(&["token"]) {
        return Some("TOKEN");
    }
    const KEYS: &[&str] = &[
        "api",
        "private",
        "secret",
        "access",
        "signing",
        "encryption",
        "master",
        "client",
        "account",
        "subscription",
        "license",
        "auth",
        "app",
        "webhook",
        "hmac",
        "shared",
        "consumer",
        "storage",
        "service",
        "ssh",
        "sas",
    ];
    if last == "key" && before.is_some_and(|b| KEYS.contains(&b))
        || KEYS
            .iter()
            .any(|k| last.len() == k.len() + 3 && last.starts_with(k) && last.ends_with("key"))
    {
        return Some("SECRET");
    }
    let session = matches!(last, "session" | "sessionid" | "sessid" | "sid")
        || glued(&["sessionid", "sessid"])
        || last == "id" && before == Some("session");
    session.then_some("TOKEN")
}

/// Whether `encoded` (after `Basic `) is base64 of printable `user:password`.
pub(crate) fn basic_credential(encoded: &str) -> bool {
    let mut bits = 0u32;
    let mut count = 0;
    let mut colon = false;
    for c in encoded.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            let byte = (bits >> count) as u8;
            bits &= (1 << count) - 1;
            if !(0x20..0x7f).contains(&byte) && byte < 0x80 {
                return false;
            }
            colon |= byte == b':';
        }
    }
    colon
}

/// The Luhn checksum over the digits of `s` (separators ignored), for 13–19 digits.
pub(crate) fn luhn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The byte range of the value inside a match `m` (relative to the match).
pub(crate) fn value_range(part: ValuePart, m: &str) -> Option<(usize, usize)> {
    let trim_quotes = |start: usize| {
        let rest = &m[start..];
        let skip = rest.len() - rest.trim_start_matches(['"', '\'', ' ', '\t']).len();
        (start + skip, m.len())
    };
    let range = match part {
        ValuePart::Whole => (0, m.len()),
        ValuePart::AfterAssignment => {
            let sep = m.find(['=', ':'])?;
            let (start, end) = trim_quotes(sep + 1);
            // A quoted value ends before its closing quote.
            let opened = m[..start]
                .ends_with(['"', '\''])
                .then(|| m.as_bytes()[start - 1]);
            match opened {
                Some(quote) if end > start && m.as_bytes()[end - 1] == quote => (start, end - 1),
                _ => (start, end),
            }
        }
        ValuePart::UrlPassword => {
            let userinfo_start = m.find("://")? + 3;
            let colon = userinfo_start + m[userinfo_start..].find(':')?;
            (colon + 1, m.len() - 1)
        }
        ValuePart::AfterScheme => {
            let space = m.find([' ', '\t'])?;
            trim_quotes(space)
        }
    };
    (range.0 < range.1).then_some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_real_test_numbers_only() {
        for ok in [
            "4111 1111 1111 1111",
            "5555-5555-5555-4444",
            "378282246310005",
        ] {
            assert!(luhn_valid(ok), "{ok}");
        }
        for bad in ["4111 1111 1111 1112", "1234", "41111111111111111111"] {
            assert!(!luhn_valid(bad), "{bad}");
        }
    }

    #[test]
    fn value_ranges_pick_the_secret_part() {
        let pick = |part, m: &str| value_range(part, m).map(|(s, e)| m[s..e].to_owned());
        assert_eq!(
            pick(ValuePart::AfterAssignment, "password=\"hunter2").as_deref(),
            Some("hunter2")
        );
        assert_eq!(
            pick(ValuePart::AfterAssignment, "api_key: abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            pick(ValuePart::UrlPassword, "postgres://app:s3cr3t@").as_deref(),
            Some("s3cr3t")
        );
        assert_eq!(
            pick(ValuePart::AfterScheme, "Bearer abc.def").as_deref(),
            Some("abc.def")
        );
        assert_eq!(pick(ValuePart::AfterAssignment, "password="), None);
    }
}
