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
    /// Base64 of PEM: the header must say `PRIVATE KEY` (certificates are public).
    PemPrivateKey,
    /// A flag's value: its kind from the flag's last word (`--client-secret` → SECRET).
    FlagValue,
    /// At least this many bytes long (instead of a counted repetition, which multiplies the
    /// automaton's states).
    MinLen(usize),
}

/// Which part of a match is replaced by the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValuePart {
    Whole,
    /// `password = "hunter2"` → only `hunter2`.
    AfterAssignment,
    /// `scheme://user:secret@host` or `user:secret@tcp(` → only `secret` (up to the last `@`).
    UrlPassword,
    /// `Bearer abc…` → only the token.
    AfterScheme,
    /// ` -u user:secret` → what follows the first `:`.
    AfterColon,
    /// `login -u user -p secret` → what follows `-p` or `--password`.
    AfterPasswordFlag,
    /// `/services/T…/B…/secret` → after the last `/`.
    LastSegment,
    /// ` --password value` → what follows the first blank after the flag.
    AfterBlank,
    /// `… BY 'x'`, `community x`, `secret 5 x` → the last word, without its quotes.
    LastWord,
    /// `00-01-00-01-…-A0-36-9F-9E-4F-06` → the last six groups.
    LastSix,
}

/// Where a detector's matches can start: a cheap test that every start passes, so the
/// detector's automaton runs only at the few positions that do (see `starts.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// At one of these literals where it begins a word (found ASCII case-insensitively; the
    /// pattern decides case).
    At(&'static [&'static str]),
    /// At one of these literals wherever it is, in a word or not (exactly as written); only
    /// its first occurrence in a run of the given alphabet, whose pattern reads that run to
    /// its end whichever occurrence it starts at.
    Anywhere(&'static [&'static str], Alphabet),
    /// At the blank before one of these literals, or at the literal where it starts a line.
    Blank(&'static [&'static str]),
    /// A key name ending in one of these words and followed by what a value needs (`=`, `:`,
    /// a blank, a quote, `\`): at the key's first word start and at each in its last 64 bytes
    /// (`spring.datasource.password`).
    Key(&'static [&'static str]),
    /// At the first letter of the scheme before `://` (looked for up to 64 bytes back).
    Scheme,
    /// At each word boundary of the run of mailbox characters before `@` or `%40`.
    Mailbox,
    /// At each word boundary of the word before `@tcp(`, `@unix(`, `@udp(` (up to 256 bytes
    /// back).
    Dsn,
    /// Found by the pass over words and colons.
    Shape(Shape),
}

/// The bytes of a run a pattern reads through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alphabet {
    /// `[A-Za-z0-9+/]`
    Base64,
    /// `[A-Za-z0-9_-]`
    Base64Url,
}

/// The shapes the word pass looks for: what follows a word's first characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Eight hexadecimal digits and `-`, with dashes where a UUID has them.
    Uuid,
    /// One or two hexadecimal digits and `:`, or two and `-`, five times over.
    Mac,
    /// Four hexadecimal digits and `.`, three groups.
    DottedMac,
    /// A run of hexadecimal digits and colons holding `::` or six colons.
    Ipv6,
    /// Four dotted groups of one to three digits.
    Ipv4,
    /// At least 13 digits among digits, blanks and dashes.
    Card,
}

impl ValuePart {
    /// Whether a match of this part holds a user name before its value (`scheme://user:…@`,
    /// `-u user:…`, `login -u user -p …`).
    pub(crate) fn has_user(self) -> bool {
        matches!(
            self,
            ValuePart::UrlPassword | ValuePart::AfterColon | ValuePart::AfterPasswordFlag
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Builtin {
    pub kind: &'static str,
    pub pattern: &'static str,
    pub check: Check,
    pub value: ValuePart,
    pub start: Start,
}

const fn d(
    kind: &'static str,
    pattern: &'static str,
    check: Check,
    value: ValuePart,
    start: Start,
) -> Builtin {
    Builtin {
        kind,
        pattern,
        check,
        value,
        start,
    }
}

/// The words a secret's key name ends with (the structured-secret detector's alternatives).
const SECRET_KEY_WORDS: &[&str] = &[
    "pass",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "key",
    "sess",
    "session",
    "sessid",
    "sessionid",
    "sess_id",
    "sess-id",
    "session_id",
    "session-id",
    "sid",
    "sig",
    "signature",
    "code",
    "auth",
    "dockerconfigjson",
    "dockercfg",
];

/// In priority order: when two detectors match at the same position, the earlier one wins.
/// Specific shapes (JWT, vendor keys, assignments) come before generic ones (IP, card).
pub(crate) const BUILTINS: &[Builtin] = &[
    d(
        "JWT",
        r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
        Check::MinLen(24),
        ValuePart::Whole,
        Start::Anywhere(&["eyJ"], Alphabet::Base64Url),
    ),
    // Private keys: PEM on one line (escaped newlines), or base64 of PEM as Kubernetes
    // Secrets and kubeconfigs hold it (`tls.key:`, `client-key-data:`).
    d(
        "SECRET",
        r"-----BEGIN[A-Z ]*PRIVATE KEY-----[A-Za-z0-9+/=\\ \t]+(?:-----END[A-Z ]*PRIVATE KEY-----)?",
        Check::None,
        ValuePart::Whole,
        Start::At(&["-----BEGIN"]),
    ),
    d(
        "SECRET",
        r"LS0tLS1CRUdJTi[A-Za-z0-9+/]+={0,2}",
        Check::PemPrivateKey,
        ValuePart::Whole,
        Start::Anywhere(&["LS0tLS1CRUdJTi"], Alphabet::Base64),
    ),
    // `scheme://user:password@host`, also with an empty user (`redis://:password@host`).
    d(
        "PASSWORD",
        r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:[^\s/]+@",
        Check::None,
        ValuePart::UrlPassword,
        Start::Scheme,
    ),
    // Go's MySQL DSN: `user:password@tcp(host:3306)/db` (a password of at most 256 bytes:
    // bounded, so candidates in a long run each read a bounded stretch).
    d(
        "PASSWORD",
        r#"\b[A-Za-z0-9_.-]+:[^\s"']{1,256}@(?:tcp|unix|udp)\("#,
        Check::None,
        ValuePart::UrlPassword,
        Start::Dsn,
    ),
    // Structured secrets: `DB_PASSWORD=…`, `"clientSecret": "…"`, `x-api-key: …`,
    // `spring.datasource.password=…`, `sessionid=…`, `PASSWORD 'x'`, `?key=…`. One pattern for
    // every key that ends like a secret's name, up to its value's first character; the key
    // decides whether it is one, and which kind, and [`value_range`] reads the value on.
    d(
        "SECRET",
        r#"(?i)\b(?:[A-Za-z0-9_][A-Za-z0-9_.-]*)?(?:pass(?:word|wd|phrase)?|pwd|secret|token|key|sess(?:ion)?(?:[_-]?id)?|sid|sig(?:nature)?|code|auth|requirepass|masterauth|dockerconfigjson|dockercfg)\\?["']?(?:[ \t]*[=:][ \t]*[^\s,;]|[ \t]+\\?["'])"#,
        Check::SecretKey,
        ValuePart::AfterAssignment,
        Start::Key(SECRET_KEY_WORDS),
    ),
    d(
        "TOKEN",
        r"(?i)\b(?:bearer|apikey)\s+[A-Za-z0-9._~+/-]+=*",
        Check::MinLen(23),
        ValuePart::AfterScheme,
        Start::At(&["bearer", "apikey"]),
    ),
    d(
        "PASSWORD",
        r"(?i)\bbasic[ \t]+[A-Za-z0-9+/]{4,}={0,2}",
        Check::BasicCredential,
        ValuePart::AfterScheme,
        Start::At(&["basic"]),
    ),
    // Credentials on command lines: `curl -u user:password`, `docker login -u user -p password`.
    d(
        "PASSWORD",
        r#"(?:(?m:^)|[ \t])(?:-u|--user)[ \t=]+[^\s:'"/]+:[^\s'"]+"#,
        Check::None,
        ValuePart::AfterColon,
        Start::Blank(&["-u", "--user"]),
    ),
    d(
        "PASSWORD",
        r"\blogin[ \t]+(?:(?:-u|--username)[ \t=]+\S+[ \t]+)?(?:-p|--password)[ \t=]+\S+",
        Check::None,
        ValuePart::AfterPasswordFlag,
        Start::At(&["login"]),
    ),
    // `--password value`, `--client-secret value` (a blank instead of `=`).
    d(
        "PASSWORD",
        r"(?i)(?:(?m:^)|[ \t])--(?:[a-z0-9]+-)*(?:password|passwd|pass|secret|token|api-key)[ \t]+[^\s-]\S*",
        Check::FlagValue,
        ValuePart::AfterBlank,
        Start::Blank(&["--"]),
    ),
    // SQL: `IDENTIFIED BY 'x'`, `SET PASSWORD FOR u = 'x'`; SNMP communities and IOS secrets;
    // MySQL's `temporary password is generated for root@localhost: x`.
    d(
        "PASSWORD",
        r"(?i)\bidentified(?:[ \t]+with[ \t]+\S+)?[ \t]+by[ \t]+'[^'\n]+'|\bset[ \t]+password\b[^=\n]{0,256}=[ \t]*'[^'\n]+'|\bsnmp(?:-server)?[ \t]+community[ \t]+[^\s;]+|\b(?:secret|password)[ \t]+[05789][ \t]+\S+|\bpassword is generated for \S+:[ \t]+\S+",
        Check::None,
        ValuePart::LastWord,
        Start::At(&["identified", "set", "snmp", "secret", "password"]),
    ),
    // Loose shape, length checked after the scan (see UUID below).
    d(
        "AWS_KEY",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]+\b",
        Check::Lengths(&[20]),
        ValuePart::Whole,
        Start::At(&["AKIA", "ASIA", "ABIA", "ACCA"]),
    ),
    // Vendor tokens by their documented prefixes (each at least 24 long).
    d(
        "TOKEN",
        r"\b(?:gh[pousr]_|github_pat_|gl(?:pat|ptt|dt|rt|cbt|oas|soat|ffct|imt)-|npm_|pypi-AgE|AIza|ya29\.|hf_|SG\.|shp(?:at|ca|pa|ss)_|dop_v1_|xapp-)[A-Za-z0-9_.-]+",
        Check::MinLen(24),
        ValuePart::Whole,
        Start::At(&[
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "github_pat_",
            "glpat-",
            "glptt-",
            "gldt-",
            "glrt-",
            "glcbt-",
            "gloas-",
            "glsoat-",
            "glffct-",
            "glimt-",
            "npm_",
            "pypi-AgE",
            "AIza",
            "ya29.",
            "hf_",
            "SG.",
            "shpat_",
            "shpca_",
            "shppa_",
            "shpss_",
            "dop_v1_",
            "xapp-",
        ]),
    ),
    d(
        "TOKEN",
        r"\b(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE|AQoDYXdzE)[A-Za-z0-9/+=]+",
        Check::None,
        ValuePart::Whole,
        Start::At(&["IQoJb3JpZ2luX2Vj", "FwoGZXIvYXdzE", "AQoDYXdzE"]),
    ),
    d(
        "TOKEN",
        r"\bxox[abposr]-[A-Za-z0-9-]+\b",
        Check::MinLen(15),
        ValuePart::Whole,
        Start::At(&["xox"]),
    ),
    d(
        "TOKEN",
        r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]+\b",
        Check::MinLen(24),
        ValuePart::Whole,
        Start::At(&["sk_", "pk_", "rk_"]),
    ),
    d(
        "TOKEN",
        r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]+",
        Check::MinLen(23),
        ValuePart::Whole,
        Start::At(&["sk-"]),
    ),
    // Slack incoming webhooks: `/services/T…/B…/<secret>`.
    d(
        "SECRET",
        r"/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}",
        Check::None,
        ValuePart::LastSegment,
        Start::At(&["/services/T"]),
    ),
    // Also URL-encoded (`alice%40example.com` in query strings).
    d(
        "EMAIL",
        r"\b[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        Check::None,
        ValuePart::Whole,
        Start::Mailbox,
    ),
    // Loose shapes with their lengths checked after the scan: counted repetitions multiply the
    // automaton's states (and the time to build them) far more than they narrow the search.
    d(
        "UUID",
        r"\b[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9A-Fa-f]+\b",
        Check::Lengths(&[8, 4, 4, 4, 12]),
        ValuePart::Whole,
        Start::Shape(Shape::Uuid),
    ),
    // MACs: `00:1a:…`, Net-SNMP's `0:1a:…`, Windows' `00-1A-…` (of a longer dashed run, such
    // as a DHCPv6 DUID, the last six groups: the MAC it ends with), Cisco's `aabb.ccdd.eeff`.
    d(
        "MAC",
        r"\b[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2}){5}\b|\b[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5,}\b",
        Check::None,
        ValuePart::LastSix,
        Start::Shape(Shape::Mac),
    ),
    d(
        "MAC",
        r"\b[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\b",
        Check::None,
        ValuePart::Whole,
        Start::Shape(Shape::DottedMac),
    ),
    // IPv6: a loose candidate (compressed with `::`, or all eight groups) that must parse;
    // [`ipv6_within`] trims what surrounds it (`host:fe80::2`, `2001:db8::1: refused`). An
    // address is at most 45 bytes: the tail is read no further, so a long run of `::.` does
    // not make every candidate in it read to its end.
    d(
        "IP",
        r"[0-9A-Fa-f:]*::[0-9A-Fa-f:.]{0,45}|(?:[0-9A-Fa-f]+:){6}[0-9A-Fa-f.:]{1,45}",
        Check::Ipv6,
        ValuePart::Whole,
        Start::Shape(Shape::Ipv6),
    ),
    d(
        "IP",
        r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b",
        Check::Ipv4,
        ValuePart::Whole,
        Start::Shape(Shape::Ipv4),
    ),
    // American Express (4-6-5) and Diners Club (4-6-4) grouping.
    d(
        "CREDIT_CARD",
        r"\b3[0-9]{3}[ -][0-9]{6}[ -][0-9]{4,5}\b",
        Check::Luhn,
        ValuePart::Whole,
        Start::Shape(Shape::Card),
    ),
    // Visa, Mastercard (51-55, 2221-2720), Amex, Diners, JCB, Discover (6011, 644-649, 65),
    // UnionPay (62): 13-19 digits, grouped by four or not; Luhn decides.
    d(
        "CREDIT_CARD",
        r"\b(?:4[0-9]{3}|5[1-5][0-9]{2}|2[2-7][0-9]{2}|3[0-9]{3}|6(?:011|4[4-9][0-9]|5[0-9]{2}|2[0-9]{2}))(?:[ -]?[0-9]{4}){2}[ -]?[0-9]{1,7}\b",
        Check::Luhn,
        ValuePart::Whole,
        Start::Shape(Shape::Card),
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
    let parses = |end: usize| {
        text.get(start..end)
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
    };
    if !parses(end) {
        // Java's `host/2001:db8::1:443`: the last group is a port.
        end = start + text[start..end].rfind(':')?;
        if !parses(end) {
            return None;
        }
    }
    (!inside_path(text, start, end)).then_some((start, end))
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
    let mut parts = candidate.as_bytes().split(|&b| b == b'-');
    lengths
        .iter()
        .all(|&n| parts.next().is_some_and(|p| p.len() == n))
        && parts.next().is_none()
}

/// Whether `candidate` is four dotted numbers of at most 255.
pub(crate) fn octets(candidate: &str) -> bool {
    candidate.as_bytes().split(|&b| b == b'.').all(|part| {
        // One to three digits (the pattern's shape) of at most 255.
        (1..=3).contains(&part.len())
            && part.iter().all(u8::is_ascii_digit)
            && part.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0')) <= 255
    })
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
        let head = text[..start]
            .trim_end_matches(['=', ':', ' ', '"', '\''])
            .as_bytes();
        let len = head
            .iter()
            .rev()
            .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
            .count();
        let word = &head[head.len() - len..];
        let is = |name: &str| word.eq_ignore_ascii_case(name.as_bytes());
        is("v")
            || is("ver")
            || (len >= 7 && word[len - 7..].eq_ignore_ascii_case(b"version"))
            || ["firmware", "fw", "build", "release", "revision"]
                .iter()
                .any(|name| is(name))
    };
    // A product token's version, as user agents print them: `Chrome/120.0.0.0` (a capitalised
    // word after a blank, not a path's `/tmp/10.0.0.7` nor a host's `api.example.com/…`).
    let product = text[..start].strip_suffix('/').is_some_and(|h| {
        let word = h
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .next()
            .unwrap_or_default();
        let before = h[..h.len() - word.len()].chars().next_back();
        word.starts_with(|c: char| c.is_ascii_uppercase())
            && before.is_none_or(|c| matches!(c, ' ' | '\t' | '(' | ';' | ',' | '"'))
    });
    before || after || suffix || named || product
}

/// Whether a value only stands for one: `None`, `null`, `true`, `[hidden]`, `(sensitive
/// value)`, `<redacted>`, `${VAR}`, `{{ .Values.x }}`, `****`, `xxxx`.
fn placeholder(value: &str) -> bool {
    const WORDS: &[&str] = &[
        "none",
        "yes",
        "no",
        "null",
        "nil",
        "true",
        "false",
        "undefined",
        "empty",
        "hidden",
        "redacted",
        "masked",
        "sensitive",
        "omitted",
        "removed",
        "filtered",
        "n/a",
    ];
    // Marked as hidden (`HIDDEN_DUE_TO_SECURITY_REASONS`, `<REDACTED>`), a digest of the
    // secret rather than the secret (Vault's audit log: `hmac-sha256:…`), or a number
    // (ZooKeeper's `sessionid:0x100007d2c28d30`).
    let marked = ["hidden", "redacted", "masked"].iter().any(|w| {
        value
            .as_bytes()
            .windows(w.len())
            .any(|win| win.eq_ignore_ascii_case(w.as_bytes()))
    });
    let digest = value.starts_with("hmac-");
    // Up to 64 bits: a number; longer, it may be a key (`0x4c0883a6…` 32 bytes).
    let number = value
        .strip_prefix("0x")
        .is_some_and(|h| (1..=16).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()));
    // `[hidden]`, `(sensitive value)`, `<redacted>`: a placeholder word in brackets, not any
    // value that starts with one (`(Xk9#mQ2z`).
    let inner = value
        .trim_start_matches(['[', '(', '<', '{'])
        .trim_end_matches([']', ')', '>', '}']);
    let bracketed = inner.len() < value.len()
        && (inner.is_empty() || WORDS.iter().any(|w| w.eq_ignore_ascii_case(inner)));
    let template = value.starts_with("{{") || value.starts_with("${") || value.starts_with("$(");
    let masked = value
        .bytes()
        .all(|b| matches!(b, b'*' | b'x' | b'X' | b'#' | b'.'));
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(value))
        || marked
        || digest
        || number
        || template
        || (value.len() <= 64 && (bracketed || masked))
}

/// The kind of secret a structured key names, if it names one: the last word of the key
/// (snake, kebab, dotted or camel case) decides — `DB_PASSWORD`, `PGPASSWORD`, `clientSecret`,
/// `x-api-key`, `aws_secret_access_key`, `csrftoken`, `JSESSIONID`. Keys that only end like
/// one (`bypass`, `monkey`, `partitionKey`, `AWS_ACCESS_KEY_ID`, `PublicKeyToken`) name
/// nothing secret, and the shell's `PWD` holds a directory. In a query string (`query`), `key`,
/// `sig` and an OAuth `code` are secrets too. Placeholders (`None`, `true`, `[hidden]`,
/// `(sensitive value)`, `${DB_PASSWORD}`, `****`) are not values. A value after blanks only
/// (`spaced`: `PASSWORD 'x'`, `X-Api-Key "x"`) counts for passwords and compound keys, not
/// for a lone `secret "db-creds"` (Kubernetes names a Secret so).
pub(crate) fn secret_key_kind(
    key: &str,
    value: &str,
    query: bool,
    spaced: bool,
) -> Option<&'static str> {
    if placeholder(value) {
        return None;
    }
    // The words of the key's last 64 bytes (what decides), lower-cased on the stack: this runs
    // for every candidate, so it allocates nothing.
    let key = key.as_bytes();
    let key = &key[key.len().saturating_sub(64)..];
    let mut lower = [0u8; 64];
    let mut bounds = [(0usize, 0usize); 16];
    let (mut count, mut start, mut prev_lower) = (0usize, None::<usize>, false);
    for (i, &c) in key.iter().enumerate() {
        lower[i] = c.to_ascii_lowercase();
        let split = !c.is_ascii_alphanumeric() || (c.is_ascii_uppercase() && prev_lower);
        if split && let Some(s) = start.take() {
            bounds[count % 16] = (s, i);
            count += 1;
        }
        if c.is_ascii_alphanumeric() && start.is_none() {
            start = Some(i);
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    if let Some(s) = start {
        bounds[count % 16] = (s, key.len());
        count += 1;
    }
    let mut words = [""; 16];
    let kept = count.min(16);
    for (n, word) in words[..kept].iter_mut().enumerate() {
        let (s, e) = bounds[(count - kept + n) % 16];
        *word = std::str::from_utf8(&lower[s..e]).unwrap_or_default();
    }
    let words = &words[..kept];
    let kind = key_kind(words, value, query)?;
    // `secret "db-creds"` names a Kubernetes Secret; `secret "ewZ1aYo…=="` (ISC dhcpd, BIND)
    // is one.
    let name = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
    (!spaced || kind == "PASSWORD" || words.len() > 1 || !name).then_some(kind)
}

fn key_kind(words: &[&str], value: &str, query: bool) -> Option<&'static str> {
    let last = *words.last()?;
    let before = words.len().checked_sub(2).map(|i| words[i]);
    if words.contains(&"public") {
        return None;
    }
    if query && matches!(last, "key" | "sig" | "signature") {
        return Some("SECRET");
    }
    if query && last == "code" {
        return Some("TOKEN");
    }
    // Registry credentials (`.docker/config.json`): `"auth": base64(user:password)`.
    if last == "auth" && basic_credential(value) {
        return Some("PASSWORD");
    }
    let glued = |suffixes: &[&str]| suffixes.iter().any(|s| last.ends_with(s));
    // Kubernetes' registry Secret types; Redis' passwords.
    if glued(&["dockerconfigjson", "dockercfg"]) {
        return Some("SECRET");
    }
    if glued(&["password", "passwd", "passphrase"])
        || matches!(last, "pass" | "requirepass" | "masterauth")
    {
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

/// The bytes base64 `encoded` decodes to (up to its padding), or `None` if it is not base64.
fn base64_decode(encoded: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(encoded.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for c in encoded.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Whether `encoded` (after `Basic `) is base64 of printable `user:password`.
pub(crate) fn basic_credential(encoded: &str) -> bool {
    base64_decode(encoded).is_some_and(|plain| {
        plain.contains(&b':') && plain.iter().all(|b| (0x20..0x7f).contains(b) || *b >= 0x80)
    })
}

/// Whether `encoded` is base64 of a PEM private key (`-----BEGIN … PRIVATE KEY-----`).
pub(crate) fn pem_private_key(encoded: &str) -> bool {
    // Anywhere in the blob: `EC PARAMETERS` or a certificate may come first.
    let head = &encoded[..encoded.len().min(16 * 1024) / 4 * 4];
    base64_decode(head).is_some_and(|plain| plain.windows(16).any(|w| w == b"PRIVATE KEY-----"))
}

/// AWS secret access keys on their own (`aws configure` prompts, `sts … --output text`):
/// words of exactly 40 of base64's characters — not part of a longer base64 or base64url word
/// (a JWT's header can be 40 long) — with upper case, lower case and digits, not only
/// hexadecimal (a SHA-1 is not a secret). A counted repetition in the automaton would multiply
/// its states by 40, so the word pass (`starts.rs`) hands this every run of bytes that join a
/// word (`[A-Za-z0-9/+=._-]`) at least 40 long; it returns the key's length if the run is one.
pub(crate) fn aws_secret_word(run: &[u8]) -> Option<usize> {
    // A sentence's full stop (or a trailing `-`, `_`) is not part of the key.
    let mut end = run.len();
    while end > 0 && matches!(run[end - 1], b'.' | b'-' | b'_') {
        end -= 1;
    }
    let word = &run[..end];
    let has = |f: fn(&u8) -> bool| word.iter().any(f);
    (word.len() == 40
        && word
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
        && has(u8::is_ascii_uppercase)
        && has(u8::is_ascii_lowercase)
        && has(u8::is_ascii_digit)
        && !word.iter().all(u8::is_ascii_hexdigit))
    .then_some(end)
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

/// The length of a quoted value up to its closing `quote` (JSON's `\"` escapes skipped), if
/// it closes on this line.
fn closing_quote(value: &str, quote: u8) -> Option<usize> {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\n' => return None,
            b if b == quote => return (i > 0).then_some(i),
            _ => i += 1,
        }
    }
    None
}

/// Where the key that starts `text` ends: its name is letters, digits, `_`, `.` and `-`.
pub(crate) fn key_end(text: &str) -> Option<usize> {
    text.bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
}

/// The most bytes of an unquoted value read past a match.
const MAX_VALUE: usize = 4096;

/// Where an unquoted value ends: before a closing bracket it did not open (`env=[KEY=value]`)
/// and before `..` (tcpdump -A prints a header's CR LF so: `X-Api-Key: k..Accept: */*`).
fn unquoted_end(value: &str) -> usize {
    let bytes = value.as_bytes();
    let mut end = bytes
        .windows(2)
        .position(|pair| pair == b"..")
        .unwrap_or(bytes.len());
    let opened = |c| bytes[..end].contains(&c);
    let (round, square, curly) = (opened(b'('), opened(b'['), opened(b'{'));
    while let Some(&last) = value.as_bytes()[..end].last() {
        let unopened = match last {
            b')' => !round,
            b']' => !square,
            b'}' => !curly,
            _ => false,
        };
        if !unopened {
            break;
        }
        end -= 1;
    }
    end
}

/// The byte range of the value inside a match `m` (relative to the match).
/// `rest` is the text from the match on: a value may go on past the match.
pub(crate) fn value_range(part: ValuePart, m: &str, rest: &str) -> Option<(usize, usize)> {
    let bytes = m.as_bytes();
    let skip = |mut at: usize, set: &[u8]| {
        while at < bytes.len() && set.contains(&bytes[at]) {
            at += 1;
        }
        at
    };
    let range = match part {
        ValuePart::Whole => (0, m.len()),
        ValuePart::AfterAssignment => {
            // key, its closing quote, `=`/`:` (or only blanks before a quoted value); then the
            // value, read on past the match: quoted to its closing quote, else to a blank.
            let bytes = rest.as_bytes();
            let key_end = key_end(rest)?;
            let mut at = skip(skip(key_end, b"\\\"'"), b" \t");
            if matches!(bytes.get(at), Some(b'=' | b':')) {
                at = skip(at + 1, b" \t");
            }
            // Rust's `Debug` of an `Option<String>`: `Some("…")`; a JSON array of one string
            // (Go's `http.Header`: `"X-Api-Key":["…"]`).
            if rest[at..].starts_with("Some(\"") {
                at += 5;
            } else if rest[at..].starts_with("[\"") {
                at += 1;
            }
            // JSON inside a JSON string: `\"adminPassword\":\"…\"`.
            if rest[at..].starts_with("\\\"") {
                let start = at + 2;
                let len = rest[start..].find("\\\"").unwrap_or(0);
                if len > 0 {
                    return Some((start, start + len));
                }
            }
            let quoted = match bytes.get(at) {
                Some(&quote @ (b'"' | b'\'')) => {
                    closing_quote(&rest[at + 1..], quote).map(|len| (at + 1, at + 1 + len))
                }
                _ => None,
            };
            quoted.unwrap_or_else(|| {
                let start = skip(at, b"\"'");
                let word = |from: usize| {
                    let tail = &rest.as_bytes()[from..];
                    // At most MAX_VALUE bytes are read, so a line of rejected candidates
                    // (`key=key=key=…`) stays linear; a longer value's tail is scanned on.
                    let mut limit = tail.len().min(MAX_VALUE);
                    // … and a cut there must not fall inside a character.
                    while limit < tail.len() && !rest.is_char_boundary(from + limit) {
                        limit -= 1;
                    }
                    tail[..limit]
                        .iter()
                        .position(|&c| {
                            c.is_ascii_whitespace()
                                || matches!(c, b'"' | b'\'' | b',' | b';' | b'\\')
                        })
                        .unwrap_or(limit)
                };
                let mut len = word(start);
                // `token=Bearer abc…`: the scheme and its credential.
                let scheme = ["bearer", "basic", "token", "apikey"]
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(&rest[start..start + len]));
                if scheme && rest.as_bytes().get(start + len) == Some(&b' ') {
                    len += 1 + word(start + len + 1);
                }
                (start, start + unquoted_end(&rest[start..start + len]))
            })
        }
        ValuePart::UrlPassword => {
            let userinfo_start = m.find("://").map_or(0, |i| i + 3);
            let colon = userinfo_start + m[userinfo_start..].find(':')?;
            (colon + 1, m.rfind('@')?)
        }
        ValuePart::AfterScheme => {
            let space = m.find([' ', '\t'])?;
            let start = skip(space, b" \t\"'");
            (start, start + unquoted_end(&m[start..]))
        }
        ValuePart::AfterColon => (m.find(':')? + 1, m.len()),
        ValuePart::AfterPasswordFlag => {
            let flag = [" -p", "\t-p", "--password"]
                .iter()
                .filter_map(|f| m.find(f).map(|i| i + f.len()))
                .min()?;
            let at = if m[flag..].starts_with("assword") {
                flag + 7
            } else {
                flag
            };
            (skip(at, b" \t="), m.len())
        }
        ValuePart::LastSegment => (m.rfind('/')? + 1, m.len()),
        ValuePart::AfterBlank => {
            let flag = skip(0, b" \t");
            let blank = flag + m[flag..].find([' ', '\t'])?;
            let at = skip(blank, b" \t");
            match bytes.get(at) {
                // `--password "correct horse"`: to the closing quote.
                Some(&quote @ (b'"' | b'\'')) => {
                    let len = closing_quote(&rest[at + 1..], quote)?;
                    (at + 1, at + 1 + len)
                }
                _ => (at, m.len()),
            }
        }
        ValuePart::LastWord => match m.strip_suffix('\'') {
            // `IDENTIFIED BY 'correct horse battery'`: the whole quoted phrase.
            Some(inner) => (inner.rfind('\'')? + 1, inner.len()),
            None => (m.rfind([' ', '\t'])? + 1, m.len()),
        },
        ValuePart::LastSix => {
            let start = m
                .match_indices(['-', ':'])
                .rev()
                .nth(5)
                .map_or(0, |(i, _)| i + 1);
            (start, m.len())
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
        let pick = |part, m: &str| value_range(part, m, m).map(|(s, e)| m[s..e].to_owned());
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
