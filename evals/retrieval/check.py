#!/usr/bin/env python3
"""Validate evals/retrieval/set.json (Python 3 standard library only).

Usage: python3 evals/retrieval/check.py [path/to/set.json]

Prints the counts and, for information, the mean share of each query's distinct words
(lower-cased, alphanumeric runs, at least 3 characters) that also appear in the text of its
relevant entries. Exits 1 on any violation.
"""
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

MIN_REAL_KINDS = 45
MIN_DISTRACTORS = 30
MIN_QUERIES = 135
MIN_QUERIES_PER_KIND = 3
MIN_TWO_ENTRY_KINDS = 8
STYLES = {"log", "paraphrase", "alert"}
ENTRY_FIELDS = {
    "key": str, "kind": str, "service": str, "title": str, "body": str,
    "alert_names": list, "root_cause": str, "action": str,
}
CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]+$")
WORD = re.compile(r"[^\W_]+")


def words(text):
    return {w for w in (m.lower() for m in WORD.findall(text)) if len(w) >= 3}


def entry_text(e):
    return " ".join([e["title"], e["body"], e["service"], " ".join(e["alert_names"]),
                     e["root_cause"], e["action"]])


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("set.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    errors = []

    def bad(msg):
        errors.append(msg)

    if set(data) != {"entries", "queries"}:
        bad(f"top-level keys must be entries and queries, got {sorted(data)}")
    entries = data.get("entries", [])
    queries = data.get("queries", [])

    # Entries: shape, unique keys, kinds.
    by_key = {}
    for i, e in enumerate(entries):
        if set(e) != set(ENTRY_FIELDS):
            bad(f"entry #{i}: fields {sorted(e)} != {sorted(ENTRY_FIELDS)}")
            continue
        for field, typ in ENTRY_FIELDS.items():
            if not isinstance(e[field], typ):
                bad(f"entry {e.get('key')!r}: {field} is not {typ.__name__}")
        if any(not isinstance(e[f], str) or not e[f].strip()
               for f in ENTRY_FIELDS if f != "alert_names"):
            bad(f"entry {e['key']!r}: empty text field")
        if e["key"] in by_key:
            bad(f"duplicate key {e['key']!r}")
        by_key[e["key"]] = e
        for name in e["alert_names"]:
            if not isinstance(name, str) or not CAMEL.match(name):
                bad(f"entry {e['key']!r}: alert name {name!r} is not CamelCase")

    def is_distractor(e):
        return e["kind"].startswith("distractor-")

    kinds = defaultdict(list)
    for e in by_key.values():
        kinds[e["kind"]].append(e["key"])
    real_kinds = {k: keys for k, keys in kinds.items() if not k.startswith("distractor-")}
    distractors = [e for e in by_key.values() if is_distractor(e)]
    for kind, keys in kinds.items():
        if kind.startswith("distractor-"):
            if len(keys) != 1:
                bad(f"distractor kind {kind!r} has {len(keys)} entries")
            continue
        if len(keys) == 1 and keys[0] != kind:
            bad(f"single-entry kind {kind!r} must equal its key ({keys[0]!r})")
        if len(keys) > 1:
            if kind not in keys:
                bad(f"shared kind {kind!r} should be the key of one of its entries")
            services = [by_key[k]["service"] for k in keys]
            if len(set(services)) != len(services):
                bad(f"kind {kind!r}: its entries must be on different services")
        for k in keys:
            if not by_key[k]["alert_names"]:
                bad(f"real entry {k!r} has no alert names")

    # Queries: labels, styles, no copying of titles, root causes or alert names.
    per_kind = Counter()
    styles_per_kind = defaultdict(set)
    texts = Counter()
    overlaps = defaultdict(list)
    for i, q in enumerate(queries):
        if set(q) != {"text", "style", "relevant"}:
            bad(f"query #{i}: fields {sorted(q)}")
            continue
        text, style, relevant = q["text"], q["style"], q["relevant"]
        texts[text] += 1
        if not isinstance(text, str) or not text.strip():
            bad(f"query #{i}: empty text")
            continue
        if style not in STYLES:
            bad(f"query #{i}: style {style!r} not in {sorted(STYLES)}")
        if not isinstance(relevant, list) or not relevant:
            bad(f"query #{i}: relevant must be a non-empty list")
            continue
        missing = [k for k in relevant if k not in by_key]
        if missing:
            bad(f"query #{i}: unknown relevant keys {missing}")
            continue
        if any(is_distractor(by_key[k]) for k in relevant):
            bad(f"query #{i}: a distractor is labelled relevant: {relevant}")
            continue
        qkinds = {by_key[k]["kind"] for k in relevant}
        if len(qkinds) != 1:
            bad(f"query #{i}: relevant entries span kinds {sorted(qkinds)}")
            continue
        kind = qkinds.pop()
        if sorted(relevant) != sorted(real_kinds[kind]) or len(set(relevant)) != len(relevant):
            bad(f"query #{i}: relevant {relevant} != all entries of kind {kind!r} {real_kinds[kind]}")
        per_kind[kind] += 1
        styles_per_kind[kind].add(style)
        low = text.lower()
        for k in relevant:
            e = by_key[k]
            if e["title"].lower() in low:
                bad(f"query #{i} ({kind}): contains the title of {k!r}")
            if e["root_cause"].lower() in low:
                bad(f"query #{i} ({kind}): contains the root cause of {k!r}")
            for name in e["alert_names"]:
                if name.lower() in low:
                    bad(f"query #{i} ({kind}): reuses alert name {name!r} of {k!r}")
        qwords = words(text)
        if not qwords:
            bad(f"query #{i}: no words of 3+ characters")
            continue
        ewords = set().union(*(words(entry_text(by_key[k])) for k in relevant))
        overlaps[style].append(len(qwords & ewords) / len(qwords))
    for text, n in texts.items():
        if n > 1:
            bad(f"query text repeated {n} times: {text[:60]!r}")
    for kind in real_kinds:
        if per_kind[kind] < MIN_QUERIES_PER_KIND:
            bad(f"kind {kind!r} has {per_kind[kind]} queries (< {MIN_QUERIES_PER_KIND})")
        if styles_per_kind[kind] != STYLES:
            bad(f"kind {kind!r} lacks styles {sorted(STYLES - styles_per_kind[kind])}")

    two_entry = sum(1 for keys in real_kinds.values() if len(keys) > 1)
    for label, value, minimum in [
        ("real failure kinds", len(real_kinds), MIN_REAL_KINDS),
        ("distractor entries", len(distractors), MIN_DISTRACTORS),
        ("queries", len(queries), MIN_QUERIES),
        ("kinds with two or more entries", two_entry, MIN_TWO_ENTRY_KINDS),
    ]:
        if value < minimum:
            bad(f"{label}: {value} < {minimum}")

    style_counts = Counter(q.get("style") for q in queries)
    print(f"entries:            {len(entries)} ({len(entries) - len(distractors)} real, {len(distractors)} distractors)")
    print(f"failure kinds:      {len(real_kinds)} ({two_entry} with two entries)")
    print(f"queries:            {len(queries)} ("
          + ", ".join(f"{s} {style_counts[s]}" for s in sorted(STYLES)) + ")")
    print(f"queries per kind:   min {min(per_kind.values(), default=0)}, max {max(per_kind.values(), default=0)}")
    all_overlaps = [x for xs in overlaps.values() for x in xs]
    if all_overlaps:
        print("word overlap (share of a query's distinct words found in its relevant entries):")
        print(f"  all         {sum(all_overlaps) / len(all_overlaps):.3f}")
        for s in sorted(overlaps):
            print(f"  {s:<11} {sum(overlaps[s]) / len(overlaps[s]):.3f}")
    if errors:
        print(f"\n{len(errors)} violation(s):", file=sys.stderr)
        for msg in errors:
            print(f"  - {msg}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
