"""How many of lm-evaluation-harness's own task files transferlab reads, and why the rest fail.

Samples task YAMLs (seeded) of a given output type from the installed lm-eval's task library and
reads each with `transferlab.tasks.get_task`. A file counts as read when it parses up to its
data: the hub is unreachable here, so a file that fails only for want of its dataset counts.

    .venv/bin/python benchmarks/lmeval_task_census.py [--output-type multiple_choice] [--n 150]
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter
from pathlib import Path

import yaml


def _output_type(path: Path, seen: tuple[Path, ...] = ()) -> str | None:
    """Return the file's output_type, following `include` as lm-eval does."""
    text = path.read_text(encoding="utf-8", errors="replace")
    doc = yaml.load(re.sub(r"!function\s+\S+", "fn", text), Loader=yaml.SafeLoader) or {}
    if not isinstance(doc, dict):
        return None
    if "output_type" in doc:
        return doc["output_type"]
    included = doc.get("include")
    if included and (path.parent / str(included)).is_file() and path not in seen:
        return _output_type(path.parent / str(included), (*seen, path))
    return None


def classify(message: str) -> str:
    """Return the reason class of one refusal."""
    for needle, reason in (
        ("needs the Hugging Face hub", "read (data on the hub)"),
        ("TRANSFERLAB_DATASETS", "read (data on the hub)"),
        ("!function", "`!function` (Python code)"),
        ("num_fewshot", "num_fewshot"),
        ("not supported by transferlab", "keys: " + message.split(": ")[1].split(": not")[0][:50]),
    ):
        if needle in message:
            return reason
    return "other: " + message.split(": ", 1)[-1][:70]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-type", default="multiple_choice")
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trust-task-code", action="store_true")
    args = parser.parse_args()

    import lm_eval

    from transferlab.errors import UserError
    from transferlab.tasks import get_task

    library = Path(lm_eval.__file__).parent / "tasks"
    files = sorted(p for p in library.rglob("*.yaml") if _output_type(p) == args.output_type)
    sample = random.Random(args.seed).sample(files, min(args.n, len(files)))
    reasons: Counter[str] = Counter()
    for path in sample:
        try:
            get_task(str(path), trust_task_code=args.trust_task_code)
            reasons["read (data local)"] += 1
        except UserError as error:
            reasons[classify(str(error))] += 1
        except Exception as error:  # noqa: BLE001 - a census counts every outcome
            reasons[f"crash: {type(error).__name__}"] += 1
    read = sum(n for r, n in reasons.items() if r.startswith("read"))
    print(f"lm-eval {lm_eval.__version__}: {len(files)} {args.output_type} task files, "
          f"{len(sample)} sampled (seed {args.seed}); read as far as their data: {read} "
          f"({100 * read / len(sample):.0f} %)")  # fmt: skip
    for reason, count in reasons.most_common():
        print(f"  {count:4d}  {reason}")


if __name__ == "__main__":
    main()
