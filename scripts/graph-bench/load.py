#!/usr/bin/env python3
"""The start-up benchmark's baseline: networkx reading a topology file and building its graph.

    load.py TOPOLOGY.yaml

Parses the API.md file format with PyYAML (its C loader when built with libyaml), builds a
networkx DiGraph of the services and their `depends_on` edges, and prints the seconds taken
and the graph's size as JSON."""
import json
import sys
import time

import networkx as nx
import yaml


def main():
    started = time.perf_counter()
    with open(sys.argv[1]) as f:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = yaml.load(f, Loader=loader)
    g = nx.DiGraph()
    for service in doc["services"]:
        g.add_node(service["name"], kind=service["kind"])
    for service in doc["services"]:
        for dependency in service.get("depends_on", []):
            g.add_edge(service["name"], dependency)
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "services": g.number_of_nodes(),
                      "edges": g.number_of_edges(),
                      "loader": "libyaml" if loader is not yaml.SafeLoader else "python"}))


if __name__ == "__main__":
    main()
