"""`symptom-dx pipeline upload | run` up to the KFP API server: parameters typed by the
pipeline's signature, a version name that changes only with the compiled pipeline, and one
readable line when the server cannot be reached. (No KFP API server can be built here: its Go
module, github.com/kubeflow/pipelines, is not served by the module proxy. The client calls
themselves are the KFP SDK's.)"""

import subprocess
import sys

import pytest

from pipelines import client
from pipelines.local_stack.services import free_port
from symptom_dx import __version__


def test_parameters_are_typed_by_the_pipeline_signature():
    params = client.parameters(
        ["data_source=s3://b/Training.csv", "nb_alpha=0.25", "seed=3", "deploy=false"]
    )
    assert params == {
        "data_source": "s3://b/Training.csv",
        "nb_alpha": 0.25,
        "seed": 3,
        "deploy": False,
    }


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["nb_alpha=0.2"], "data_source=... is required"),
        (["data_source=x", "nb_alpha=lots"], "parameter nb_alpha wants a float, got 'lots'"),
        (["data_source=x", "deploy=maybe"], "parameter deploy wants a bool, got 'maybe'"),
        (["data_source=x", "learning_rate=1"], "bad parameter 'learning_rate=1'"),
    ],
)
def test_bad_parameters_are_one_line(pairs, message):
    with pytest.raises(client.PipelineClientError, match=message):
        client.parameters(pairs)


def test_the_version_name_follows_the_compiled_pipeline():
    first, name = client.compiled()
    again, same = client.compiled()
    _, other = client.compiled("registry.example/team/components:9.9.9")
    assert name == same != other
    assert first.read_text() == again.read_text()
    assert name.startswith(f"{__version__}-")


def test_an_unreachable_server_is_one_line_and_exit_1():
    host = f"http://127.0.0.1:{free_port()}"
    out = subprocess.run(
        [sys.executable, "-m", "operations.cli", "pipeline", "upload", "--host", host],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(f"error: no Kubeflow Pipelines API at {host}: ")
