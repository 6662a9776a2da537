"""The results JSON of `evaluate` and `compare` follow docs/results-schema.md, field by field

The tables of docs/results-schema.md are read as the schema: every field a
written file has must be documented there with its type, and every field
documented as present "always" must be there (whenever its parent object
is). A fast evaluation of the training-free baseline, through `compare`,
writes both files.
"""

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from pyannote_embloss.training.comparison import ComparisonOptions, compare
from pyannote_embloss.data.conditions import parse_conditions
from pyannote_embloss.evaluation.report import COMPARE_SCHEMA, EVALUATE_SCHEMA

from test_verify import SMALL, baseline_experiment, small_yml  # noqa: F401  (small_yml: the fixture)

DOC = Path(__file__).parents[1] / "docs" / "results-schema.md"
#: a placeholder documented as "any ..." matches any key without / or brackets
ANY_KEY = r"[^/\[\]]+"


@dataclass
class Field:
    """One documented field: its path (a regex), types and whether it is always present"""

    path: str
    pattern: "re.Pattern"
    types: List[str]
    always: bool


class Schema:
    """The tables of docs/results-schema.md

    Parameters
    ----------
    text : str
        The Markdown document.
    """

    def __init__(self, text: str):
        self.placeholders: Dict[str, List[str]] = {}
        self.tables: Dict[str, List[List[str]]] = {}
        anchor: Optional[str] = None
        for line in text.splitlines():
            heading = re.match(r"#+ (.*)", line)
            if heading:
                anchor = re.sub(r"[^a-z0-9 -]", "", heading.group(1).lower()).replace(" ", "-")
                continue
            if not line.startswith("|") or set(line) <= set("|- "):
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if cells[0] in ("Field", "Placeholder", "File"):
                continue
            if anchor == "placeholders":
                name = cells[0].strip("`")
                values = re.findall(r"`([^`]+)`", cells[1])
                self.placeholders[name] = None if cells[1].startswith("any") else values
            elif anchor is not None:
                self.tables.setdefault(anchor, []).append(cells)

    def regex(self, path: str) -> str:
        """Regex of the concrete paths a documented path stands for"""
        parts = re.split(r"(<\w+>)", path)
        out = []
        for part in parts:
            if re.fullmatch(r"<\w+>", part):
                values = self.placeholders[part]
                out.append(ANY_KEY if values is None else "(?:" + "|".join(map(re.escape, values)) + ")")
            else:
                out.append(re.escape(part))
        return "".join(out)

    def fields(self, table: str, prefix: str = "") -> List[Field]:
        """The fields of a table (the tables it links to expanded), with paths under `prefix`"""
        fields = []
        for field, type_, _, present, _ in self.tables[table]:
            path = field.strip("`") if field.startswith("`") else ""
            full = f"{prefix}/{path}".strip("/") if path else prefix
            link = re.fullmatch(r"\[[^\]]+\]\(#([\w-]+)\)", type_)
            if link:
                if path:
                    fields.append(self._field(full, ["object"], present))
                fields.extend(self.fields(link.group(1), full))
            else:
                fields.append(self._field(full, type_.split(" or "), present))
        return fields

    def _field(self, path: str, types: List[str], present: str) -> Field:
        return Field(path, re.compile(self.regex(path)), [t.strip() for t in types], present == "always")

    def check(self, document: dict, table: str) -> List[str]:
        """What in `document` does not follow the schema of `table` (empty when it does)"""
        fields = self.fields(table)
        errors: List[str] = []
        self._check_object(document, "", fields, errors)
        return errors

    def _check_object(self, obj: dict, path: str, fields: List[Field], errors: List[str]) -> None:
        for field in fields:  # the fields always present in this object
            parent, _, key = field.path.rpartition("/")
            if field.always and re.fullmatch(self.regex(parent), path):
                for name in self._keys(key):
                    if name is not None and name not in obj:
                        errors.append(f"{path or '(top level)'}: missing '{name}' (documented as always present)")
        for key, value in obj.items():
            self._check_value(value, f"{path}/{key}" if path else key, fields, errors)

    def _keys(self, key: str) -> List[Optional[str]]:
        """The literal keys a documented key stands for (None when any key would do)"""
        names = [""]
        for part in re.split(r"(<\w+>)", key):
            if re.fullmatch(r"<\w+>", part):
                values = self.placeholders[part]
                if values is None:
                    return [None]
                names = [n + v for n in names for v in values]
            else:
                names = [n + part for n in names]
        return names

    def _check_value(self, value, path: str, fields: List[Field], errors: List[str]) -> None:
        matching = [f for f in fields if f.pattern.fullmatch(path)]
        if not matching:
            errors.append(f"{path}: not documented")
            return
        types = [t for f in matching for t in f.types]
        if not any(_is(value, t) for t in types):
            errors.append(f"{path}: {json.dumps(value)[:60]} is not {' or '.join(types)}")
            return
        if "object, opaque" in types:
            return
        if isinstance(value, dict):
            self._check_object(value, path, fields, errors)
        elif isinstance(value, list) and "array of object" in types:
            for item in value:
                self._check_object(item, f"{path}[]", fields, errors)


def _is_number(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))  # null: not finite


def _is(value, type_: str) -> bool:
    checks = {
        "string": lambda v: isinstance(v, str),
        "number": _is_number,
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "object, opaque": lambda v: isinstance(v, dict),
        "array of string": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "array of number": lambda v: isinstance(v, list) and all(_is_number(x) for x in v),
        "array of object": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
        "[number, number]": lambda v: isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v),
    }
    assert type_ in checks, f"docs/results-schema.md: unknown type '{type_}'"
    return checks[type_](value)


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema(DOC.read_text())


@pytest.fixture(scope="module")
def written(small_yml, tmp_path_factory):  # noqa: F811
    """(evaluate's results JSON, compare's comparison.json) of the baseline on Small, clean and duration:1"""
    root = tmp_path_factory.mktemp("schema")
    experiment = baseline_experiment(root / "baseline", SMALL)
    options = ComparisonOptions(
        output=root / "comparison", database=str(small_yml), progress=False,
        conditions=parse_conditions(["clean", "duration:1"]), n_resamples=50,
    )
    paths = compare([experiment.directory], options)
    evaluated = experiment.results / f"{SMALL}.test.json"
    return json.loads(evaluated.read_text()), json.loads(Path(paths["json"]).read_text())


def test_evaluate_results_follow_the_documented_schema(schema, written):
    evaluated, _ = written
    assert evaluated["schema"] == EVALUATE_SCHEMA == "pyannote-embloss/evaluate/1"
    assert schema.check(evaluated, "evaluate") == []
    # calibrated (Small has development trials), normalised, and in both conditions
    assert evaluated["calibration"]["scoring"] == "cosine" and set(evaluated["normalized"]) == {"mean", "asnorm", "plda"}
    assert list(evaluated["conditions"]) == ["duration:1"] and 0.0 <= evaluated["conditions"]["duration:1"]["eer"] <= 1.0
    assert evaluated["checkpoint"] is None  # training-free: null, not "None"


def test_compare_results_follow_the_documented_schema(schema, written):
    evaluated, compared = written
    assert compared["schema"] == COMPARE_SCHEMA == "pyannote-embloss/compare/1"
    assert schema.check(compared, "compare") == []
    assert compared["conditions"] == ["clean", "duration:1"]
    (run,) = compared["runs"]["baseline (no training)"]
    assert run["schema"] == EVALUATE_SCHEMA and run["eer"] == evaluated["eer"]


def test_the_check_finds_undocumented_missing_and_mistyped_fields(schema, written):
    evaluated, compared = written
    wrong = copy.deepcopy(evaluated)
    wrong["new_metric"] = 1.0
    del wrong["normalized"]["plda"]["ci"]["eer"]
    wrong["conditions"]["duration:1"]["num_target"] = "9"
    wrong["far"]["0.5"] = {"threshold": 0.1, "far": 0.5, "frr": 0.5}
    assert sorted(schema.check(wrong, "evaluate")) == [
        "conditions/duration:1/num_target: \"9\" is not integer",
        "far/0.5: not documented",
        "new_metric: not documented",
        "normalized/plda/ci: missing 'eer' (documented as always present)",
    ]
    wrong = copy.deepcopy(compared)
    del wrong["runs"]["baseline (no training)"][0]["schema"]
    wrong["rows"][0]["eer_ci"] = [0.1]
    assert sorted(schema.check(wrong, "compare")) == [
        "rows[]/eer_ci: [0.1] is not [number, number]",
        "runs/baseline (no training)[]: missing 'schema' (documented as always present)",
    ]


def test_every_documented_type_is_known(schema):
    for table in ("evaluate", "compare"):
        for field in schema.fields(table):
            for type_ in field.types:
                _is(None, type_)  # asserts the type is known
    assert set(schema.placeholders) == {"<scoring>", "<p>", "<far>", "<condition>", "<system>"}
