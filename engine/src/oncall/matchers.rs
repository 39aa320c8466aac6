//! Label matchers in Alertmanager's syntax: `{alertname="DiskFull", severity=~"crit.*",
//! env!="dev", team!~"db|infra"}` — braces optional, values double-quoted (with `\"`, `\\` and
//! `\n` escapes) or bare words. A regular expression matches the whole value (anchored), as
//! Alertmanager's do; a label an alert lacks has the empty value.

use std::collections::BTreeMap;
use std::fmt;

use regex_automata::meta::Regex;
use serde::{Deserialize, Serialize};

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One `name op "value"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("no matchers: give at least one, e.g. alertname=\"DiskFull\"")]
    Empty,
    #[error("matcher {index}: {reason}")]
    Bad { index: usize, reason: String },
}

/// Matchers that all must hold, with their regular expressions compiled.
#[derive(Clone)]
pub struct Matchers {
    list: Vec<Matcher>,
    compiled: Vec<Option<Regex>>,
}

impl fmt::Debug for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl PartialEq for Matchers {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}{}\"{}\"", m.name, m.op.as_str(), escape(&m.value))?;
        }
        f.write_str("}")
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The longest matcher list accepted, in bytes.
const MAX_TEXT: usize = 4096;

impl Matchers {
    /// Matchers from a list (each checked, regular expressions compiled).
    pub fn new(list: Vec<Matcher>) -> Result<Matchers, MatcherError> {
        if list.is_empty() {
            return Err(MatcherError::Empty);
        }
        let mut compiled = Vec::with_capacity(list.len());
        for (index, m) in list.iter().enumerate() {
            let bad = |reason: String| MatcherError::Bad {
                index: index + 1,
                reason,
            };
            if !valid_name(&m.name) {
                return Err(bad(format!(
                    "`{}` is not a label name (letters, digits and _, not starting with a digit)",
                    m.name
                )));
            }
            compiled.push(match m.op {
                MatchOp::Regex | MatchOp::NotRegex => {
                    Some(Regex::new(&format!("^(?:{})$", m.value)).map_err(|e| {
                        bad(format!("`{}` is not a regular expression: {e}", m.value))
                    })?)
                }
                _ => None,
            });
        }
        Ok(Matchers { list, compiled })
    }

    /// Parses Alertmanager's matcher syntax.
    pub fn parse(text: &str) -> Result<Matchers, MatcherError> {
        if text.len() > MAX_TEXT {
            return Err(MatcherError::Bad {
                index: 0,
                reason: format!("{} bytes; at most {MAX_TEXT}", text.len()),
            });
        }
        let mut rest = text.trim();
        if let Some(inner) = rest.strip_prefix('{') {
            rest = inner.strip_suffix('}').ok_or(MatcherError::Bad {
                index: 0,
                reason: "`{` without its closing `}`".into(),
            })?;
        }
        let mut list = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let index = list.len() + 1;
            let bad = |reason: String| MatcherError::Bad { index, reason };
            let name: String =
                std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_'))
                    .collect();
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let op = match (chars.next(), chars.peek().copied()) {
                (Some('='), Some('~')) => {
                    chars.next();
                    MatchOp::Regex
                }
                (Some('='), _) => MatchOp::Equal,
                (Some('!'), Some('=')) => {
                    chars.next();
                    MatchOp::NotEqual
                }
                (Some('!'), Some('~')) => {
                    chars.next();
                    MatchOp::NotRegex
                }
                (found, _) => {
                    return Err(bad(format!(
                        "expected one of = != =~ !~ after `{name}`, found {}",
                        found.map_or("the end".to_owned(), |c| format!("`{c}`"))
                    )));
                }
            };
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let value = if chars.next_if_eq(&'"').is_some() {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(bad("a quoted value without its closing `\"`".into())),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c @ ('"' | '\\')) => value.push(c),
                            // Regular expressions keep their own escapes (`\.`, `\d`).
                            Some(c) => {
                                value.push('\\');
                                value.push(c);
                            }
                            None => return Err(bad("a quoted value ends in `\\`".into())),
                        },
                        Some(c) => value.push(c),
                    }
                }
                value
            } else {
                std::iter::from_fn(|| chars.next_if(|c| *c != ',' && !c.is_whitespace())).collect()
            };
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if let Some(c) = chars.peek()
                && *c != ','
            {
                return Err(bad(format!("unexpected `{c}` after the value")));
            }
            list.push(Matcher { name, op, value });
        }
        Matchers::new(list)
    }

    pub fn list(&self) -> &[Matcher] {
        &self.list
    }

    /// Whether every matcher holds for `labels` (a missing label is the empty value).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.list.iter().zip(&self.compiled).all(|(m, re)| {
            let value = labels.get(&m.name).map(String::as_str).unwrap_or("");
            match (m.op, re) {
                (MatchOp::Equal, _) => value == m.value,
                (MatchOp::NotEqual, _) => value != m.value,
                (MatchOp::Regex, Some(re)) => re.is_match(value),
                (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
                _ => false,
            }
        })
    }

    /// Whether these match every alert there could be: no matcher needs a label to hold
    /// anything (each one holds for an alert with no labels at all), e.g. `{}`,
    /// `{alertname=~".*"}` or `{env!="prod"}`. Silencing everything takes an ADMIN.
    pub fn match_everything(&self) -> bool {
        self.matches(&BTreeMap::new())
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_parses_and_matches_as_alertmanager_does() {
        let m = Matchers::parse(
            r#"{alertname="DiskFull", severity=~"crit.*", env!="dev", team!~"db|infra"}"#,
        )
        .unwrap();
        assert_eq!(m.list().len(), 4);
        let firing = labels(&[
            ("alertname", "DiskFull"),
            ("severity", "critical"),
            ("env", "prod"),
            ("team", "web"),
        ]);
        assert!(m.matches(&firing));
        for (name, value) in [
            ("alertname", "DiskFul"),
            ("severity", "warning"),
            ("env", "dev"),
            ("team", "db"),
        ] {
            let mut other = firing.clone();
            other.insert(name.into(), value.into());
            assert!(!m.matches(&other), "{name}={value}");
        }
    }

    #[test]
    fn regular_expressions_match_the_whole_value() {
        let m = Matchers::parse(r#"instance=~"db-\d+""#).unwrap();
        assert!(m.matches(&labels(&[("instance", "db-12")])));
        assert!(!m.matches(&labels(&[("instance", "db-12.prod")])));
        assert!(!m.matches(&labels(&[("instance", "old-db-12")])));
    }

    #[test]
    fn a_missing_label_is_the_empty_value() {
        let m = Matchers::parse(r#"env!="prod""#).unwrap();
        assert!(m.matches(&labels(&[])));
        let m = Matchers::parse(r#"env="""#).unwrap();
        assert!(m.matches(&labels(&[("alertname", "X")])));
        assert!(!m.matches(&labels(&[("env", "prod")])));
    }

    #[test]
    fn bare_words_escapes_and_no_braces_parse() {
        let m = Matchers::parse(r#"alertname=DiskFull, msg="say \"hi\"\nbye""#).unwrap();
        assert_eq!(m.list()[0].value, "DiskFull");
        assert_eq!(m.list()[1].value, "say \"hi\"\nbye");
        assert_eq!(
            m.to_string(),
            r#"{alertname="DiskFull", msg="say \"hi\"\nbye"}"#
        );
        assert_eq!(Matchers::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn matchers_that_hold_for_any_alert_are_named() {
        for everything in [
            r#"alertname=~".*""#,
            r#"env!="prod""#,
            r#"x="""#,
            r#"team!~"db""#,
        ] {
            assert!(
                Matchers::parse(everything).unwrap().match_everything(),
                "{everything}"
            );
        }
        for narrow in [
            r#"alertname="DiskFull""#,
            r#"alertname=~".+""#,
            r#"env!="prod", service="api""#,
            r#"x!~"""#,
        ] {
            assert!(
                !Matchers::parse(narrow).unwrap().match_everything(),
                "{narrow}"
            );
        }
    }

    #[test]
    fn bad_input_names_the_matcher_and_what_is_wrong() {
        let cases = [
            ("", "no matchers"),
            ("{}", "no matchers"),
            (r#"{a="b""#, "closing `}`"),
            (
                r#"a~"b""#,
                "matcher 1: expected one of = != =~ !~ after `a`, found `~`",
            ),
            (r#"a="b", 1x="c""#, "matcher 2: `1x` is not a label name"),
            (r#"a=~"(""#, "matcher 1: `(` is not a regular expression"),
            (r#"a="b"#, "matcher 1: a quoted value without its closing"),
            (r#"a="b" c"#, "matcher 1: unexpected `c` after the value"),
        ];
        for (text, said) in cases {
            let error = Matchers::parse(text).unwrap_err().to_string();
            assert!(error.contains(said), "{text}: {error}");
        }
    }
}
