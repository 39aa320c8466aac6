#!/usr/bin/env python3
"""Recall and precision of predicted spans against the corpus labels.

    score.py LABELS PREDICTIONS LINES

A prediction is a true positive when it overlaps a labelled span of the same kind (each label
counts once); predictions of kinds that were not inserted are false positives."""
import json
import sys


def main():
    labels_path, predictions_path, lines = sys.argv[1], sys.argv[2], int(sys.argv[3])
    true_total = found_true = predicted = correct = 0
    with open(labels_path) as labels, open(predictions_path) as predictions:
        for _, truth_line, pred_line in zip(range(lines), labels, predictions):
            truth = json.loads(truth_line)
            preds = json.loads(pred_line)
            true_total += len(truth)
            predicted += len(preds)
            matched = set()
            for start, end, kind in preds:
                hit = next((i for i, (s, e, k) in enumerate(truth)
                            if k == kind and start < e and s < end and i not in matched), None)
                if hit is not None:
                    matched.add(hit)
                    correct += 1
            found_true += len(matched)
    print(json.dumps({
        "labels": true_total, "predictions": predicted,
        "recall": found_true / true_total if true_total else 1.0,
        "precision": correct / predicted if predicted else 1.0,
    }))


if __name__ == "__main__":
    main()
