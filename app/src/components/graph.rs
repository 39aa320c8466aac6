//! The topology drawn as SVG with a layered layout: dependents left, dependencies right.
//! Root causes are highlighted, the blast radius shaded, the alerted service marked.

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;

/// A node placed on the canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub name: String,
    pub layer: usize,
    pub row: usize,
}

/// Layers by longest dependency chain from the entry points (services nothing depends on);
/// cycles are broken by visiting each service once per pass. Rows in name order.
pub fn layered_layout(names: &[String], edges: &[(String, String)]) -> Vec<Placed> {
    let mut layer: HashMap<&str, usize> = names.iter().map(|n| (n.as_str(), 0)).collect();
    // Relax `layer[to] >= layer[from] + 1` at most |V| times: terminates on cycles.
    for _ in 0..names.len() {
        let mut changed = false;
        for (from, to) in edges {
            let (Some(&f), Some(&t)) = (layer.get(from.as_str()), layer.get(to.as_str())) else {
                continue;
            };
            if t < f + 1 && f + 1 < names.len() {
                layer.insert(to.as_str(), f + 1);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    let mut rows: HashMap<usize, usize> = HashMap::new();
    sorted
        .into_iter()
        .map(|name| {
            let l = layer[name.as_str()];
            let row = rows.entry(l).or_insert(0);
            let placed = Placed {
                name: name.clone(),
                layer: l,
                row: *row,
            };
            *row += 1;
            placed
        })
        .collect()
}

const NODE_W: f64 = 132.0;
const NODE_H: f64 = 34.0;
const GAP_X: f64 = 60.0;
const GAP_Y: f64 = 18.0;

/// The graph. `root_causes`, `blast` and `unhealthy` are service names; `focus` the alerted one.
#[component]
pub fn TopologyGraph(
    names: Vec<String>,
    edges: Vec<(String, String)>,
    #[prop(optional)] focus: Option<String>,
    #[prop(optional)] root_causes: Vec<String>,
    #[prop(optional)] blast: Vec<String>,
    #[prop(optional)] unhealthy: Vec<String>,
) -> impl IntoView {
    let placed = layered_layout(&names, &edges);
    let at: HashMap<String, (f64, f64)> = placed
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                (
                    10.0 + p.layer as f64 * (NODE_W + GAP_X),
                    10.0 + p.row as f64 * (NODE_H + GAP_Y),
                ),
            )
        })
        .collect();
    let width = placed.iter().map(|p| p.layer + 1).max().unwrap_or(1) as f64 * (NODE_W + GAP_X);
    let height = {
        let mut per_layer: HashMap<usize, usize> = HashMap::new();
        for p in &placed {
            *per_layer.entry(p.layer).or_default() += 1;
        }
        per_layer.values().copied().max().unwrap_or(1) as f64 * (NODE_H + GAP_Y) + 10.0
    };
    let root: HashSet<String> = root_causes.into_iter().collect();
    let shaded: HashSet<String> = blast.into_iter().collect();
    let sick: HashSet<String> = unhealthy.into_iter().collect();
    let lines = edges
        .iter()
        .filter_map(|(from, to)| {
            let (fx, fy) = at.get(from)?;
            let (tx, ty) = at.get(to)?;
            Some(view! {
                <line class="edge" x1=fx + NODE_W y1=fy + NODE_H / 2.0 x2=*tx y2=ty + NODE_H / 2.0
                    marker-end="url(#arrow)"/>
            })
        })
        .collect_view();
    let nodes = placed
        .into_iter()
        .map(|p| {
            let (x, y) = at[&p.name];
            let mut class = String::from("node");
            if root.contains(&p.name) {
                class.push_str(" root-cause");
            }
            if shaded.contains(&p.name) {
                class.push_str(" blast");
            }
            if sick.contains(&p.name) {
                class.push_str(" unhealthy");
            }
            if focus.as_deref() == Some(p.name.as_str()) {
                class.push_str(" focus");
            }
            view! {
                <g class=class data-service=p.name.clone()>
                    <rect x=x y=y width=NODE_W height=NODE_H rx="7"/>
                    <text x=x + NODE_W / 2.0 y=y + NODE_H / 2.0 + 4.0 text-anchor="middle">{p.name.clone()}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="topology" viewBox=format!("0 0 {width} {height}") role="img"
            aria-label="Service topology" data-testid="topology-graph">
            <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
                    <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/>
                </marker>
            </defs>
            {lines}
            {nodes}
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(edges: &[(&str, &str)]) -> Vec<(String, usize, usize)> {
        let mut names: Vec<String> = edges
            .iter()
            .flat_map(|(a, b)| [a.to_string(), b.to_string()])
            .collect();
        names.sort();
        names.dedup();
        let edges: Vec<(String, String)> = edges
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        layered_layout(&names, &edges)
            .into_iter()
            .map(|p| (p.name, p.layer, p.row))
            .collect()
    }

    #[test]
    fn layers_follow_the_longest_dependency_chain() {
        let placed = layout(&[
            ("ingress", "frontend"),
            ("frontend", "api"),
            ("api", "db"),
            ("frontend", "db"),
        ]);
        assert_eq!(
            placed,
            [
                ("api".into(), 2, 0),
                ("db".into(), 3, 0),
                ("frontend".into(), 1, 0),
                ("ingress".into(), 0, 0)
            ]
        );
    }

    #[test]
    fn cycles_terminate_with_every_service_placed() {
        let placed = layout(&[("a", "b"), ("b", "c"), ("c", "a")]);
        assert_eq!(placed.len(), 3);
        assert!(placed.iter().all(|(_, layer, _)| *layer < 3));
    }
}
