"""``serving.metrics``: the ranked-patient counters, read back as a scrape reads them."""

from __future__ import annotations

import threading

import numpy as np
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from serving.metrics import ModelMetrics
from symptom_dx.vocabulary import vocabulary

CLASSES = ["Acne", "Allergy", "Malaria"]
PREDICTIONS = "disease_classifier_predictions_total"
SEEN = "disease_classifier_symptoms_seen_total"


def counts(model_name: str, name: str, label: str) -> dict[str, float]:
    """``name``'s samples of ``model_name`` by ``label``, from the registry's exposition."""
    text = generate_latest(REGISTRY).decode()
    return {
        s.labels[label]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels["model_name"] == model_name
    }


def test_every_label_set_is_exported_from_the_load_on():
    ModelMetrics("metrics-fresh", CLASSES, None)
    assert counts("metrics-fresh", PREDICTIONS, "disease") == dict.fromkeys(CLASSES, 0.0)
    assert counts("metrics-fresh", SEEN, "symptom") == dict.fromkeys(vocabulary().ids, 0.0)


def test_a_batch_counts_as_its_patients_one_by_one():
    rng = np.random.default_rng(0)
    present = [rng.choice(40, 3, replace=False).tolist() for _ in range(64)]
    present[5].append(present[5][0])  # a repeated symptom counts twice, as it always did
    top = [CLASSES[i % 3] for i in range(64)]
    ModelMetrics("metrics-batch", CLASSES, None).ranked(present, top, "names")
    one_by_one = ModelMetrics("metrics-rows", CLASSES, None)
    for given, disease in zip(present, top, strict=True):
        one_by_one.ranked([given], [disease], "names")
    for name, label in ((PREDICTIONS, "disease"), (SEEN, "symptom")):
        assert counts("metrics-batch", name, label) == counts("metrics-rows", name, label)
    assert sum(counts("metrics-batch", PREDICTIONS, "disease").values()) == 64
    assert sum(counts("metrics-batch", SEEN, "symptom").values()) == 3 * 64 + 1


def test_counts_go_on_across_threads_and_reloads():
    """The loop and the worker thread count at once, and a model loaded again under its name
    (the repository extension's unload and load) counts on, as Counter children did."""
    first = ModelMetrics("metrics-threads", CLASSES, None)

    def rank(metrics: ModelMetrics) -> None:
        for i in range(500):
            if i % 2:
                metrics.ranked([[0, 1]], ["Acne"], "names")  # one patient
            else:
                metrics.ranked([[0], [1]], ["Acne", "Acne"], "names")  # a batch of two

    reloaded = ModelMetrics("metrics-threads", CLASSES, None)
    workers = [threading.Thread(target=rank, args=(m,)) for m in (first, first, first, reloaded)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    seen = counts("metrics-threads", SEEN, "symptom")
    ids = vocabulary().ids
    assert seen[ids[0]] == seen[ids[1]] == 4 * 500
    assert counts("metrics-threads", PREDICTIONS, "disease")["Acne"] == 4 * 750
