//! The built-in detectors: what a value looks like, and which part of a match is the value.

/// How a candidate match is confirmed beyond its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    None,
    /// Card numbers: 13–19 digits passing the Luhn checksum.
    Luhn,
    /// IPv6 candidates must parse as an address, and not be a path's `::` (`Result::unwrap`).
    Ipv6,
    /// IPv4 candidates must not be four parts of a longer dotted number (a version, an OID) nor
    /// a version's value.
    Ipv4,
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
    d(
        "PASSWORD",
        r#"(?i)\b(?:[A-Za-z0-9]+[_-])*(?:password|passwd|pwd|pass)["']?\s*[=:]\s*["']?[^\s"'&,;]+"#,
        Check::None,
        ValuePart::AfterAssignment,
    ),
    d(
        "SECRET",
        r#"(?i)\b(?:aws[_-]?)?secret[_-]?access[_-]?key["']?\s*[=:]\s*["']?[A-Za-z0-9/+=]{40}"#,
        Check::None,
        ValuePart::AfterAssignment,
    ),
    d(
        "SECRET",
        r#"(?i)\b(?:[A-Za-z0-9]+[_-])*(?:api[_-]?key|apikey|secret|secret[_-]?key|client[_-]?secret|private[_-]?key)["']?\s*[=:]\s*["']?[^\s"'&,;]+"#,
        Check::None,
        ValuePart::AfterAssignment,
    ),
    d(
        "TOKEN",
        r#"(?i)\b(?:[A-Za-z0-9]+[_-])*(?:token|access[_-]?token|auth[_-]?token|refresh[_-]?token|session[_-]?id)["']?\s*[=:]\s*["']?[^\s"'&,;]+"#,
        Check::None,
        ValuePart::AfterAssignment,
    ),
    d(
        "TOKEN",
        r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*",
        Check::None,
        ValuePart::AfterScheme,
    ),
    d(
        "AWS_KEY",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        Check::None,
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
    d(
        "UUID",
        r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b",
        Check::None,
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
    d(
        "IP",
        r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){6}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:(?:[0-9A-Fa-f]{1,4}:){0,5}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?",
        Check::Ipv6,
        ValuePart::Whole,
    ),
    d(
        "IP",
        r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b",
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
            trim_quotes(sep + 1)
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
