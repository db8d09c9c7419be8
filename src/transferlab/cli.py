"""The command-line app. Thin on purpose: parse, call one library function, print."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from transferlab.errors import RunError, UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="transferlab")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def app(verbose: bool) -> None:
    """Controlled transfer studies of language models."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# --- analysis -------------------------------------------------------------------------------


@app.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory for tables and figures.",
)
@click.option(
    "--metric", default=None, help="Delta column to analyse (default: the headline metric)."
)
@click.option(
    "--family",
    "families",
    multiple=True,
    metavar="MODEL=FAMILY",
    help="Override the family read from a model's name (repeatable).",
)
@click.option(
    "--task-group",
    "task_groups",
    multiple=True,
    metavar="NAME=TASK[,TASK...]",
    help="Also split the analysis by this group of tasks, e.g. curated=global_mmlu (repeatable).",
)
@click.option(
    "--language-family",
    "language_families",
    multiple=True,
    metavar="LANG=FAMILY",
    help="Set a language's family for the roles by family (repeatable; default: the reference "
    "study's families).",
)
def analyze(
    results: Path,
    out_dir: Path,
    metric: str | None,
    families: tuple[str, ...],
    task_groups: tuple[str, ...],
    language_families: tuple[str, ...],
) -> None:
    """Reproduce the reference study's tables and figures from a results table."""
    from transferlab.analysis.command import analyze_results

    regimes = analyze_results(
        results,
        out_dir,
        metric=metric,
        families=families,
        task_groups=task_groups,
        language_families=language_families,
    )
    click.echo(regimes.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    click.echo(f"Wrote tables and figures to {out_dir}")


@app.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV file in the paper's schema.",
)
def export(results: Path, out_file: Path) -> None:
    """Convert a results table (per-seed export or run directory) to the paper's schema."""
    from transferlab.analysis.command import export_results

    n = export_results(results, out_file)
    click.echo(f"Wrote {n} rows to {out_file}")


# --- prediction -----------------------------------------------------------------------------


@app.group()
def tasks() -> None:
    """List and inspect tasks."""


@tasks.command("list")
def tasks_list() -> None:
    """List registered tasks with their languages and sizes."""
    from transferlab.tasks import describe_tasks

    click.echo(describe_tasks())


@tasks.command("show")
@click.argument("name")
@click.option("--n", "n_items", default=3, show_default=True, help="How many items to render.")
@click.option("--split", default="test", show_default=True)
@click.option("--trust-task-code", is_flag=True,
              help="Import an lm-eval task's `!function` code from its folder.")  # fmt: skip
def tasks_show(name: str, n_items: int, split: str, trust_task_code: bool) -> None:
    """Render items of TASK or TASK:LANG with their choices and gold answer."""
    from transferlab.tasks import render_task

    click.echo(render_task(name, n_items=n_items, split=split, trust_task_code=trust_task_code))


# --- models ---------------------------------------------------------------------------------


@app.group()
def models() -> None:
    """Prepare and list models."""


@models.command("prepare")
@click.argument("ref")
def models_prepare(ref: str) -> None:
    """Resolve REF (packaged preset, GGUF file, HF folder) to a ready local folder."""
    from transferlab.models import resolve_model

    click.echo(resolve_model(ref))


# --- evaluation and training ----------------------------------------------------------------


@app.command()
@click.option("--model", "model_ref", required=True, help="Preset name, HF folder or GGUF file.")
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    type=click.Path(path_type=Path),
    help="PEFT adapter folder (repeatable).",
)
@click.option(
    "--task",
    "task_refs",
    multiple=True,
    required=True,
    help="TASK, TASK:LANG or a task YAML (repeatable).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option(
    "--dtype",
    default="auto",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    show_default=True,
    help="auto: bfloat16 where the device computes it natively, else float32.",
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--limit", default=None, type=int, help="At most this many items per target.")
@click.option("--split", default="test", show_default=True)
@click.option("--trust-task-code", is_flag=True,
              help="Import an lm-eval task's `!function` code from its folder.")  # fmt: skip
def evaluate(
    model_ref, adapters, task_refs, out_dir, dtype, device, batch_size, limit, split,
    trust_task_code,
) -> None:  # fmt: skip
    """Score the base model and every adapter on every target (acc, acc_norm)."""
    from transferlab.scoring import evaluate_command

    scores = evaluate_command(
        model_ref,
        list(adapters),
        list(task_refs),
        out_dir,
        dtype=dtype,
        device=device,
        batch_size=batch_size,
        limit=limit,
        split=split,
        trust_task_code=trust_task_code,
    )
    click.echo(scores.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    click.echo(f"Wrote {out_dir / 'items.jsonl'} and {out_dir / 'scores.csv'}")


@app.command()
@click.option("--model", "model_ref", required=True)
@click.option("--task", "task_ref", required=True)
@click.option("--language", required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--seed", default=42, show_default=True)
@click.option(
    "--dtype",
    default=None,
    type=click.Choice(["auto", "float32", "bfloat16"]),
    help="Autocast dtype (default auto: bfloat16 where the device computes it natively).",
)
@click.option(
    "--set", "overrides", multiple=True, help="Training setting override key=value (repeatable)."
)
def train(model_ref, task_ref, language, out_dir, seed, dtype, overrides) -> None:
    """Fine-tune a LoRA adapter (or every weight: --set method=full) on one (task, language) source."""
    from transferlab.training import train_command

    overrides = [f"dtype={dtype}", *overrides] if dtype else list(overrides)
    summary = train_command(model_ref, task_ref, language, out_dir, seed=seed, overrides=overrides)
    click.echo(summary)


@app.command()
def env() -> None:
    """Show the CPU (and GPU), the dtype auto resolves to and the versions of key packages."""
    from transferlab.environment import describe_environment

    click.echo(describe_environment())


# --- studies --------------------------------------------------------------------------------


@app.command()
@click.argument("study", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", default=None, type=click.Path(path_type=Path))
@click.option("--executor", default=None, type=click.Choice(["local", "ray"]))
@click.option(
    "--set", "overrides", multiple=True, help="Config override key.path=value (repeatable)."
)
@click.option("--trust-task-code", is_flag=True,
              help="Import lm-eval task files' `!function` code (same as trust_task_code: true).")  # fmt: skip
def run(study, out_dir, executor, overrides, trust_task_code) -> None:
    """Plan a study, skip what is done, run the rest, write results.csv and report.html."""
    from transferlab.runner import run_study

    overrides = [*overrides, "trust_task_code=true"] if trust_task_code else overrides
    outcome = run_study(study, out_dir=out_dir, executor=executor, overrides=list(overrides))
    click.echo(outcome.summary)
    if outcome.failed:
        raise RunError(f"{outcome.failed} job(s) failed; see `transferlab status {study}`")


@app.command()
@click.argument("study", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", default=None, type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True)
@click.option("--trust-task-code", is_flag=True, help="As for `run`.")
def status(study, out_dir, overrides, trust_task_code) -> None:
    """Show done / pending / failed jobs of a study."""
    from transferlab.runner import study_status

    overrides = [*overrides, "trust_task_code=true"] if trust_task_code else overrides
    click.echo(study_status(study, out_dir=out_dir, overrides=list(overrides)))


@app.group()
def config() -> None:
    """Inspect study configs."""


@config.command("show")
@click.argument("study", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True)
def config_show(study, overrides) -> None:
    """Print the fully resolved study config."""
    from transferlab.config import load_study

    click.echo(load_study(study, overrides=list(overrides)).to_yaml())


@app.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out_file", default=None, type=click.Path(path_type=Path))
@click.option(
    "--metric", default=None, help="Delta column to report (default: the headline metric)."
)
@click.option(
    "--screenshot",
    default=None,
    type=click.Path(path_type=Path),
    help="Also render the report in headless Chromium and save a full-page PNG here.",
)
@click.option(
    "--task-group",
    "task_groups",
    multiple=True,
    metavar="NAME=TASK[,TASK...]",
    help="Also split the analysis by this group of tasks (repeatable; default: the study's "
    "task_groups from run_info.json).",
)
def report(
    source: Path,
    out_file: Path | None,
    metric: str | None,
    screenshot: Path | None,
    task_groups: tuple[str, ...],
) -> None:
    """Write the single-file HTML report of a run directory or a results table."""
    from transferlab.analysis.command import parse_task_groups
    from transferlab.report import require_chromium, screenshot_report, write_report

    if screenshot is not None:
        require_chromium()  # before anything is written
    groups = parse_task_groups(task_groups) if task_groups else None
    written = write_report(source, out_file, metric=metric, task_groups=groups)
    click.echo(f"Report: {written}")
    if screenshot is not None:
        click.echo(f"Screenshot: {screenshot_report(written, screenshot)}")


from transferlab.cli_align_predict import align, predict, recommend  # noqa: E402

for _command in (predict, recommend, align):
    app.add_command(_command)


def main() -> None:
    """Console entry point: user errors are one line and exit 2; run failures exit 1."""
    try:
        app(standalone_mode=False)
    except UserError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        sys.exit(2)
    except RunError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
