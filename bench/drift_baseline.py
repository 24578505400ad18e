"""What the drift distances look like under normal and shifted traffic, offline.

The thresholds of ``DiseaseClassifierInputDrift`` and ``DiseaseClassifierPredictionDrift``
(``manifests/monitoring/prometheusrule.yaml``) come from this measurement. It computes, in
Python, exactly what the recording rules compute in PromQL: the total variation distance
between the live mix (symptoms reported, diseases ranked first) and the training reference
the model server exports from ``metadata.json``.

For each window volume (patients per window) it draws many windows of *normal* traffic
(the evaluation's k=3 vignettes of the held-out patterns, resampled) and of *shifted*
traffic (k=3 respiratory symptoms only), and prints mean, p99 and max of each distance.

    .venv/bin/python bench/drift_baseline.py [--windows 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VOLUMES = (50, 100, 200, 500, 1000, 5000)


def measure(data_dir: Path, windows: int, seed: int = 0) -> dict:
    from pipelines.local_stack.traffic import (
        normal_patients,
        shifted_patients,
        symptom_counts,
        top_diseases,
        total_variation,
    )
    from symptom_dx.dataset import load_dataset
    from symptom_dx.steps import train_default_candidate

    model, split = train_default_candidate(load_dataset(data_dir / "Training.csv"))
    reference = model.reference
    if reference is None:
        raise SystemExit("the trained model has no training reference in its metadata")
    pool = normal_patients(split.test, k=3)
    pool_first = top_diseases(model, pool)
    rng = np.random.default_rng(seed)

    def distances(patients: list, first: list[str]) -> tuple[float, float]:
        return (
            total_variation(symptom_counts(patients), reference.symptom_share),
            total_variation(Counter(first), reference.disease_share),
        )

    def summary(values: list[float]) -> dict[str, float]:
        a = np.asarray(values)
        return {
            "mean": round(float(a.mean()), 3),
            "p99": round(float(np.quantile(a, 0.99)), 3),
            "max": round(float(a.max()), 3),
        }

    results: dict = {
        "pool": {"patients": len(pool), "held_out_patterns": len(split.test)},
        "all_normal": dict(zip(("input", "prediction"), distances(pool, pool_first), strict=True)),
        "volumes": {},
    }
    for n in VOLUMES:
        normal, shifted = [], []
        for _ in range(windows):
            pick = rng.integers(0, len(pool), size=n)
            normal.append(distances([pool[i] for i in pick], [pool_first[i] for i in pick]))
        for w in range(min(windows, 200)):  # far from the threshold: fewer draws suffice
            patients = shifted_patients(n, k=3, seed=seed + 1 + w)
            shifted.append(distances(patients, top_diseases(model, patients)))
        results["volumes"][n] = {
            "normal": {
                "input": summary([d[0] for d in normal]),
                "prediction": summary([d[1] for d in normal]),
            },
            "shifted": {
                "input": summary([d[0] for d in shifted]),
                "prediction": summary([d[1] for d in shifted]),
            },
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("DATA_DIR") or None)
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.data_dir is None:
        from symptom_dx import kaggle

        args.data_dir = kaggle.download(REPO / "data" / "downloads" / "kaggle-disease-prediction")
    results = measure(Path(args.data_dir), args.windows)
    a = results["all_normal"]
    print(
        f"normal pool: {results['pool']['patients']} vignettes of "
        f"{results['pool']['held_out_patterns']} held-out patterns; distance of the whole pool:"
        f" input {a['input']:.3f}, prediction {a['prediction']:.3f}"
    )
    print(f"{'patients':>8} | {'traffic':8} | {'input mean/p99/max':22} | prediction mean/p99/max")
    for n, row in results["volumes"].items():
        for kind in ("normal", "shifted"):
            i, p = row[kind]["input"], row[kind]["prediction"]
            print(
                f"{n:>8} | {kind:8} | {i['mean']:.3f} / {i['p99']:.3f} / {i['max']:.3f}"
                f"    | {p['mean']:.3f} / {p['p99']:.3f} / {p['max']:.3f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
