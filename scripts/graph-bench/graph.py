#!/usr/bin/env python3
"""Synthetic topology for the GraphRAG benchmark, and networkx on it.

    graph.py OUT_DIR [SERVICES] [EDGES] [QUERIES]

Writes OUT_DIR/topology.yaml (the API.md format, read by the Rust benchmark) and
OUT_DIR/queries.txt (the services both engines query), then times, with networkx, the same
computation per query: blast radius (BFS over reverse edges) and root causes (BFS over
dependencies, keep the unhealthy, rank by kind, depth, name), both at depth 3. Prints JSON."""
import json
import random
import sys
import time
from pathlib import Path

import networkx as nx

KINDS = ["SERVICE"] * 6 + ["DATABASE", "CACHE", "QUEUE", "STORAGE", "INGRESS", "EXTERNAL"]
PRIORITY = {"DATABASE": 0, "CACHE": 1, "QUEUE": 2, "STORAGE": 3}


def main():
    out = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    m = int(sys.argv[3]) if len(sys.argv) > 3 else 200_000
    q = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000
    rng = random.Random(20261125)
    out.mkdir(parents=True, exist_ok=True)
    names = [f"svc-{i:05d}" for i in range(n)]
    kinds = [rng.choice(KINDS) for _ in range(n)]
    deps = [set() for _ in range(n)]
    edges = 0
    while edges < m:
        a, b = rng.randrange(n), rng.randrange(n)
        if a != b and b not in deps[a]:
            deps[a].add(b)
            edges += 1
    unhealthy = {names[i] for i in rng.sample(range(n), n // 50)}
    queries = [names[i] for i in rng.sample(range(n), q)]
    with open(out / "topology.yaml", "w") as f:
        f.write("services:\n")
        for i in range(n):
            dep = ", ".join(names[j] for j in sorted(deps[i]))
            f.write(f"  - {{name: {names[i]}, kind: {kinds[i]}, depends_on: [{dep}]}}\n")
    (out / "queries.txt").write_text("\n".join(queries) + "\n")
    (out / "unhealthy.txt").write_text("\n".join(sorted(unhealthy)) + "\n")

    g = nx.DiGraph()
    g.add_nodes_from((names[i], {"kind": kinds[i]}) for i in range(n))
    g.add_edges_from((names[a], names[b]) for a in range(n) for b in deps[a])
    reverse = g.reverse(copy=False)
    started = time.perf_counter()
    total_affected = total_causes = 0
    for service in queries:
        blast = nx.single_source_shortest_path_length(reverse, service, cutoff=3)
        total_affected += len(blast) - 1
        down = nx.single_source_shortest_path_length(g, service, cutoff=3)
        causes = sorted(
            ((PRIORITY.get(g.nodes[s]["kind"], 4), d, s) for s, d in down.items()
             if d > 0 and s in unhealthy))
        total_causes += len(causes)
    elapsed = time.perf_counter() - started
    print(json.dumps({"services": n, "edges": m, "queries": q,
                      "networkx_us_per_call": elapsed / q * 1e6,
                      "affected_total": total_affected, "causes_total": total_causes}))


if __name__ == "__main__":
    main()
