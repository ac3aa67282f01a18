"""Class names after prepare: evaluate's confusion CSV (the DVC confusion plot) and the
report's per-class table show them instead of label indices."""

from __future__ import annotations

import csv
import io

import numpy as np

from greenpipe.evaluate.quality import confusion, confusion_csv
from greenpipe.report.classes import class_cols, class_rows
from greenpipe.report.render import Page, Table, html_page, markdown


def test_confusion_csv_names_classes_and_quotes_what_needs_it():
    text = confusion_csv([("teacher", "cat", "dog, big"), ("teacher", 'say "hi"', "cat")])
    assert text.splitlines()[0] == "model,actual,predicted"
    assert text.splitlines()[1] == 'teacher,cat,"dog, big"'
    back = list(csv.DictReader(io.StringIO(text)))  # as DVC reads the plot's data
    assert [r["predicted"] for r in back] == ["dog, big", "cat"]
    assert back[1]["actual"] == 'say "hi"'


def _evaluate(names: list[str], y: list[int], preds: dict[str, list[int]]) -> dict:
    """An evaluate record as pipelines/evaluate.py writes it: per model its confusion."""
    y_arr = np.array(y)
    models = {}
    for model, p in preds.items():
        logits = np.eye(len(names))[p]
        models[model] = {"accuracy": float((y_arr == p).mean())}
        models[model]["confusion"] = confusion(logits, y_arr, len(names)).tolist()
    return {"classes": names, "models": models}


def test_class_rows_carry_names_recall_and_the_kd_students_mistake():
    y = [0, 0, 0, 0, 1, 1, 2, 2]
    ev = _evaluate(
        ["cat", "dog", "owl"],
        y,
        {
            "student_kd": [0, 0, 1, 2, 1, 1, 2, 0],
            "teacher": [0, 0, 0, 0, 1, 1, 2, 2],
        },
    )
    rows = class_rows({"torch": {"evaluate": ev}})
    assert [r["class"] for r in rows] == ["cat", "dog", "owl"]
    cat, dog, owl = rows
    assert cat["samples"] == 4 and cat["recall:teacher"] == 1.0 and cat["recall:student_kd"] == 0.5
    assert cat["mistaken_for"] in ("dog (1)", "owl (1)")
    assert dog["mistaken_for"] == "" and owl["mistaken_for"] == "cat (1)"
    cols = class_cols(rows)
    # models in lineage order (teacher before its students), whatever the record's order
    assert [c[0] for c in cols] == [
        "class",
        "backend",
        "samples",
        "recall:teacher",
        "recall:student_kd",
        "mistaken_for",
    ]


def test_the_report_page_shows_the_class_names():
    ev = _evaluate(["tabby cat", "dog|big"], [0, 0, 1, 1], {"student_kd": [0, 1, 1, 1]})
    rows = class_rows({"torch": {"evaluate": ev}, "tensorflow": {"evaluate": ev}})
    page = Page("t", [Table("Per class (test split)", rows, class_cols(rows))], notes=[])
    md, html = markdown(page), html_page(page)
    assert "| tabby cat | torch | 2 | 0.500 | dog\\|big (1) |" in md
    assert "| dog\\|big | tensorflow | 2 | 1.000 |  |" in md
    assert '<td class="text">tabby cat</td>' in html


def test_records_without_class_names_give_no_rows():
    old = {"models": {"teacher": {"accuracy": 0.9}}, "test_samples": 10}
    assert class_rows({"torch": {"evaluate": old}, "tensorflow": {}}) == []
