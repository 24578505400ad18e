"""The largest "near-miss" request the caps accept (every name misspelt), against a real model
server: how long it takes, and how long ``/v2/health/ready`` waits while it runs.

4 patients x 300 different symptom names, each a display label with one letter changed that
the normaliser still accepts (so its fuzzy matching runs, and succeeds, for every name), about
22 KB of JSON. The server answers or refuses it (400 naming the limit); either way it must be
quick, and the health check must not wait behind it.

    .venv/bin/python bench/near_miss.py [--model-dir DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from pipelines.local_stack.model_server import start_model_server
from pipelines.local_stack.services import free_port
from symptom_dx.contract import MODEL_NAME, SYMPTOMS
from symptom_dx.vocabulary import vocabulary

REPO = Path(__file__).resolve().parents[1]
PATIENTS = 4
NAMES = 300


def near_miss_texts(patients: int = PATIENTS, names: int = NAMES, seed: int = 0) -> list[str]:
    """One comma-separated list per patient of distinct accepted misspellings of labels."""
    vocab = vocabulary()
    labels = [s.label.lower() for s in vocab.selectable]
    rng = random.Random(seed)
    seen: set[str] = set()
    spelled: list[str] = []
    while len(spelled) < patients * names:
        label = rng.choice(labels)
        i = rng.randrange(len(label))
        name = label[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + label[i + 1 :]
        if name not in seen and name != label and vocab.lookup(name) is not None:
            seen.add(name)
            spelled.append(name)
    return [", ".join(spelled[i * names : (i + 1) * names]) for i in range(patients)]


def near_miss_body(seed: int = 0) -> dict:
    texts = near_miss_texts(seed=seed)
    return {"inputs": [SYMPTOMS.tensor([len(texts)], texts)]}


def measure(url: str, seed: int) -> dict:
    """Send one near-miss request while polling readiness; the timings in seconds."""
    done = threading.Event()
    waits: list[float] = []

    def poll() -> None:
        with httpx.Client(timeout=60) as health:
            while not done.is_set():
                t = time.perf_counter()
                health.get(f"{url}/v2/health/ready")
                waits.append(time.perf_counter() - t)

    body = near_miss_body(seed)
    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.05)
    t = time.perf_counter()
    answer = httpx.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=body, timeout=120)
    took = time.perf_counter() - t
    done.set()
    poller.join()
    error = answer.json().get("error", "") if answer.status_code != 200 else ""
    return {"status": answer.status_code, "seconds": took, "ready_max": max(waits), "error": error}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a model folder (default: train one)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="near-miss-"))
    model_dir = args.model_dir
    if model_dir is None:
        from symptom_dx import kaggle
        from symptom_dx.dataset import load_dataset
        from symptom_dx.steps import train_default_candidate

        data = Path(
            os.environ.get("DATA_DIR")
            or kaggle.download(REPO / "data" / "downloads" / "kaggle-disease-prediction")
        )
        model, _ = train_default_candidate(load_dataset(data / "Training.csv"))
        model_dir = model.save(work / "model")
    print(f"near-miss body: {len(httpx.Request('POST', '/', json=near_miss_body()).content)} bytes")
    svc = start_model_server(model_dir, free_port(), free_port(), work / "logs")
    try:
        for seed in range(args.rounds):
            m = measure(svc.url, seed)
            print(
                f"round {seed + 1}: HTTP {m['status']} in {m['seconds']:.3f} s, "
                f"/v2/health/ready waited at most {m['ready_max']:.3f} s  {m['error'][:90]}"
            )
    finally:
        svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
