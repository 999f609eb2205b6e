"""Benchmark scoring rules: pure functions of answer strings."""
import pytest

from occ_core import evaluate as ev


@pytest.mark.parametrize("answer,category", [
    ("The object is cellphone.", "cellphone"), ("the object is a cell phone", "cellphone"),
    ("Mobile phone", "cellphone"), ("It is a phone.", "cellphone"), ("The object is remote control.", "remote"),
    ("THE OBJECT IS KNIFE!", "knife"), ("a cup", "mug"), ("The object's banana", None),
    ("The object is bottle or can.", None), ("", None), ("I don't know", None), ("The object is knifes.", None),
])
def test_category_parsing(answer, category):
    assert ev.parse_category(answer) == category


@pytest.mark.parametrize("answer,value", [
    ("Yes.", True), ("No.", False), ("yes, it is long", True), ("No, it is not round", False),
    ("It is not round. Yes.", True), ("Nope", None), ("", None), ("Noodles", None), ("Yesterday no", False),
])
def test_yes_no_parsing(answer, value):
    assert ev.parse_yes_no(answer) is value


def test_scoring_counts_unparseable_as_wrong():
    assert ev.is_correct("category", "The object is phone.", "cellphone")
    assert not ev.is_correct("category", "gibberish", "cellphone")
    assert ev.is_correct("round", "Yes.", True) and not ev.is_correct("round", "maybe", False)


def test_occlusion_bins_and_table():
    assert [ev.occlusion_bin(r) for r in (0.0, 0.29, 0.3, 0.49, 0.5, 0.9)] == ["<0.3", "<0.3", "0.3-0.5", "0.3-0.5", ">=0.5", ">=0.5"]
    rows = [{"setting": "s", "task": "round", "bin": "<0.3", "correct": True},
            {"setting": "s", "task": "round", "bin": ">=0.5", "correct": False}]
    table = ev.accuracy(rows)
    assert table["s"]["overall"]["round"] == 0.5 and table["s"]["<0.3"]["round"] == 1.0 and table["s"][">=0.5"]["n"] == 1
    assert "| s | overall | 2 |" in ev.markdown_table(table, ["s"])


def test_confusion_matrix():
    rows, cols, m = ev.confusion_matrix(["knife", "knife", "pen"], ["The object is knife.", "pen", "???"])
    assert m[rows.index("knife")][cols.index("knife")] == 1 and m[rows.index("knife")][cols.index("pen")] == 1
    assert m[rows.index("pen")][cols.index("unparsed")] == 1
