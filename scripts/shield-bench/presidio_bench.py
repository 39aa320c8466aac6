#!/usr/bin/env python3
"""Microsoft Presidio on the Shield benchmark corpus: throughput and findings.

    presidio_bench.py CORPUS LINES OUT_SPANS

Uses Presidio's NoOpNlpEngine (no model), its own recognizers for the types it ships (IP,
e-mail, credit card) and pattern recognizers for the rest of the Shield's types, with the
same expressions. Analyses the first LINES lines, prints bytes/s, and writes one JSON line
of [start, end, kind] per corpus line to OUT_SPANS."""
import json
import sys
import time

from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, EmailRecognizer,
                                                      IpRecognizer)

# Presidio entity → Shield kind.
KINDS = {"IP_ADDRESS": "IP", "EMAIL_ADDRESS": "EMAIL", "CREDIT_CARD": "CREDIT_CARD"}

CUSTOM = {
    "UUID": [r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b"],
    "JWT": [r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"],
    "MAC": [r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b"],
    "AWS_KEY": [r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"],
    "SECRET": [r"(?i)\baws_?secret_?access_?key\s*[=:]\s*[\"']?[A-Za-z0-9/+=]{40}",
               r"(?i)\b(?:api[_-]?key|apikey|secret|secret[_-]?key|client[_-]?secret|private[_-]?key)\s*[=:]\s*[\"']?[^\s\"'&,;]+"],
    "TOKEN": [r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
              r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
              r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
              r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",
              r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*",
              r"(?i)\b(?:token|access[_-]?token|auth[_-]?token|refresh[_-]?token|session[_-]?id)\s*[=:]\s*[\"']?[^\s\"'&,;]+"],
    "PASSWORD": [r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@",
                 r"(?i)\b(?:password|passwd|pwd|db_pass|pass)\s*[=:]\s*[\"']?[^\s\"'&,;]+"],
}


def analyzer():
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (IpRecognizer(), EmailRecognizer(), CreditCardRecognizer()):
        registry.add_recognizer(recognizer)
    for kind, patterns in CUSTOM.items():
        registry.add_recognizer(PatternRecognizer(
            supported_entity=kind,
            patterns=[Pattern(name=f"{kind}_{i}", regex=p, score=0.9) for i, p in enumerate(patterns)]))
    return AnalyzerEngine(registry=registry, nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]), supported_languages=["en"])


def main():
    corpus, lines, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    engine = analyzer()
    entities = list(KINDS) + list(CUSTOM)
    with open(corpus) as f:
        texts = [next(f).rstrip("\n") for _ in range(lines)]
    size = sum(len(t.encode()) + 1 for t in texts)
    started = time.perf_counter()
    results = [engine.analyze(text=t, language="en", entities=entities) for t in texts]
    elapsed = time.perf_counter() - started
    with open(out, "w") as spans:
        for found in results:
            spans.write(json.dumps([[r.start, r.end, KINDS.get(r.entity_type, r.entity_type)]
                                    for r in found]) + "\n")
    print(json.dumps({"bytes": size, "seconds": elapsed, "bytes_per_second": size / elapsed}))


if __name__ == "__main__":
    main()
