"""Peak memory of `make run`: every process it starts (S3, MLflow, the pipeline, the model
server, the UI, Prometheus, Alertmanager, and `make run` itself), summed over time.

Runs `python -m pipelines.run_local run` on free loopback ports with a fresh state folder,
samples the whole process tree every 0.25 s (resident set, and proportional set size, which
counts a page shared by N processes as 1/N to each), sends traffic once it serves, then stops
it with SIGINT. Prints the peak of the sum per phase and the processes at the peak.

    .venv/bin/python bench/stack_memory.py [--requests 2000] [--repo PATH] [--json out.json]

``--repo`` measures another checkout with this virtual environment (e.g. an older commit,
``git archive <rev> | tar -x -C /tmp/before``), for a before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

from pipelines.local_stack.services import free_port
from pipelines.run_local import PORT_VARIABLES

REPO = Path(__file__).resolve().parents[1]
TARGET_MB = 1536


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (services in their own sessions are still children)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory(pid: int) -> tuple[str, int, int] | None:
    """(command, RSS kB, PSS kB) of a live process."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    values = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if ":" in line}
    words = [a.decode(errors="replace") for a in argv if a][:4]
    command = " ".join(Path(w).name if i == 0 else w for i, w in enumerate(words))[:70]
    return command, values.get("Rss", 0), values.get("Pss", 0)


class Sampler(threading.Thread):
    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.phase, self.done = root, "start", False
        self.peaks: dict[str, dict] = {}

    def run(self) -> None:
        while not self.done:
            procs = [m for m in map(memory, tree(self.root)) if m]
            rss, pss = sum(p[1] for p in procs), sum(p[2] for p in procs)
            peak = self.peaks.get(self.phase)
            if peak is None or rss > peak["rss_kb"]:
                self.peaks[self.phase] = {
                    "rss_kb": rss,
                    "pss_kb": pss,
                    "processes": sorted(procs, key=lambda p: -p[1]),
                }
            time.sleep(0.25)


def traffic(model_url: str, ui_url: str, requests: int) -> None:
    from symptom_dx.vocabulary import vocabulary

    ids = vocabulary().ids
    with httpx.Client(timeout=10) as client:
        for i in range(requests):
            patients = [
                ", ".join(ids[(i + j * 7 + k * 13) % 131] for k in range(3)) for j in range(8)
            ]
            body = {
                "inputs": [
                    {"name": "symptoms", "datatype": "BYTES", "shape": [8], "data": patients}
                ]
            }
            client.post(f"{model_url}/v2/models/disease-classifier/infer", json=body)
            if i % 100 == 0:
                client.get(ui_url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to run")
    parser.add_argument("--requests", type=int, default=2000, help="8 patients each")
    parser.add_argument("--data-dir", default=os.environ.get("DATA_DIR") or None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.data_dir is None:
        from symptom_dx import kaggle

        args.data_dir = kaggle.download(REPO / "data" / "downloads" / "kaggle-disease-prediction")
    ports = {name: free_port() for name in PORT_VARIABLES}
    state = Path(tempfile.mkdtemp(prefix="stack-memory-"))
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "DATA_DIR": str(args.data_dir),
        "STATE_DIR": str(state),
        "PYTHONUNBUFFERED": "1",
    }
    if args.repo.resolve() != REPO:
        env["PYTHONPATH"] = f"{args.repo / 'src'}:{args.repo}"
    log = state / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.run_local", "run"],
            cwd=args.repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    sampler = Sampler(proc.pid)
    sampler.start()
    started = time.monotonic()
    try:
        sampler.phase = "start and pipeline"
        while "Ctrl+C stops everything" not in log.read_text():
            if proc.poll() is not None or time.monotonic() - started > 300:
                print(log.read_text()[-3000:])
                return 1
            time.sleep(0.5)
        sampler.phase = "serving, idle"
        time.sleep(10)
        sampler.phase = "serving, traffic"
        model = f"http://127.0.0.1:{ports['MODEL_HTTP_PORT']}"
        traffic(model, f"http://127.0.0.1:{ports['UI_PORT']}", args.requests)
        time.sleep(5)
    finally:
        sampler.phase = "stopping"
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        sampler.done = True
        sampler.join()
        shutil.rmtree(state, ignore_errors=True)
    overall = max(p["rss_kb"] for p in sampler.peaks.values())
    print(f"`make run` of {args.repo}: peak memory of all its processes, summed")
    for phase, peak in sampler.peaks.items():
        rss, pss = peak["rss_kb"] / 1024, peak["pss_kb"] / 1024
        print(f"  {phase:20} RSS {rss:7.0f} MB   PSS {pss:7.0f} MB")
    serving = sampler.peaks.get("serving, traffic") or sampler.peaks["serving, idle"]
    print("processes at the serving peak (RSS MB):")
    for command, rss, _ in serving["processes"]:
        print(f"  {rss / 1024:6.0f}  {command}")
    verdict = "under" if overall / 1024 < TARGET_MB else "OVER"
    print(f"overall peak {overall / 1024:.0f} MB: {verdict} the {TARGET_MB} MB target")
    if args.json:
        args.json.write_text(json.dumps({"repo": str(args.repo), "peaks": sampler.peaks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
