//! The authorisation walk: every root field of `Query`, `Mutation` and `Subscription` in the
//! schema, called as every role and anonymously, against the table in `AUTHORIZATION.md`.
//! A field the table does not list, a row for a field that is gone, or any cell that differs
//! fails the test (all differences are reported at once).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_graphql::parser::types::{
    BaseType, InputValueDefinition, ServiceDocument, Type, TypeKind, TypeSystemDefinition,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Backend, TestServer};
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(every_field_answers_every_role_as_the_table_says);

const CALLERS: [&str; 7] = [
    "anonymous",
    "VIEWER",
    "DEVOPS",
    "SRE",
    "CTO",
    "CISO",
    "ADMIN",
];

/// `Query.incidents` → the callers with a ✓.
fn table() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../AUTHORIZATION.md"))
        .unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 1 + CALLERS.len(), "row: {line}");
        let field = cells[0].trim_matches('`').to_owned();
        let allowed = CALLERS
            .iter()
            .zip(&cells[1..])
            .filter(|(_, cell)| match **cell {
                "✓" => true,
                "—" => false,
                other => panic!("cell `{other}` in {line}: use ✓ or —"),
            })
            .map(|(caller, _)| caller.to_string())
            .collect();
        assert!(
            rows.insert(field.clone(), allowed).is_none(),
            "{field} listed twice"
        );
    }
    rows
}

struct Schema {
    doc: ServiceDocument,
}

impl Schema {
    fn load() -> Schema {
        let sdl =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql"))
                .unwrap();
        Schema {
            doc: async_graphql::parser::parse_schema(&sdl).unwrap(),
        }
    }

    fn kind(&self, name: &str) -> Option<&TypeKind> {
        self.doc.definitions.iter().find_map(|d| match d {
            TypeSystemDefinition::Type(t) if t.node.name.node.as_str() == name => {
                Some(&t.node.kind)
            }
            _ => None,
        })
    }

    /// (root type, field, operation text) for every root field.
    fn operations(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for root in ["Query", "Mutation", "Subscription"] {
            let Some(TypeKind::Object(object)) = self.kind(root) else {
                panic!("no {root} type");
            };
            for field in &object.fields {
                let field = &field.node;
                let args: Vec<String> = field
                    .arguments
                    .iter()
                    .filter(|a| !a.node.ty.node.nullable && a.node.default_value.is_none())
                    .map(|a| format!("{}: {}", a.node.name.node, self.value(&a.node)))
                    .collect();
                let args = if args.is_empty() {
                    String::new()
                } else {
                    format!("({})", args.join(", "))
                };
                let selection = match self.kind(base_name(&field.ty.node)) {
                    Some(TypeKind::Object(_) | TypeKind::Interface(_) | TypeKind::Union(_)) => {
                        " { __typename }"
                    }
                    _ => "",
                };
                let keyword = root.to_lowercase();
                out.push((
                    root.to_owned(),
                    field.name.node.to_string(),
                    format!("{keyword} {{ {}{args}{selection} }}", field.name.node),
                ));
            }
        }
        out
    }

    /// A syntactically valid value for a required argument (ids that name nothing).
    fn value(&self, arg: &InputValueDefinition) -> String {
        self.value_of(&arg.ty.node)
    }

    fn value_of(&self, ty: &Type) -> String {
        if let BaseType::List(inner) = &ty.base {
            return format!("[{}]", self.value_of(inner));
        }
        match base_name(ty) {
            "ID" => "\"999999\"".into(),
            "String" => "\"x\"".into(),
            "Int" => "1".into(),
            "Float" => "1.0".into(),
            "Boolean" => "false".into(),
            "DateTime" => "\"2026-01-01T00:00:00Z\"".into(),
            "JSON" => "{}".into(),
            other => match self.kind(other) {
                Some(TypeKind::Enum(e)) => e.values[0].node.value.node.to_string(),
                Some(TypeKind::InputObject(input)) => {
                    let fields: Vec<String> = input
                        .fields
                        .iter()
                        .filter(|f| !f.node.ty.node.nullable && f.node.default_value.is_none())
                        .map(|f| format!("{}: {}", f.node.name.node, self.value(&f.node)))
                        .collect();
                    format!("{{ {} }}", fields.join(", "))
                }
                _ => panic!("no test value for type {other}"),
            },
        }
    }
}

fn base_name(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => base_name(inner),
    }
}

/// Refused means the guard answered: `FORBIDDEN`, or `UNAUTHENTICATED` asking to sign in
/// (a wrong password at `login` is the resolver answering, so it counts as reached).
fn refused(errors: &Value) -> bool {
    errors.as_array().into_iter().flatten().any(|e| {
        let code = e["extensions"]["code"].as_str().unwrap_or_default();
        let message = e["message"].as_str().unwrap_or_default();
        code == "FORBIDDEN" || (code == "UNAUTHENTICATED" && message.starts_with("sign in first"))
    })
}

/// Whether a subscription is refused: its first message is a guard error. A stream that
/// sends data, or stays open and silent (nothing happened yet), was let through.
async fn subscription_refused(server: &TestServer, token: Option<&str>, query: &str) -> bool {
    let mut ws = server.subscribe(token.unwrap_or(""), query).await;
    loop {
        let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(600), ws.next()).await
        else {
            return false;
        };
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        match value["type"].as_str() {
            Some("next") => return refused(&value["payload"]["errors"]),
            Some("error") => return refused(&value["payload"]),
            Some("complete") => return false,
            _ => {}
        }
    }
}

async fn every_field_answers_every_role_as_the_table_says(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tokens: BTreeMap<&str, Option<String>> = BTreeMap::new();
    tokens.insert("anonymous", None);
    for role in &CALLERS[1..] {
        let name = format!("walker-{}", role.to_lowercase());
        tokens.insert(
            role,
            Some(server.signed_in(&name, &role.to_lowercase()).await),
        );
    }
    let table = table();
    let mut operations = Schema::load().operations();
    // `logout` ends the walker's session: last.
    operations.sort_by_key(|(_, field, _)| field == "logout");

    let mut problems = Vec::new();
    let mut walked = BTreeSet::new();
    for (root, field, query) in &operations {
        let key = format!("{root}.{field}");
        walked.insert(key.clone());
        let Some(allowed) = table.get(&key) else {
            problems.push(format!(
                "{key} is in the schema but not in AUTHORIZATION.md"
            ));
            continue;
        };
        for caller in CALLERS {
            let token = tokens[caller].as_deref();
            let was_refused = if root == "Subscription" {
                subscription_refused(&server, token, query).await
            } else {
                let answer = server.graphql(token, query, json!({})).await;
                assert!(
                    answer.get("data").is_some() || answer.get("errors").is_some(),
                    "{key} as {caller}: {answer}"
                );
                refused(&answer["errors"])
            };
            let expected_refused = !allowed.contains(caller);
            if was_refused != expected_refused {
                problems.push(format!(
                    "{key} as {caller}: {} but the table says {}",
                    if was_refused { "refused" } else { "reached" },
                    if expected_refused { "—" } else { "✓" },
                ));
            }
        }
    }
    for key in table.keys().filter(|k| !walked.contains(*k)) {
        problems.push(format!(
            "{key} is in AUTHORIZATION.md but not in the schema"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(walked.len() >= 38, "walked only {walked:?}");
}
