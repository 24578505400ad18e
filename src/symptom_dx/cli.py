"""`symptom-dx`: check a dataset against the contract, look up symptom names.

symptom-dx validate Training.csv     # exit 1 and one line per problem if it breaks the contract
symptom-dx stats Training.csv        # rows, distinct patterns, balance (JSON)
symptom-dx symptoms "itchy skin, skin rashh, fever"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from symptom_dx.dataset import dataset_statistics, load_dataset
from symptom_dx.errors import DatasetError, SymptomDxError
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


@app.command()
def symptoms(text: Annotated[str, typer.Argument(help="comma-separated symptom names")]) -> None:
    """Show how free text maps to canonical symptom ids."""
    ids, missed = vocabulary().understand(text)
    for sid in ids:
        typer.echo(f"{sid}\t{vocabulary().label(sid)}")
    for phrase in missed:
        close = ", ".join(vocabulary().suggestions(phrase)) or "no close name"
        typer.echo(f"not understood: {phrase!r} ({close})", err=True)
    if missed:
        raise typer.Exit(1)


@app.command("champion-uri")
def champion_uri() -> None:
    """Print the champion's s3:// model folder (for the InferenceService's storageUri).

    Reads MLFLOW_TRACKING_URI (and SYMPTOM_DX_REGISTERED_MODEL, default disease-classifier).
    """
    from symptom_dx.settings import MlflowSettings
    from symptom_dx.tracking import champion

    try:
        _, uri = champion(MlflowSettings())
    except SymptomDxError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(uri)


if __name__ == "__main__":
    app()
