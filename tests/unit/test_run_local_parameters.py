"""`make run PARAMS="NAME=VALUE ..."`: typed by the pipeline's signature and checked before
anything starts; what make run sets itself is refused with where to set it."""

import re

import pytest

from pipelines.run_local import pipeline_parameters
from symptom_dx.errors import SymptomDxError


def test_parameters_are_typed_by_the_pipeline():
    assert pipeline_parameters(["algorithms=naive_bayes", "nb_alpha=0.2", "rf_n_estimators=5"]) == {
        "algorithms": "naive_bayes",
        "nb_alpha": 0.2,
        "rf_n_estimators": 5,
    }
    assert pipeline_parameters(None) == {}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("data_source=/x.csv", "parameter data_source is set here: DATA_SOURCE or DATA_DIR"),
        ("deploy=true", "parameter deploy is set here: make run serves"),
        ("nb_alpha=-1", "bad pipeline parameter(s): nb_alpha = -1.0 must be >= 0.0"),
        ("algorithms=svm", "unknown algorithm(s) svm"),
        ("trees=3", "bad parameter 'trees=3': use NAME=VALUE with NAME one of"),
        ("rf_n_estimators=many", "parameter rf_n_estimators wants an int, got 'many'"),
    ],
)
def test_bad_parameters_are_one_line_naming_them(pair, message):
    with pytest.raises(SymptomDxError, match="^" + re.escape(message)):
        pipeline_parameters([pair])
