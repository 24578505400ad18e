"""The v2 contract is defined once (``symptom_dx.contract``) and everything derives from it."""

from __future__ import annotations

import ast
from pathlib import Path

from testkit import REPO

from symptom_dx import contract
from symptom_dx.diseases import disease_catalog
from symptom_dx.vocabulary import vocabulary


def _string_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


def test_the_bounds_come_from_the_vocabulary_and_the_catalogue():
    assert contract.N_SYMPTOMS == vocabulary().size == 132
    assert contract.MAX_TOP_K == len(disease_catalog().names) == 41
    assert contract.VECTOR.shape == (-1, contract.N_SYMPTOMS)
    assert contract.MIN_TOP_K <= contract.DEFAULT_TOP_K <= contract.MAX_TOP_K


def test_no_other_module_spells_the_contract_out():
    names = {contract.MODEL_NAME, *(t.name for t in (*contract.INPUTS, *contract.OUTPUTS))}
    for path in (
        REPO / "ui" / "client.py",
        REPO / "ui" / "settings.py",
        # every serving module but metrics.py, whose Prometheus label is also called "disease"
        *sorted(p for p in (REPO / "serving").glob("*.py") if p.name != "metrics.py"),
    ):
        assert not names & _string_literals(path), path


def test_settings_model_name_is_the_contracts():
    from symptom_dx import settings

    assert settings.MODEL_NAME == contract.MODEL_NAME


def test_a_request_is_built_from_the_tensors():
    body = contract.infer_request([["itching", "skin_rash"]], [["cough"]], top_k=3)
    assert body == {
        "inputs": [
            {"name": "symptoms", "datatype": "BYTES", "shape": [1], "data": ["itching,skin_rash"]},
            {"name": "absent", "datatype": "BYTES", "shape": [1], "data": ["cough"]},
        ],
        "parameters": {"top_k": 3},
    }
    assert contract.split_list(" itching, ,skin_rash ") == ("itching", "skin_rash")
