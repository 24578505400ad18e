"""The two lock files pin the same versions: images (runtime lock) match what tests ran."""

from testkit import REPO


def pins(name: str) -> dict[str, str]:
    out = {}
    for line in (REPO / name).read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            package, version = line.strip().split("==")
            out[package.split("[")[0].lower()] = version
    return out


def test_runtime_lock_is_a_subset_of_the_dev_lock():
    runtime, dev = pins("requirements-runtime.lock"), pins("requirements.lock")
    assert {"kserve", "mlflow", "kfp", "scikit-learn", "numpy", "joblib"} <= set(runtime)
    assert {p: v for p, v in runtime.items() if dev.get(p) != v} == {}
    assert "pytest" not in runtime and "playwright" not in runtime
