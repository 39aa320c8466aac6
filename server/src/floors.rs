//! The floor check: every `crate::…` or `super::…` path in `server/src` points to the same floor
//! or one below (base < services < executors < edge), the services import one another without
//! a circle, and no executor imports another executor (they share only `executors` itself).
//! It reads the source as text, so it runs with the unit tests and fails the build's CI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The floors, bottom up.
const FLOORS: [&str; 4] = ["base", "services", "executors", "edge"];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| *f == module)
}

/// One reference from a file to a module of the crate: the module path it starts from and
/// the first two segments of what it names (`["services", "approvals"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    target: Vec<String>,
}

/// The module path of a file under `src`: `services/ingest/streams.rs` → `services::ingest::streams`.
fn module_of(relative: &str) -> Vec<String> {
    let trimmed = relative.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_owned).collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The text with comments and string/char literals blanked (newlines kept, so line numbers
/// stay right).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            rest[..end].chars().for_each(|c| blank(&mut out, c));
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            rest[..end].chars().for_each(|c| blank(&mut out, c));
            i += end;
        } else if let Some(len) = raw_string_len(rest) {
            rest[..len].chars().for_each(|c| blank(&mut out, c));
            i += len;
        } else if rest.starts_with('"') {
            let mut end = 1;
            let b = rest.as_bytes();
            while end < b.len() && b[end] != b'"' {
                end += if b[end] == b'\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(rest.len());
            rest[..end].chars().for_each(|c| blank(&mut out, c));
            i += end;
        } else if let Some(len) = char_literal_len(rest) {
            rest[..len].chars().for_each(|c| blank(&mut out, c));
            i += len;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"…"`, `r#"…"#`, `br"…"` at the start of `rest`: its length.
fn raw_string_len(rest: &str) -> Option<usize> {
    let after_b = rest.strip_prefix('b').unwrap_or(rest);
    let after_r = after_b.strip_prefix('r')?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    let body = after_r[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = body.find(&close)?;
    Some(rest.len() - body.len() + end + close.len())
}

/// `'x'`, `'\n'`, `'\u{1F600}'` (not a lifetime) at the start of `rest`: its length.
fn char_literal_len(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix('\'')?;
    let mut chars = body.char_indices();
    let (_, first) = chars.next()?;
    let close = if first == '\\' {
        body[1..].find('\'')? + 1
    } else {
        let (at, next) = chars.next()?;
        if next != '\'' {
            return None;
        }
        at
    };
    Some(close + 2)
}

/// Every crate path in `code`, resolved from `module`: `crate::a::b`, `super::x`, and each
/// branch of `crate::{a::x, b}`.
fn references(module: &[String], code: &str) -> Vec<Reference> {
    let tokens = tokenize(code);
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (word, line) = (&tokens[i].0, tokens[i].1);
        let preceded_by_path = i > 0 && tokens[i - 1].0 == "::";
        if preceded_by_path || (word != "crate" && word != "super") {
            i += 1;
            continue;
        }
        let mut base: Vec<String> = if word == "crate" {
            Vec::new()
        } else {
            module.to_vec()
        };
        let mut j = i;
        // super::super::…
        if word == "super" {
            base.pop();
            while j + 2 < tokens.len() && tokens[j + 1].0 == "::" && tokens[j + 2].0 == "super" {
                base.pop();
                j += 2;
            }
        }
        j += 1;
        let mut paths = Vec::new();
        use_tree(&tokens, &mut j, base, &mut paths);
        for target in paths {
            if !target.is_empty() {
                found.push(Reference { line, target });
            }
        }
        i = j.max(i + 1);
    }
    found
}

/// Reads `::a::b`, `::{…}` after a path prefix; collects every full path it names.
fn use_tree(
    tokens: &[(String, usize)],
    j: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let mut path = prefix;
    while *j + 1 < tokens.len() && tokens[*j].0 == "::" {
        let next = &tokens[*j + 1].0;
        if next == "{" {
            *j += 2;
            loop {
                if *j >= tokens.len() {
                    return;
                }
                match tokens[*j].0.as_str() {
                    "}" => {
                        *j += 1;
                        return;
                    }
                    "," => *j += 1,
                    "self" => {
                        out.push(path.clone());
                        *j += 1;
                    }
                    word if is_ident(word) => {
                        let mut branch = path.clone();
                        branch.push(word.to_owned());
                        *j += 1;
                        let before = out.len();
                        use_tree(tokens, j, branch.clone(), out);
                        if out.len() == before {
                            out.push(branch);
                        }
                    }
                    _ => *j += 1,
                }
            }
        }
        if !is_ident(next) {
            break;
        }
        path.push(next.clone());
        *j += 2;
    }
    out.push(path);
}

fn is_ident(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation, each with its line.
fn tokenize(code: &str) -> Vec<(String, usize)> {
    let mut tokens = Vec::new();
    for (n, text) in code.lines().enumerate() {
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c.is_alphanumeric() || c == '_' {
                let mut end = at + c.len_utf8();
                while let Some(&(k, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        end = k + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push((text[at..end].to_owned(), n + 1));
            } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
                chars.next();
                tokens.push(("::".to_owned(), n + 1));
            } else if !c.is_whitespace() {
                tokens.push((c.to_string(), n + 1));
            }
        }
    }
    tokens
}

/// What is wrong with the floors of `files` (path under `src` → text), one line each.
pub(crate) fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // `floor::name` for every module one level inside a floor (not items like `Executor`).
    let rooms: BTreeSet<(String, String)> = files
        .keys()
        .map(|path| module_of(path))
        .filter(|m| m.len() >= 2)
        .map(|m| (m[0].clone(), m[1].clone()))
        .collect();
    for (path, text) in files {
        let module = module_of(path);
        let Some(from) = module.first().and_then(|m| floor_of(m)) else {
            continue;
        };
        for reference in references(&module, &code_only(text)) {
            let Some(to) = floor_of(&reference.target[0]) else {
                continue;
            };
            let named = reference.target.join("::");
            if to > from {
                wrong.push(format!(
                    "{path}:{}: `{}` (floor {}) imports `{named}` from the floor above, {}",
                    reference.line,
                    module.join("::"),
                    FLOORS[from],
                    FLOORS[to]
                ));
            }
            let (Some(own), Some(other)) = (module.get(1), reference.target.get(1)) else {
                continue;
            };
            let room = (FLOORS[to].to_owned(), other.clone());
            if from == to && own != other && rooms.contains(&room) {
                if FLOORS[from] == "services" {
                    services
                        .entry(own.clone())
                        .or_default()
                        .insert(other.clone());
                }
                if FLOORS[from] == "executors" {
                    wrong.push(format!(
                        "{path}:{}: executor `{own}` imports executor `{other}`; share through `executors` itself",
                        reference.line
                    ));
                }
            }
        }
    }
    if let Some(circle) = find_circle(&services) {
        wrong.push(format!(
            "services import one another in a circle: {}",
            circle.join(" → ")
        ));
    }
    wrong
}

/// A circle in `graph`, as the names along it (first name repeated at the end).
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Every `.rs` file under `dir`, keyed by its path relative to `root`.
fn read_tree(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            read_tree(root, &path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            files.insert(relative, std::fs::read_to_string(&path)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect()
    }

    #[test]
    fn server_src_imports_only_downward() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        read_tree(&root, &root, &mut files).expect("server/src is readable");
        assert!(files.len() > 40, "read {} files", files.len());
        let wrong = violations(&files);
        assert!(wrong.is_empty(), "floor violations:\n{}", wrong.join("\n"));
    }

    /// One Shield: the server compiles the detectors only where the configuration is read —
    /// once for the running server (`edge/state.rs`, shared by ingest, analysis, executors,
    /// knowledge and notifications) and once for `awoooi redact` (`edge/commands.rs`).
    #[test]
    fn the_shield_is_built_only_from_the_configuration() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        read_tree(&root, &root, &mut files).expect("server/src is readable");
        let builders: Vec<&str> = files
            .iter()
            .filter(|(path, _)| path.as_str() != "floors.rs")
            .filter(|(_, text)| {
                let code = code_only(text);
                code.contains("Shield::new(") || code.contains("Shield::builtin(")
            })
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(builders, ["edge/commands.rs", "edge/state.rs"]);
    }

    #[test]
    fn an_upward_import_is_reported_with_its_line() {
        let files = tree(&[(
            "base/bus.rs",
            "use std::sync::Arc;\nuse crate::services::ingest::Ingest;\n",
        )]);
        assert_eq!(
            violations(&files),
            vec![
                "base/bus.rs:2: `base::bus` (floor base) imports `services::ingest::Ingest` from the floor above, services"
            ]
        );
    }

    #[test]
    fn grouped_super_and_inline_paths_are_all_read() {
        let files = tree(&[
            (
                "services/notify.rs",
                "use crate::{base::db, edge::http::AppState};",
            ),
            (
                "services/notify/slack.rs",
                "fn f() { super::super::super::edge::x(); }",
            ),
            (
                "base/audit.rs",
                "fn f() { let _ = crate::executors::shell::run; }",
            ),
        ]);
        let wrong = violations(&files);
        assert_eq!(wrong.len(), 3, "{wrong:#?}");
        assert!(wrong[0].starts_with("base/audit.rs:1:"), "{wrong:#?}");
        assert!(wrong[1].contains("`edge::http::AppState`"), "{wrong:#?}");
        assert!(wrong[2].contains("`edge::x`"), "{wrong:#?}");
    }

    #[test]
    fn comments_and_strings_are_not_imports() {
        let files = tree(&[(
            "base/db.rs",
            "//! See [`crate::edge::http`].\nconst A: &str = \"crate::edge::x\";\nconst B: &str = r#\"crate::edge::y\"#;\nconst C: char = '\"'; // crate::edge\n",
        )]);
        assert_eq!(violations(&files), Vec::<String>::new());
    }

    #[test]
    fn a_circle_between_services_is_reported() {
        let files = tree(&[
            (
                "services/approvals.rs",
                "use crate::services::notify::Payload;",
            ),
            ("services/notify.rs", "use crate::services::finops::Saving;"),
            (
                "services/finops.rs",
                "use crate::services::approvals::Approvals;",
            ),
            (
                "services/ingest.rs",
                "use crate::services::notify::Payload;",
            ),
            (
                "services/mod.rs",
                "pub use crate::services::ingest::Ingest;",
            ),
        ]);
        assert_eq!(
            violations(&files),
            vec![
                "services import one another in a circle: approvals → notify → finops → approvals"
            ]
        );
    }

    #[test]
    fn executors_share_only_through_their_floor() {
        let files = tree(&[
            (
                "executors/ansible.rs",
                "use crate::executors::shell::run;\nuse crate::executors::Executor;",
            ),
            ("executors/mod.rs", "pub mod ansible;"),
            ("executors/shell.rs", "pub fn run() {}"),
        ]);
        let wrong = violations(&files);
        assert_eq!(wrong.len(), 1, "{wrong:#?}");
        assert!(
            wrong[0].contains("executor `ansible` imports executor `shell`"),
            "{wrong:#?}"
        );
    }
}
