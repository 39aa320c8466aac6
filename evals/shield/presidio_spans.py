#!/usr/bin/env python3
"""Microsoft Presidio on the Shield evaluation corpus, as a user installs it.

    presidio_spans.py TEXTS OUT_SPANS

Presidio's own predefined recognizers for English (IP, e-mail, credit card, URL, phone, IBAN,
crypto wallets, national ids, ...) with its NoOpNlpEngine: no spaCy model can be downloaded on
these machines, so the recogniser that needs one (PERSON, LOCATION) is removed. Writes one JSON
line per text: [[start, end, entity], ...] with BYTE offsets (Presidio reports characters),
and prints the analysis rate on stderr."""
import json
import sys
import time

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NoOpNlpEngine


def main():
    texts_path, out_path = sys.argv[1], sys.argv[2]
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"])
    # The spaCy recogniser reads the NLP engine's entities; with no model it has none.
    registry.remove_recognizer("SpacyRecognizer")
    engine = AnalyzerEngine(
        registry=registry,
        nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]),
        supported_languages=["en"])
    with open(texts_path, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    started = time.perf_counter()
    results = [engine.analyze(text=t, language="en") for t in texts]
    elapsed = time.perf_counter() - started
    size = sum(len(t.encode()) for t in texts)
    with open(out_path, "w") as out:
        for text, found in zip(texts, results):
            spans = []
            for r in found:
                start = len(text[:r.start].encode())
                end = start + len(text[r.start:r.end].encode())
                spans.append([start, end, r.entity_type])
            out.write(json.dumps(spans) + "\n")
    print(f"presidio: {size / elapsed / 1e6:.3f} MB/s over {len(texts)} texts", file=sys.stderr)


if __name__ == "__main__":
    main()
