"""The free-text symptom parser: how well it reads our test sets, and what it costs.

Per language: micro F1 over present symptoms on the dev and heldout splits of
``data/free_text/<language>.tsv``, how many denied symptoms it reported present (must be 0),
exact-sentence accuracy; parse time (median, p99) of a five-symptom sentence in each language;
and, in a fresh process, Kiwi's load time and the RSS it adds (the model server's pod has
512 MiB), as the parser configures it (``free_text_ko.KIWI_OPTIONS``: no built-in
dictionaries) and, for comparison, with everything Kiwi loads by default.

    .venv/bin/python bench/free_text_bench.py [--repeat 3000] [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

from symptom_dx.free_text import parse_symptoms, read_rows, score

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "free_text"
FIVE = {
    "en": "i have a bad headache, high fever, chills, sore throat and i keep throwing up",
    "ko": "머리가 아프고 열이 나고 오한이 들고 목이 따갑고 계속 토해요",
}

# Run in a fresh interpreter: RSS before and after loading Kiwi (and the Korean lexicon).
_MEMORY_PROBE = """
import json, sys, time
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
from symptom_dx.free_text import parse_symptoms
parse_symptoms("fever and cough")  # English resources, so that only Korean is measured
texts = [line.split("\t")[1] for line in open(sys.argv[2], encoding="utf-8")][1:] * 20
out = {"rss_before_mib": rss()}
if sys.argv[1] == "parser":
    from symptom_dx.free_text_ko import korean_resources
    t = time.perf_counter(); korean_resources(); out["load_s"] = time.perf_counter() - t
    analyse = parse_symptoms
else:  # Kiwi as it comes: default, multi-word and typo dictionaries
    from kiwipiepy import Kiwi
    t = time.perf_counter()
    kiwi = Kiwi()  # kept: a dropped instance frees part of its memory before RSS is read
    kiwi.tokenize("")
    out["load_s"] = time.perf_counter() - t
    analyse = kiwi.tokenize
out["rss_loaded_mib"] = rss()
for text in texts:
    analyse(text)
out["rss_used_mib"] = rss()
print(json.dumps(out))
"""


def quality() -> None:
    print("quality (micro F1 over present ids; denied = denied symptoms reported present)")
    for language in ("en", "ko"):
        for split in ("dev", "heldout"):
            s = score(read_rows(DATA / f"{language}.tsv", split))
            print(
                f"  {language} {split:8} rows {s['rows']:3}  F1 {s['f1']:.3f}  "
                f"P {s['precision']:.3f} R {s['recall']:.3f}  denied {s['denied_reported_present']}"
                f"  absent recall {s['absent_recall']:.3f}"
                f"  exact sentences {s['exact_sentence_accuracy']:.3f}"
            )


def speed(repeat: int) -> None:
    print(f"parse time of a five-symptom sentence ({repeat} runs)")
    for language, text in FIVE.items():
        parsed = parse_symptoms(text)
        assert len(parsed.present) == 5, parsed
        times = sorted(timeit.repeat(lambda t=text: parse_symptoms(t), number=1, repeat=repeat))
        median = statistics.median(times) * 1e3
        p99 = times[int(len(times) * 0.99) - 1] * 1e3
        print(f"  {language}  median {median:.3f} ms  p99 {p99:.3f} ms")


def memory() -> None:
    print("Kiwi in a fresh process (RSS added by loading it)")
    for what in ("parser", "full Kiwi"):  # the first word is the probe's mode
        argv = [sys.executable, "-c", _MEMORY_PROBE, what.split()[0], str(DATA / "ko.tsv")]
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        m = json.loads(out.stdout.strip().splitlines()[-1])
        before = m["rss_before_mib"]
        print(
            f"  {what:9}  load {m['load_s']:.2f} s  RSS +{m['rss_loaded_mib'] - before:.0f} MiB "
            f"loaded, +{m['rss_used_mib'] - before:.0f} MiB after analysing the Korean test set "
            f"20 times ({before:.0f} -> {m['rss_used_mib']:.0f} MiB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3000)
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-process probe")
    args = parser.parse_args()
    quality()
    speed(args.repeat)
    if not args.no_memory:
        memory()


if __name__ == "__main__":
    main()
