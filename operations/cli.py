"""`symptom-dx`: check a dataset against the contract, look up symptom names, and operate the
served model on a cluster.

symptom-dx validate Training.csv     # exit 1 and one line per problem if it breaks the contract
symptom-dx stats Training.csv        # rows, distinct patterns, balance (JSON)
symptom-dx symptoms [--json] "keep throwing up and my head hurts, no fever"
symptom-dx deploy [--version N]      # serve the champion (or version N), verified live
symptom-dx rollback                  # serve the version deployed before, verified live
symptom-dx status                    # what is served, which version, the aliases (JSON)
symptom-dx pipeline upload           # the pipeline to a Kubeflow Pipelines API (KFP_HOST)
symptom-dx pipeline run data_source=s3://bucket/Training.csv [NAME=VALUE ...]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from symptom_dx.dataset import dataset_statistics, load_dataset
from symptom_dx.errors import DatasetError, SymptomDxError
from symptom_dx.process_exit import skip_final_collection
from symptom_dx.vocabulary import vocabulary

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
CsvPath = Annotated[Path, typer.Argument(help="a Kaggle-format symptom CSV")]


@app.command()
def validate(path: CsvPath) -> None:
    """Check a CSV against the dataset contract."""
    try:
        ds = load_dataset(path)
    except DatasetError as e:
        typer.echo(f"error: {e}", err=True)
        for problem in e.problems[1:]:
            typer.echo(f"  also: {problem}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"ok: {len(ds)} rows, {len(ds.distinct())} distinct patterns, {len(set(ds.y))} diseases"
    )


@app.command()
def stats(path: CsvPath) -> None:
    """Print dataset statistics as JSON."""
    try:
        typer.echo(json.dumps(dataset_statistics(load_dataset(path)), indent=1))
    except SymptomDxError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


# Typer keeps a docstring's single line breaks: the help is written as whole paragraphs.
SYMPTOMS_HELP = "\n\n".join(
    (
        "Show how free text (English or Korean, sentences or a list) maps to canonical symptom "
        "ids: what a person has and what they say they do not have.",
        "Prints one line per symptom understood (id, tab, label), then one per symptom the "
        "text denies (no, tab, id, tab, label); parts not understood go to stderr with close "
        "names. Exit 0 when all of the text was understood, 1 when a part was not understood "
        "or no symptom was found.",
        'With --json: prints only {"present": ids, "absent": ids, "not_understood": spans} '
        "on one line and exits 0 when at least one symptom was found (present or denied), 1 "
        "when none was (the object is printed either way).",
        "Exit 2, with one line on stderr, when the text cannot be read: longer than the "
        "contract's limit for one element (symptom_dx.contract.MAX_ELEMENT_CHARS), or Korean "
        "without the Korean analyser (the 'text' extra) installed.",
    )
)


@app.command(
    help=SYMPTOMS_HELP, short_help="Show how free text maps to symptom ids, present and denied."
)
def symptoms(
    text: Annotated[
        str, typer.Argument(help="what a person says, English or Korean: sentences or a list")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="print a JSON object instead (see above)")
    ] = False,
) -> None:
    """Show how free text maps to canonical symptom ids (see SYMPTOMS_HELP)."""
    from symptom_dx.contract import MAX_ELEMENT_CHARS
    from symptom_dx.free_text import parse_symptoms

    if len(text) > MAX_ELEMENT_CHARS:
        typer.echo(
            f"error: the text has {len(text)} characters; at most {MAX_ELEMENT_CHARS} are read",
            err=True,
        )
        raise typer.Exit(2)
    try:
        parsed = parse_symptoms(text)
    except SymptomDxError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    found = bool(parsed.present or parsed.absent)
    if as_json:
        answer = {
            "present": list(parsed.present),
            "absent": list(parsed.absent),
            "not_understood": list(parsed.not_understood),
        }
        typer.echo(json.dumps(answer, ensure_ascii=False))
        raise typer.Exit(0 if found else 1)
    vocab = vocabulary()
    for sid in parsed.present:
        typer.echo(f"{sid}\t{vocab.label(sid)}")
    for sid in parsed.absent:
        typer.echo(f"no\t{sid}\t{vocab.label(sid)}")
    for phrase in parsed.not_understood:
        close = ", ".join(vocab.suggestions(phrase)) or "no close name"
        typer.echo(f"not understood: {phrase!r} ({close})", err=True)
    if not found and not parsed.not_understood:
        typer.echo("no symptom found in the text", err=True)
    if parsed.not_understood or not found:
        raise typer.Exit(1)


@app.command("champion-uri")
def champion_uri() -> None:
    """Print the champion's s3:// model folder (for the InferenceService's storageUri).

    Reads MLFLOW_TRACKING_URI (and SYMPTOM_DX_REGISTERED_MODEL, default disease-classifier).
    """
    from symptom_dx.settings import MlflowSettings
    from symptom_dx.tracking import champion

    try:
        uri = champion(MlflowSettings()).storage_uri
    except SymptomDxError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(uri)


def _fail(e: SymptomDxError) -> typer.Exit:
    typer.echo(f"error: {e}", err=True)
    return typer.Exit(1)


def _say(line: str) -> None:
    typer.echo(line, err=True)


@app.command()
def deploy(
    version: Annotated[
        str | None, typer.Option(help="registry version to serve (default: the alias's)")
    ] = None,
    alias: Annotated[str, typer.Option(help="registry alias to serve")] = "champion",
) -> None:
    """Serve a registered model: candidate first, smoke set live, then switch; roll back on
    any failure.

    Reads MLFLOW_TRACKING_URI (and MLflow's credentials), the kubeconfig (or the pod's
    service account), SYMPTOM_DX_NAMESPACE and SYMPTOM_DX_INFERENCE_SERVICE.
    """
    _operate("deploy", version=version, alias=alias)


@app.command()
def rollback() -> None:
    """Serve the version that was in production before the last deployment."""
    _operate("rollback")


def _operate(action: str, **options: str | None) -> None:
    """``operations.deploy.<action>`` with the settings of the environment, in one line."""
    from operations import deploy as deployment
    from symptom_dx.settings import DeploySettings, MlflowSettings

    try:
        outcome = getattr(deployment, action)(
            DeploySettings(), MlflowSettings(), say=_say, **options
        )
    except SymptomDxError as e:
        raise _fail(e) from None
    typer.echo(f"serving version {outcome.release.version} ({outcome.release.storage_uri})")


@app.command()
def status() -> None:
    """Print what the cluster serves and the registry's aliases, as JSON."""
    from operations import deploy as deployment
    from symptom_dx.settings import DeploySettings, MlflowSettings

    try:
        typer.echo(json.dumps(deployment.status(DeploySettings(), MlflowSettings()), indent=1))
    except SymptomDxError as e:
        raise _fail(e) from None


pipeline_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Kubeflow Pipelines: upload, run."
)
app.add_typer(pipeline_app, name="pipeline")
KfpHost = Annotated[
    str,
    typer.Option(
        envvar="KFP_HOST",
        help="the KFP API, e.g. a port-forward: kubectl -n kubeflow port-forward "
        "svc/ml-pipeline-ui 8080:80",
    ),
]


@pipeline_app.command("upload")
def pipeline_upload(host: KfpHost = "http://localhost:8080") -> None:
    """Upload the pipeline (compiled with the images manifests/ deploys) as a new version."""
    from pipelines import client

    try:
        _, version_id, version = client.upload(host)
    except SymptomDxError as e:
        raise _fail(e) from None
    typer.echo(f"{client.PIPELINE_NAME} version {version} ({version_id})")


@pipeline_app.command("run")
def pipeline_run(
    params: Annotated[list[str], typer.Argument(help="NAME=VALUE pipeline parameters")],
    host: KfpHost = "http://localhost:8080",
    follow: Annotated[bool, typer.Option(help="wait for the run to end")] = True,
) -> None:
    """Upload (if new) and run the pipeline; print its dashboard link and follow its state."""
    from pipelines import client

    try:
        state = client.run(host, client.parameters(params), follow=follow, say=_say)
    except SymptomDxError as e:
        raise _fail(e) from None
    typer.echo(state)
    if follow and state != "SUCCEEDED":
        raise typer.Exit(1)


def main() -> None:
    """The ``symptom-dx`` command (and ``python -m operations.cli``)."""
    skip_final_collection()
    app()


if __name__ == "__main__":
    main()
