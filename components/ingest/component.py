"""ingest: fetch the symptom CSV and the knowledge tables, check their sha256, validate them."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Markdown, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest_dataset(
    dataset: Output[Dataset],
    statistics: Output[Markdown],
    knowledge: Output[Artifact],
    source: str,
    sha256: str = "",
    knowledge_source: str = "",
    store_in_bucket: bool = True,
) -> str:
    """Fetches and validates the training data.

    Args:
        dataset: The validated CSV in canonical form (symptom ids in feature order, canonical
            disease names).
        statistics: Dataset statistics as Markdown (rows, distinct patterns, balance).
        knowledge: The description, precaution and severity tables the UI shows (a folder),
            validated; they travel with the model.
        source: A local path, an http(s) URL or an s3:// URI of a Kaggle-format CSV.
        sha256: Expected sha256 of the source file; empty to skip the check. When given, the
            knowledge tables must match their pinned sha256 too (symptom_dx.kaggle).
        knowledge_source: Folder (path, http(s) or s3:// prefix) of the three tables; empty
            for the folder of ``source``.
        store_in_bucket: Also keep the validated file in the bucket under its content hash.

    Returns:
        The sha256 of the source file.
    """
    import json
    from pathlib import Path

    from symptom_dx.settings import S3Settings
    from symptom_dx.steps import ingest, run_step
    from symptom_dx.storage import ObjectStore

    store = ObjectStore(S3Settings()) if store_in_bucket else None
    stats_json = Path(dataset.path).with_suffix(".statistics.json")
    stats = run_step(
        "ingest",
        ingest,
        source,
        Path(dataset.path),
        stats_json,
        sha256=sha256,
        store=store,
        knowledge_source=knowledge_source,
        knowledge_dir=Path(knowledge.path),
    )
    knowledge.metadata.update(stats["knowledge_sha256"])
    dataset.metadata.update(
        {k: stats[k] for k in ("rows", "distinct_patterns", "diseases", "source_sha256")}
    )
    lines = ["# Dataset statistics", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in stats.items() if not isinstance(v, dict | list)]
    lines += ["", "```json", json.dumps(stats, indent=1), "```"]
    Path(statistics.path).write_text("\n".join(lines) + "\n")
    return stats["source_sha256"]
