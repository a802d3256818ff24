"""The contracts package (issue 13): each fact the operator, the controller and the
trainer share is written once, in nas_contracts, which needs nothing but the standard
library and whose modules are the sections of docs/contracts.md."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import sys
from pathlib import Path

import nas_contracts
import pytest
from nas_contracts import cluster, result, trial, volume, warm_pool

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts" / "nas_contracts"
CONSUMERS = [ROOT / "operator" / "nas_operator", ROOT / "trainer-image" / "nas_trainer"]
MODULES = sorted(m.name for m in pkgutil.iter_modules(nas_contracts.__path__))


SHARED = [f"nas_contracts.{m}" for m in MODULES] + ["nas_trainer.trainer_options"]


def contract_values() -> dict[object, str]:
    """Each constant of the package and of the built-in trainer's torch-free tables (strings
    long enough to mean something, sets and tuples of names) with the name that defines it."""
    values: dict[object, str] = {}
    for module in SHARED:
        for name, value in vars(importlib.import_module(module)).items():
            if not name.isupper() or name.startswith("_"):
                continue
            # tuples only of the trainer's tables: ("Succeeded", "Failed") is also a pod's
            if (isinstance(value, str) and len(value) > 4) or isinstance(value, frozenset) or (
                    isinstance(value, tuple) and len(value) > 1 and "trainer" in module):
                values.setdefault(value, f"{module}.{name}")
    return values


def contract_functions() -> set[str]:
    names = set()
    for path in CONTRACTS.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                names.add(node.name)
    return names


def literal(node: ast.expr) -> object:
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "frozenset" and node.args:
        return frozenset(ast.literal_eval(node.args[0]))
    return ast.literal_eval(node)


def consumer_files() -> list[Path]:
    return [p for folder in CONSUMERS for p in sorted(folder.rglob("*.py"))]


def test_each_contract_constant_is_defined_once():
    values = contract_values()
    again = []
    for path in consumer_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Assign):
                continue
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            try:
                value = literal(node.value)
            except (ValueError, TypeError, SyntaxError):
                continue
            if not names or not isinstance(value, (str, frozenset, tuple)):
                continue
            if path.name == "trainer_options.py":
                continue
            if value in values:
                again.append(f"{path.relative_to(ROOT)}: {names[0]} = {value!r} "
                             f"(is {values[value]})")
            elif any("EXIT" in n for n in names) or (
                    isinstance(node.value, ast.Tuple) and "EXIT" in ast.unparse(node)):
                again.append(f"{path.relative_to(ROOT)}: {names[0]} (an exit code)")
    assert again == []


def test_no_exit_code_is_written_outside_the_contracts():
    """`EXIT_PERMANENT = 3` and friends live in nas_contracts.result alone."""
    pattern = re.compile(r"^\s*[A-Z_]*EXIT[A-Z_]*(\s*,\s*[A-Z_]+)*\s*=\s*\d", re.M)
    found = [str(p.relative_to(ROOT)) for p in consumer_files() if pattern.search(p.read_text())]
    assert found == []
    assert (result.EXIT_OK, result.EXIT_RETRYABLE, result.EXIT_PERMANENT) == (0, 1, 3)
    assert cluster.CONTROLLER_EXIT_PERMANENT == result.EXIT_PERMANENT


def test_each_contract_function_is_defined_once():
    shared = contract_functions()
    again = []
    for path in consumer_files():
        for node in ast.parse(path.read_text()).body:  # methods may share a name
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in shared:
                if node.name in ("TrialResult",):  # the trainer's writer, not a reader
                    continue
                again.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert again == []


def test_the_contracts_need_only_the_standard_library():
    for path in CONTRACTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in sys.stdlib_module_names or root == "__future__", (path, root)


def test_each_module_is_a_section_of_the_contracts_document():
    text = (ROOT / "docs" / "contracts.md").read_text()
    sections = re.findall(r"^## (\d+)\. .*\n+(.*)", text, re.M)
    named = {}
    for number, first_line in sections:
        match = re.search(r"`nas_contracts\.(\w+)`", first_line)
        named[number] = match.group(1) if match else None
    assert sorted(m for m in named.values() if m) == MODULES
    assert [n for n, m in named.items() if m is None] == ["6"]  # the spaces' own code


def test_a_trial_is_named_labelled_and_foldered_by_its_index():
    assert trial.trial_name("cora", 17) == "cora-00017"
    assert trial.trial_labels("cora", 17) == {"archsearch.io/search": "cora",
                                              "archsearch.io/trial-index": "17"}
    assert trial.trial_index({"metadata": {"labels": {trial.LABEL_TRIAL_INDEX: "4"}}}) == 4
    assert volume.trial_output_dir(17) == "/data/trials/00017"


@pytest.mark.parametrize("text, reward, ok", [
    ('{"reward": 0.5, "metrics": {"a": 1, "b": NaN}}', 0.5, True),
    ('epoch 1\n{"reward": 0.7}', 0.7, True),  # logs before the last line
    ('{"reward": NaN}', None, False),
    ('{"reward": true}', None, False),
    ('{"reward": 0.5, "error": "x"}', 0.5, False),
])
def test_the_one_result_reader(text, reward, ok):
    read = result.parse_result(text)
    assert read is not None and read.reward == reward and read.succeeded is ok
    assert all(isinstance(v, float) for v in read.metrics.values())


def test_an_error_result_is_read_back_as_written():
    read = result.parse_result(
        __import__("json").dumps(result.error_json("x" * 5000, permanent=True)))
    assert read.permanent and len(read.error) == result.ERROR_LIMIT and not read.succeeded
    assert result.parse_result("not json") is None and result.parse_result("") is None


def test_the_controller_exit_message_round_trips():
    said = cluster.ControllerExit("TrialRefused", "no", 4)
    assert cluster.ControllerExit.of_message(said.to_message()) == said
    assert cluster.ControllerExit.of_message("plain words") == cluster.ControllerExit(
        "InvalidSpec", "plain words", None)
    assert len(cluster.ControllerExit("InvalidSpec", "y" * 9000).to_message()) < 4096


def test_an_answer_is_to_the_assignment_of_its_run():
    trial_obj = {"metadata": {"name": "cora-00004", "uid": "u4"},
                 "spec": {"architecture": {"tokens": [1]}}}
    assignment = warm_pool.build_assignment(trial_obj, 2, {"epochs": 1}, None, "now")
    annotations = {warm_pool.ASSIGNMENT_ANNOTATION: __import__("json").dumps(assignment)}
    assert warm_pool.pending_assignment(annotations) == assignment
    annotations[warm_pool.RESULT_ANNOTATION] = warm_pool.answer(assignment, '{"reward": 1}')
    assert warm_pool.pending_assignment(annotations) is None
    assert warm_pool.answer_in(annotations)["result"] == {"reward": 1}
    older = warm_pool.answer({**assignment, "attempt": 1}, '{"reward": 1}')
    assert warm_pool.answer_in({**annotations, warm_pool.RESULT_ANNOTATION: older}) is None
