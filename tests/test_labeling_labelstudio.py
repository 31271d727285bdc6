"""Label Studio: tasks with pre-annotations out, its documented JSON export back into the same store."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from support import QUEUE_CLASSES, item

from deepmars.catalog.labels import LabelStore, NewItem
from deepmars.errors import DataError
from deepmars.labeling.labelstudio import export_tasks, import_annotations


def queue(tmp_path) -> LabelStore:
    s = LabelStore.open(tmp_path / "q.sqlite", QUEUE_CLASSES, 2)
    s.add_items([item(0, [0.2, 0.7, 0.1]), item(1), item(2, [0.6, 0.3, 0.1])])
    s.add_items([NewItem("/images/bad.jpg", "bad.jpg", "/images", 0.5, unlabelable="empty file (0 bytes)")])
    return s


def annotation(ann_id, choice, completed_by=7, cancelled=False, created="2026-03-09T22:16:08.728353Z"):
    """An annotation as Label Studio's JSON export writes it (docs: 'Label Studio JSON format of annotated tasks')."""
    return {"id": ann_id, "completed_by": completed_by, "was_cancelled": cancelled, "ground_truth": False,
            "created_at": created, "updated_at": created, "lead_time": 4.288, "result_count": 0, "task": 1,
            "result": [] if cancelled else [{"id": "Dx_aB91ISN", "from_name": "class", "to_name": "image",
                                             "type": "choices", "origin": "manual", "value": {"choices": [choice]}}]}


def ls_export(tmp_path, tasks_file, annotations_by_task) -> object:
    tasks = json.loads(tasks_file.read_text())
    out = []
    for n, task in enumerate(tasks, 1):
        out.append({"id": n, "created_at": "2026-03-09T21:52:49.513742Z", "updated_at": "2026-03-09T22:16:08Z",
                    "project": 83, "data": task["data"], "predictions": task.get("predictions", []),
                    "annotations": annotations_by_task.get(task["data"]["item_id"], [])})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(out))
    return path


def test_tasks_carry_the_image_the_item_and_the_model_s_suggestion(tmp_path):
    with queue(tmp_path) as s:
        out = tmp_path / "tasks.json"
        assert export_tasks(s, out, "/data/local-files/?d=mars/{name}") == 3  # not the unlabelable one
        tasks = json.loads(out.read_text())
        assert [t["data"]["image"] for t in tasks] == [f"/data/local-files/?d=mars/img00{i}.jpg" for i in range(3)]
        assert tasks[0]["predictions"] == [{"model_version": "m1", "score": 0.7, "result": [
            {"from_name": "class", "to_name": "image", "type": "choices", "value": {"choices": ["crater"]}}]}]
        assert "predictions" not in tasks[1]  # no model, no pre-annotation
        config = ET.fromstring((tmp_path / "tasks.label_config.xml").read_text())
        assert [c.get("value") for c in config.iter("Choice")] == QUEUE_CLASSES.names
        assert config.find("Choices").get("name") == "class" and config.find("Image").get("name") == "image"


def test_annotations_come_back_as_labels_with_their_annotators(tmp_path):
    with queue(tmp_path) as s:
        export_tasks(s, tmp_path / "tasks.json")
        path = ls_export(tmp_path, tmp_path / "tasks.json", {
            1: [annotation(1001, "crater"), annotation(1002, "dark dune", {"id": 9, "email": "kiri@example.org"})],
            2: [annotation(1003, "other"), annotation(1004, None, completed_by=9, cancelled=True)],
        })
        got = import_annotations(s, path)
        assert (got.labels, got.later, got.already) == (3, 1, 0)
        events = s.history()
        assert [(e.item_id, e.user, e.action, e.class_name, e.source) for e in events] == [
            (1, "labelstudio:7", "label", "crater", "labelstudio"),
            (1, "labelstudio:kiri@example.org", "label", "dark dune", "labelstudio"),
            (2, "labelstudio:7", "label", "other", "labelstudio"),
            (2, "labelstudio:9", "later", None, "labelstudio")]
        assert events[0].created_at == "2026-03-09T22:16:08.728353Z"
        assert [d.item_id for d in s.disagreements()] == [1]  # double labeling: two annotators disagree
        again = import_annotations(s, path)
        assert (again.labels, again.later, again.already) == (0, 0, 4) and len(s.history()) == 4


def test_a_task_is_found_by_its_url_when_the_item_id_was_dropped(tmp_path):
    with queue(tmp_path) as s:
        export_tasks(s, tmp_path / "tasks.json")
        path = ls_export(tmp_path, tmp_path / "tasks.json", {3: [annotation(7, "other")]})
        tasks = json.loads(path.read_text())
        for t in tasks:
            del t["data"]["item_id"], t["data"]["name"]
        path.write_text(json.dumps(tasks))
        import_annotations(s, path)
        assert [(e.item_id, e.class_name) for e in s.history()] == [(3, "other")]


@pytest.mark.parametrize("change, message", [
    (lambda t: t[0]["annotations"].append(annotation(9, "bright dune")), "class 'bright dune' is not in the queue"),
    (lambda t: t[0]["data"].update(item_id=99, image="/elsewhere.jpg", name="x"), "names no image of this queue"),
    (lambda t: t[0]["annotations"][0]["result"].clear(), "expected one class chosen"),
])
def test_a_bad_export_is_refused_whole(tmp_path, change, message):
    with queue(tmp_path) as s:
        export_tasks(s, tmp_path / "tasks.json")
        path = ls_export(tmp_path, tmp_path / "tasks.json", {1: [annotation(1, "crater")], 2: [annotation(2, "other")]})
        tasks = json.loads(path.read_text())
        change(tasks)
        path.write_text(json.dumps(tasks))
        with pytest.raises(DataError, match=message):
            import_annotations(s, path)
        assert s.history() == []  # nothing half-imported


def test_not_a_label_studio_file(tmp_path):
    (tmp_path / "x.json").write_text('{"tasks": []}')
    with queue(tmp_path) as s, pytest.raises(DataError, match="expected a list of tasks"):
        import_annotations(s, tmp_path / "x.json")
