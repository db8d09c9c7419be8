"""The `predict`, `recommend` and `align` commands: parse, call one library function, print.

They are registered on the app in ``cli.py``, which stays the one entry point.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--observed-frac", default=0.3, show_default=True,
              help="Share of each model's sources the predictors see.")  # fmt: skip
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Directory for predictions.csv and prediction_scores.csv.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Seed of the random splits.")
@click.option("--splits", "n_splits", default=10, show_default=True, help="Random splits.")
@click.option("--method", "methods", multiple=True,
              help="regime_target | additive | completion | lowrank (default: all).")  # fmt: skip
@click.option("--level", default=0.9, show_default=True, help="Nominal interval coverage.")
@click.option("--hide", default=None, metavar="TASK:LANG,...",
              help="Hide exactly these sources (one split) instead of random ones.")  # fmt: skip
@click.option("--metric", default=None, help="Delta column (default: the headline metric).")
def predict(results, observed_frac, out_dir, seed, n_splits, methods, level, hide, metric) -> None:
    """Hide sources, predict their transfer from the rest, score every method.

    RESULTS: a results table or run directory; several (one per model) are read as one table.
    """
    from transferlab.prediction import predict_command

    scores = predict_command(
        results, out_dir, observed_frac=observed_frac, seed=seed, n_splits=n_splits,
        methods=list(methods) or None, level=level, hide=hide, metric=metric,
    )  # fmt: skip
    click.echo(scores.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    click.echo(f"Wrote {out_dir / 'predictions.csv'} and {out_dir / 'prediction_scores.csv'}")


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--targets", required=True, metavar="TASK:LANG,...", help="Cells to help.")
@click.option("--harm-budget", default=1.0, show_default=True,
              help="Harm threshold in pp: a protected cell is harmed when Δ ≤ −budget.")  # fmt: skip
@click.option("--protect", default=None, metavar="TASK:LANG,...",
              help="Cells not to harm (default: every cell that is not a target).")  # fmt: skip
@click.option("--max-risk", default=0.1, show_default=True,
              help="Largest admissible probability of harming a protected cell.")  # fmt: skip
@click.option("--model", "model", default=None, help="Only this model's sources.")
@click.option("--out", "out_dir", default=".", show_default=True,
              type=click.Path(path_type=Path), help="Directory for recommendations.csv.")  # fmt: skip
@click.option("--metric", default=None, help="Delta column (default: the headline metric).")
def recommend(results, targets, harm_budget, protect, max_risk, model, out_dir, metric) -> None:
    """Rank sources by expected gain on the targets, subject to the risk of harming the rest.

    RESULTS: as for `predict`.
    """
    from transferlab.prediction import recommend_command

    ranked = recommend_command(
        results, targets, out_dir, protect=protect, harm_budget=harm_budget,
        max_risk=max_risk, model=model, metric=metric,
    )  # fmt: skip
    click.echo(ranked.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    click.echo(f"Wrote {out_dir / 'recommendations.csv'}")


# --- tasks ----------------------------------------------------------------------------------


@click.command()
@click.option("--model", "model_ref", required=True, help="Preset name, HF folder or GGUF file.")
@click.option("--adapter", "adapters", multiple=True, type=click.Path(path_type=Path),
              help="PEFT adapter folder (repeatable).")  # fmt: skip
@click.option("--languages", required=True, help="Comma list, e.g. en,de,zh (every ordered pair).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--layer", "layers", multiple=True, type=int,
              help="Layer to evaluate, 0 = embeddings (repeatable; default: every layer).")  # fmt: skip
@click.option("--method", "methods", multiple=True, help="none | proc | proc_b (default: all).")
@click.option("--retrieval", "retrievals", multiple=True, help="cosine | csls (default: both).")
@click.option("--pooling", default="mean", show_default=True, help="mean | last token.")
@click.option("--template", default="{entry}", show_default=True,
              help='Carrier text around each entry, e.g. "Word: {entry}".')  # fmt: skip
@click.option("--normalize", "normalization", default="unit,center,unit", show_default=True,
              help="Preprocessing steps in order (unit, center; 'none' for raw vectors).")  # fmt: skip
@click.option("--train-dict", type=click.Path(path_type=Path), help="Seed pairs TSV (xling-eval).")
@click.option("--test-dict", type=click.Path(path_type=Path), help="Test pairs TSV (xling-eval).")
@click.option("--dtype", default="auto", type=click.Choice(["auto", "float32", "bfloat16"]),
              show_default=True)  # fmt: skip
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--one-way", is_flag=True, help="Each language pair once, in the given order.")
@click.option("--results", type=click.Path(path_type=Path),
              help="Results table or run dir: correlate alignment with its MT-CL transfer.")  # fmt: skip
def align(model_ref, adapters, languages, out_dir, layers, methods, retrievals, pooling, template,
          normalization, train_dict, test_dict, dtype, device, batch_size, one_way,
          results) -> None:  # fmt: skip
    """Bilingual lexicon induction on the model's hidden states, per layer and model state."""
    from transferlab.alignment import Pooling, align_command
    from transferlab.alignment.command import parse_languages
    from transferlab.alignment.evaluate import METHODS
    from transferlab.alignment.retrieval import RETRIEVALS

    steps = [] if normalization.strip() == "none" else [s.strip() for s in normalization.split(",")]
    table = align_command(
        model_ref, list(adapters), parse_languages(languages), out_dir,
        layers=list(layers) or None, methods=list(methods) or METHODS,
        retrievals=list(retrievals) or RETRIEVALS, pooling=Pooling(pooling, template),
        normalization=steps, train_dict=train_dict, test_dict=test_dict, dtype=dtype,
        device=device, batch_size=batch_size, one_way=one_way, results=results,
    )  # fmt: skip
    best = table.sort_values("mrr", ascending=False).groupby("model_state").head(1)
    click.echo(best.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    click.echo(f"Wrote {len(table)} rows to {out_dir / 'alignment.csv'}")
