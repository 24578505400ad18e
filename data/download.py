"""Download the Kaggle "Disease Prediction Using Machine Learning" files, checked by sha256.

    python data/download.py [DEST]      (default: data/downloads/kaggle-disease-prediction)

The files are not part of this repository; the pinned copies and their sha256 are in
``symptom_dx.kaggle``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from symptom_dx.errors import SourceError
from symptom_dx.kaggle import download

DEFAULT_DEST = Path(__file__).resolve().parent / "downloads" / "kaggle-disease-prediction"
DestArg = Annotated[Path, typer.Argument(help="folder to download into")]


def main(dest: DestArg = DEFAULT_DEST) -> None:
    try:
        print(download(dest))
    except SourceError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    typer.run(main)
