"""egs/mmsu stage 0 on a tiny MMSU in its published field layout (test/fixtures/mmsu), its errors
on malformed items (file and line), and the per-category scoring."""
import json
import shutil
from pathlib import Path

import pytest
from tiny_hf import recipe_module

from tasu.data import DataDir, read_targets

TOP = Path(__file__).resolve().parents[1]
FIXTURE = TOP / "test" / "fixtures" / "mmsu"
pytestmark = pytest.mark.unit  # in-process, about a second


def local(name):
    return recipe_module(TOP, "mmsu", name)


def items(path=FIXTURE / "mmsu.jsonl"):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_items_become_a_data_dir_with_prompt_fields(tmp_path):
    assert local("data_prep").main(["--items", str(FIXTURE / "mmsu.jsonl"), "--data", str(tmp_path / "data")]) == 0
    dd = DataDir.load(tmp_path / "data" / "mmsu")
    assert dd.utt_ids == [x["id"] for x in items()] and dd.text is None
    answers = read_targets(dd, "answer")
    assert answers == {"mmsu_0001": "B", "mmsu_0002": "C", "mmsu_0003": "B", "mmsu_0004": "C", "mmsu_0005": "D",
                       "mmsu_0006": "B"}  # answer_gt as text (and one letter) -> the option's letter
    assert read_targets(dd, "question")["mmsu_0002"] == "When does the meeting start?"
    assert read_targets(dd, "choice_d")["mmsu_0001"] == "sleep early"
    assert set(read_targets(dd, "category").values()) == {"semantics", "phonology"}
    # the registry's prompt is filled from these files
    from tasu.tasks import load_tasks

    task = load_tasks(TOP / "egs" / "mmsu" / "conf" / "tasks.yaml").get("mmsu")
    assert task.fields == ("question", "choice_a", "choice_b", "choice_c", "choice_d")
    assert task.read_fields(dd)["mmsu_0004"]["choice_c"] == "six"


def test_score_by_category_and_task(tmp_path):
    assert local("data_prep").main(["--items", str(FIXTURE / "mmsu.jsonl"), "--data", str(tmp_path / "data")]) == 0
    hyp = tmp_path / "text"
    hyp.write_text("mmsu_0001 B\nmmsu_0002 The answer is A.\nmmsu_0004 C\nmmsu_0005 (D)\nmmsu_0006 B\n")
    out = tmp_path / "by_category.md"
    assert local("score_categories").main(["--data", str(tmp_path / "data" / "mmsu"), "--hyp", str(hyp),
                                           "--out", str(out)]) == 0
    md = out.read_text()
    # semantics: 0001 right, 0002 wrong, 0003 missing (wrong), 0005 right; phonology: both right
    assert "| phonology | 2 | 100.00 |" in md and "| semantics | 4 | 50.00 |" in md
    assert "| content_qa | 2 | 50.00 |" in md and "| intent_detection | 2 | 50.00 |" in md


def edit(n, fn):
    def change(path):
        lines = path.read_text().splitlines()
        obj = json.loads(lines[n - 1])
        fn(obj)
        lines[n - 1] = json.dumps(obj)
        path.write_text("\n".join(lines) + "\n")
    return change


@pytest.mark.parametrize("case,change,says", [
    ("no question", edit(2, lambda o: o.pop("question")), "mmsu.jsonl:2: no 'question' field"),
    ("empty choice", edit(3, lambda o: o.update(choice_c=" ")), "mmsu.jsonl:3: choice_c is empty"),
    ("unknown answer", edit(4, lambda o: o.update(answer_gt="eight")), "mmsu.jsonl:4: answer_gt 'eight' is none"),
    ("two answers", edit(5, lambda o: o.update(choice_a="red")), "mmsu.jsonl:5: answer_gt 'red' is choices A and D"),
    ("repeated id", edit(6, lambda o: o.update(id="mmsu_0001")), "mmsu.jsonl:6: id 'mmsu_0001' repeats"),
    ("missing audio", edit(1, lambda o: o.update(audio_path="audio/none.wav")), "mmsu.jsonl:1: no audio"),
    ("not JSON", lambda p: p.write_text(p.read_text() + "{oops\n"), "mmsu.jsonl:7: not JSON"),
])
def test_malformed_items_name_file_and_line(tmp_path, caplog, case, change, says):
    root = tmp_path / "mmsu"
    shutil.copytree(FIXTURE, root)
    change(root / "mmsu.jsonl")
    assert local("data_prep").main(["--items", str(root / "mmsu.jsonl"), "--data", str(tmp_path / "data")]) == 1
    assert says in caplog.text, caplog.text
    assert not (tmp_path / "data").exists()


def test_a_json_list_names_the_item(tmp_path, caplog):
    objs = items()
    del objs[2]["category"]
    path = tmp_path / "mmsu.json"
    path.write_text(json.dumps(objs, indent=1))
    assert local("data_prep").main(["--items", str(path), "--audio_root", str(FIXTURE),
                                    "--data", str(tmp_path / "data")]) == 1
    assert f"{path}: item 2: no 'category' field" in caplog.text
