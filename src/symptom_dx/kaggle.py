"""The Kaggle "Disease Prediction Using Machine Learning" files: where the public copies are and
the sha256 of the exact bytes this project was built and tested with.

Some other copies online are edited (one replaces Tuberculosis with "Corona"), so every file is
checked against its pinned sha256 and kept only if it matches.
"""

from __future__ import annotations

import sys
from pathlib import Path

from symptom_dx.sources import fetch, sha256_of

BASE = "https://raw.githubusercontent.com/itachi9604/healthcare-chatbot"
COMMIT = "e4194028a436f6e9beed56bea6f424018734a651"
# file name -> (path in the public copy, sha256)
FILES = {
    "Training.csv": (
        "Data/Training.csv",
        "cc00c869b702c0c90eef3c1fb4d0b54f16965f8def2dec7e1bf91d0b76480ac3",
    ),
    "Testing.csv": (
        "Data/Testing.csv",
        "97bfb6140a2edabed069afca439978700661b105b654bfe82fb92fb1face4f3a",
    ),
    "symptom_Description.csv": (
        "MasterData/symptom_Description.csv",
        "549c59eed9dd24f790403a2dde296eb58ec398297a14b1734acad3ef97c02bce",
    ),
    "symptom_precaution.csv": (
        "MasterData/symptom_precaution.csv",
        "209d408c8c26b6d1f7e78cec60a88201245cfa31dc82d3cb5b808de63311eb7a",
    ),
    "Symptom_severity.csv": (
        "MasterData/Symptom_severity.csv",
        "f5830d49fe3ff47d67805a4c1f45b16385821c5a8e1d63df9f13c9cb390757d3",
    ),
}


def url_of(name: str, base: str = BASE) -> str:
    return f"{base}/{COMMIT}/{FILES[name][0]}"


def sha256_pin(name: str) -> str:
    return FILES[name][1]


def download(dest: Path, base: str = BASE) -> Path:
    """Download whatever is missing or different into ``dest``; return the folder."""
    for name, (_, sha) in FILES.items():
        target = dest / name
        if target.is_file() and sha256_of(target) == sha:
            continue
        print(f"downloading {name}", file=sys.stderr)
        fetch(url_of(name, base), target, sha256=sha)
    return dest
