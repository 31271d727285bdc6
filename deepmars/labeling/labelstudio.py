"""Label Studio interop: the queue as Label Studio tasks with pre-annotations, and its export read back.

Either tool can do the labeling; the labels land in the same store with their user and time.

- ``export_tasks``: a JSON list of tasks in Label Studio's import format: ``data`` holds the image
  URL and the queue's item id; ``predictions`` holds the model's top class as a pre-annotation
  (``model_version``, ``score``, a ``choices`` result), which Label Studio shows as a suggestion.
  Beside it, ``<output stem>.label_config.xml``: the labeling config (an ``Image`` and a
  ``Choices`` control listing the queue's classes) to paste into the project's settings.
  Image URLs: ``{name}`` (the image relative to the queue's image folder) or ``{path}`` in the
  ``image_url`` template; the default serves local files from Label Studio's document root
  (``LOCAL_FILES_DOCUMENT_ROOT`` set to the image folder).
- ``import_annotations``: Label Studio's JSON export (a list of tasks with ``annotations``): each
  annotation's ``choices`` result becomes a label by ``labelstudio:<annotator>``; a cancelled
  (skipped) annotation becomes a Later. The task's ``item_id`` finds the image (else its URL).
  Everything is checked before anything is written (an unknown class or task is an error naming
  the task), and annotation ids are recorded, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from deepmars.catalog.labels import LabelStore
from deepmars.errors import DataError

DEFAULT_IMAGE_URL = "/data/local-files/?d={name}"
FROM_NAME = "class"
TO_NAME = "image"
SOURCE = "labelstudio"


def label_config(class_names: list[str]) -> str:
    choices = "\n".join(f"    <Choice value={quoteattr(n)}/>" for n in class_names)
    return (f'<View>\n  <Image name="{TO_NAME}" value="$image"/>\n'
            f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def export_tasks(store: LabelStore, output: Path, image_url: str = DEFAULT_IMAGE_URL) -> int:
    """Write every labelable item as a task; returns the number of tasks."""
    tasks = []
    for item in store.items():
        if item.unlabelable is not None:
            continue
        task: dict = {"data": {TO_NAME: image_url.format(name=item.name, path=item.path), "item_id": item.item_id,
                               "name": item.name}}
        if item.suggestion is not None:
            task["predictions"] = [{
                "model_version": item.model_id, "score": item.confidence,
                "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                            "value": {"choices": [item.suggestion]}}]}]
        tasks.append(task)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
    output.with_name(output.stem + ".label_config.xml").write_text(label_config(store.classes.names), encoding="utf-8")
    return len(tasks)


@dataclass(frozen=True)
class Imported:
    labels: int
    later: int
    already: int  # annotations imported before


@dataclass(frozen=True)
class _Answer:
    item_id: int
    user: str
    class_id: int | None  # None: skipped (Later)
    external_id: str
    created_at: str | None


def import_annotations(store: LabelStore, source: Path) -> Imported:
    """Read Label Studio's JSON export into the store (see the module doc)."""
    try:
        tasks = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"not a Label Studio JSON export ({exc})", source) from None
    if not isinstance(tasks, list):
        raise DataError("not a Label Studio JSON export: expected a list of tasks", source)
    answers = _answers(store, tasks, source)
    written = store.import_events([(a.item_id, a.user, "label" if a.class_id is not None else "later", a.class_id,
                                    SOURCE, a.external_id, a.created_at) for a in answers])
    later = sum(1 for a, w in zip(answers, written, strict=True) if w and a.class_id is None)
    return Imported(sum(1 for w in written if w) - later, later, sum(1 for w in written if not w))


def _answers(store: LabelStore, tasks: list, source: Path) -> list[_Answer]:
    by_url = {}
    for item in store.items():
        by_url[item.name] = item.item_id
        by_url[item.path] = item.item_id
    out = []
    for n, task in enumerate(tasks, 1):
        where = f"task {task.get('id', n) if isinstance(task, dict) else n}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataError(f"{where}: not a task (no 'data' object)", source)
        item_id = _item_of(task["data"], by_url, store)
        if item_id is None:
            raise DataError(f"{where}: names no image of this queue (data: {json.dumps(task['data'])[:200]})", source)
        for ann in task.get("annotations") or []:
            out.append(_answer(store, item_id, ann, where, source))
    return out


def _item_of(data: dict, by_url: dict, store: LabelStore) -> int | None:
    item_id = data.get("item_id")
    if isinstance(item_id, int) and store.item(item_id) is not None:
        return item_id
    url = str(data.get(TO_NAME, ""))
    for key in (url, url.split("?d=", 1)[-1], data.get("name")):
        if key in by_url:
            return by_url[key]
    return None


def _answer(store: LabelStore, item_id: int, ann: dict, where: str, source: Path) -> _Answer:
    if not isinstance(ann, dict) or "id" not in ann:
        raise DataError(f"{where}: an annotation without an id", source)
    user = f"{SOURCE}:{_annotator(ann.get('completed_by'))}"
    external = f"{SOURCE}:{ann['id']}"
    if ann.get("was_cancelled"):
        return _Answer(item_id, user, None, external, ann.get("created_at"))
    chosen = [c for r in ann.get("result") or [] if isinstance(r, dict) and r.get("type") == "choices"
              for c in (r.get("value") or {}).get("choices") or []]
    if len(chosen) != 1:
        raise DataError(f"{where}, annotation {ann['id']}: expected one class chosen, got {chosen}", source)
    if chosen[0] not in store.classes.names:
        raise DataError(f"{where}, annotation {ann['id']}: class {chosen[0]!r} is not in the queue's class list "
                        f"{store.classes.describe()}; nothing was imported", source)
    return _Answer(item_id, user, store.classes.id_of(chosen[0]), external, ann.get("created_at"))


def _annotator(completed_by) -> str:
    """Label Studio writes the annotator as a user id, or as an object with id and email."""
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("id") or "unknown")
    return "unknown" if completed_by is None else str(completed_by)
