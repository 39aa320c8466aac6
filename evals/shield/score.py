#!/usr/bin/env python3
"""Scores redaction findings against the labelled corpus (evals/shield/corpus.jsonl).

    score.py CORPUS NAME=SPANS [NAME=SPANS ...]

SPANS has one JSON line per corpus record: [[start, end, kind(, label)], ...], byte offsets.
For every labelled sensitive value (pii) and every labelled look-alike:
  caught   every byte of the value lies inside some finding (of any kind);
  partial  some bytes are inside a finding and some are not (a half-leaked value);
  flagged  a look-alike overlaps a finding (a false positive).
Consistency (only for tools that label): over the values seen more than once, the share whose
every occurrence got one label, and whose label no other value got.
Prints one Markdown table per tool and a side-by-side summary; exits non-zero when the first
tool misses a target (recall >= 99.5% per kind, 0 partial secrets, look-alikes flagged
<= 0.5% per kind, consistency 100%)."""
import json
import sys
from collections import defaultdict

SECRET_KINDS = {"PASSWORD", "SECRET", "TOKEN", "AWS_KEY", "JWT"}
RECALL_TARGET, FP_TARGET = 0.995, 0.005


def covered_bytes(spans, start, end):
    """How many bytes of [start, end) lie inside the union of spans."""
    inside = set()
    for s, e, *_ in spans:
        lo, hi = max(s, start), min(e, end)
        inside.update(range(lo, hi))
    return len(inside)


def score(records, predictions):
    pii = defaultdict(lambda: [0, 0, 0])        # kind -> [total, caught, partial]
    look = defaultdict(lambda: [0, 0])          # kind -> [total, flagged]
    labels_of_value = defaultdict(set)          # value -> labels given
    values_of_label = defaultdict(set)          # label -> values
    occurrences = defaultdict(int)
    labelled = False
    for record, spans in zip(records, predictions):
        text = record["text"].encode()
        for start, end, kind in record["pii"]:
            got = covered_bytes(spans, start, end)
            entry = pii[kind]
            entry[0] += 1
            entry[1] += got == end - start
            entry[2] += 0 < got < end - start
            value = text[start:end]
            occurrences[value] += 1
            label = next((span[3] for span in spans
                          if len(span) == 4 and span[0] < end and start < span[1]), None)
            labelled |= any(len(span) == 4 for span in spans)
            labels_of_value[value].add(label)
            if label is not None:
                values_of_label[label].add(value)
        for start, end, kind in record["lookalike"]:
            entry = look[kind]
            entry[0] += 1
            entry[1] += covered_bytes(spans, start, end) > 0
    consistency = None
    if labelled:
        repeated = [v for v, n in occurrences.items() if n > 1]
        consistent = [v for v in repeated if len(labels_of_value[v]) == 1
                      and None not in labels_of_value[v]
                      and values_of_label[next(iter(labels_of_value[v]))] == {v}]
        consistency = (len(consistent), len(repeated))
    return pii, look, consistency


def pct(n, d):
    return f"{100 * n / d:.2f}%" if d else "-"


def main():
    corpus = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
    tools = []
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        predictions = [json.loads(line) for line in open(path)]
        if len(predictions) != len(corpus):
            sys.exit(f"{path}: {len(predictions)} lines for {len(corpus)} records")
        tools.append((name, *score(corpus, predictions)))

    pii_kinds = sorted({k for _, pii, _, _ in tools for k in pii})
    look_kinds = sorted({k for _, _, look, _ in tools for k in look})
    names = [t[0] for t in tools]
    print(f"corpus: {len(corpus)} records, "
          f"{sum(len(r['pii']) for r in corpus)} sensitive values, "
          f"{sum(len(r['lookalike']) for r in corpus)} look-alikes\n")
    print("| sensitive kind | values | " + " | ".join(f"{n} recall | {n} partial" for n in names) + " |")
    print("|---|---|" + "---|---|" * len(names))
    for kind in pii_kinds:
        total = tools[0][1][kind][0]
        cells = []
        for _, pii, _, _ in tools:
            t, caught, partial = pii[kind]
            cells += [pct(caught, t), str(partial)]
        print(f"| {kind} | {total} | " + " | ".join(cells) + " |")
    print()
    print("| look-alike kind | count | " + " | ".join(f"{n} flagged" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for kind in look_kinds:
        total = tools[0][2][kind][0]
        print(f"| {kind} | {total} | " + " | ".join(pct(look[kind][1], look[kind][0]) for _, _, look, _ in tools) + " |")
    print()
    print("| consistency (one value, one label) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    cells = []
    for _, _, _, consistency in tools:
        cells.append("n/a (no labels)" if consistency is None
                     else f"{pct(*consistency)} of {consistency[1]} repeated values")
    print("| values seen more than once | " + " | ".join(cells) + " |")

    name, pii, look, consistency = tools[0]
    failures = []
    for kind, (t, caught, partial) in pii.items():
        if caught / t < RECALL_TARGET:
            failures.append(f"{kind} recall {pct(caught, t)}")
        if kind in SECRET_KINDS and partial:
            failures.append(f"{kind}: {partial} partial leaks")
    for kind, (t, flagged) in look.items():
        if flagged / t > FP_TARGET:
            failures.append(f"{kind} flagged {pct(flagged, t)}")
    if consistency is not None and consistency[0] != consistency[1]:
        failures.append(f"consistency {pct(*consistency)}")
    if failures:
        print(f"\n{name} misses its targets: " + "; ".join(failures))
        sys.exit(1)
    print(f"\n{name} meets its targets.")


if __name__ == "__main__":
    main()
