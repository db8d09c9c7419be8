"""The align kind: lexicon induction between a study's languages for one model state.

One job per model state (the base model, and each trained adapter once it is committed):
representations of the bundled dictionary's entries at the chosen layers (cached under
``$TRANSFERLAB_HOME/representations``, so a job killed after its forward passes redoes only the
mapping), then every ordered language pair × layer × method × retrieval, committed as rows of
the store's ``alignment`` table with the job's done mark.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transferlab.config import AlignmentSettings, Study
from transferlab.errors import RunError, UserError
from transferlab.grid import BASE, Source
from transferlab.jobs.base import (
    JobInputs,
    KindStatus,
    ModelRef,
    PlanContext,
    content_key,
    load_planned_model,
)
from transferlab.jobs.train import TrainJob
from transferlab.store import JobRecord, Store
from transferlab.store_alignment import alignment_keys, insert_alignment
from transferlab.versions import library_versions, source_hash

if TYPE_CHECKING:
    from transferlab.plan import Plan

# The sources that make alignment numbers (the summaries and figures are not among them).
ALIGNMENT_CODE = (
    "alignment/dictionaries.py", "alignment/representations.py", "alignment/mapping.py",
    "alignment/retrieval.py", "alignment/evaluate.py", "tokenization.py", "adapter_files.py",
    "scoring/adapters.py",
)  # fmt: skip


@dataclass(frozen=True)
class AlignJob:
    """Align the study's languages in one state of one model (base, or a trained adapter)."""

    key: str
    model: ModelRef
    state: str  # BASE or the training job's key
    state_name: str  # "base" or "<source>.seed<N>", its model_state in alignment.csv
    seed: int | None
    source: Source | None
    languages: tuple[str, ...]
    layers: tuple[int, ...]
    settings: AlignmentSettings
    dtype: str
    device: str
    provenance: dict[str, Any] = field(compare=False)
    kind: str = "align"

    @property
    def label(self) -> str:
        """Return a one-line description for progress and status."""
        return f"align {self.model.name} {self.state_name} ({len(self.languages)} languages)"

    @property
    def priority(self) -> int:
        """Return 3: after the trainings and evaluations the transfer results come from."""
        return 3

    @property
    def unit_keys(self) -> tuple[str, ...]:
        """Return the job's own key: it commits one model state's rows."""
        return (self.key,)


def _layer_count(ref: str) -> int:
    """Return the model's number of decoder blocks + 1 (layer 0 is the embeddings' output)."""
    from transferlab.models import resolve_model

    config = json.loads((resolve_model(ref, convert=False) / "config.json").read_text())
    return int(config.get("text_config", config)["num_hidden_layers"]) + 1


def _dictionary_hash(languages: tuple[str, ...]) -> str:
    from transferlab.alignment.dictionaries import bundled_concepts

    table = bundled_concepts()
    pairs = itertools.permutations(languages, 2)
    return content_key([table.pair(s, t).content_hash() for s, t in pairs])


def alignment_jobs(
    study: Study, models: list[ModelRef], train_jobs: list[TrainJob]
) -> list[AlignJob]:
    """Return one alignment job per model state of the study (none without ``alignment:``)."""
    settings = study.alignment
    if settings is None:
        return []
    languages = tuple(settings.languages or study.languages)
    dictionary = _dictionary_hash(languages)
    versions = library_versions() | {"transferlab.alignment": source_hash(ALIGNMENT_CODE)}
    evaluation = study.evaluation
    jobs = []
    for model in models:
        n_layers = _layer_count(model.ref)
        if settings.layers == "all":
            layers = tuple(range(n_layers))
        else:
            layers = tuple(sorted(settings.layers))
            if layers[-1] >= n_layers:
                raise UserError(study.origin, f"alignment.layers: layer {layers[-1]} is out of "
                                f"range for model {model.name}",
                                f"use 0 (embeddings) to {n_layers - 1}")  # fmt: skip
        chosen = settings.model_dump(mode="json") | {"languages": languages, "layers": layers}
        states = [(BASE, "base", None, None)] + [
            (
                j.key,
                f"{j.source}{f'[{j.recipe}]' if j.recipe else ''}.seed{j.seed}",
                j.seed,
                j.source,
            )
            for j in train_jobs
            if j.model.name == model.name
        ]
        for state, name, seed, source in states:
            # An adapter's state is its training key, which covers its data, recipe and code.
            parts = [model.model_hash, state, dictionary, chosen, evaluation.dtype, versions]
            key = content_key("align", *parts)
            provenance = {"model_hash": model.model_hash, "state": state, "dictionary": dictionary,
                          "settings": chosen, "dtype": evaluation.dtype, "versions": versions}  # fmt: skip
            jobs.append(AlignJob(key, model, state, name, seed, source, languages, layers,
                                 settings, evaluation.dtype, evaluation.device, provenance))  # fmt: skip
    return jobs


@dataclass
class AlignResult:
    """The rows of one model state's alignment and what produced them."""

    rows: list[dict[str, Any]]
    provenance: dict[str, Any]


def run_alignment(
    job: AlignJob, adapters: dict[str, tuple[Path, str]], progress: bool = True
) -> AlignResult:
    """Compute ``job``'s rows; ``adapters`` maps its training key to (folder, expected hash)."""
    from transferlab.alignment.command import induction_rows
    from transferlab.alignment.dictionaries import bundled_concepts
    from transferlab.alignment.representations import Pooling, entry_representations
    from transferlab.scoring import ModelState, adapter_hash

    folder = None
    if job.state != BASE:
        folder, expected = adapters[job.state]
        found = adapter_hash(folder)
        if found != expected:  # never align an adapter other than the one that was committed
            raise RunError(f"adapter {folder} has hash {found}, the store recorded {expected}")
    settings = job.settings
    table = bundled_concepts()
    dictionaries = [table.pair(s, t) for s, t in itertools.permutations(job.languages, 2)]
    started = time.perf_counter()
    loaded = load_planned_model(job.model, job.dtype, job.device)
    state = ModelState(job.state_name, folder)
    pooling = Pooling(settings.pooling, settings.template)
    entries = {language: table.entries[language] for language in job.languages}
    vectors = entry_representations(
        loaded, [state], entries, pooling, settings.batch_size, progress, cache=True
    )
    extracted = time.perf_counter()
    rows, dropped = induction_rows(vectors, [state.name], dictionaries, job.layers,
                                   settings.methods, settings.retrieval, settings.normalization)  # fmt: skip
    provenance = job.provenance | {
        "adapter_hash": adapters[job.state][1] if folder is not None else None,
        "dropped_test_pairs": dropped,
        "train_pairs": len(dictionaries[0].train),
        "test_pairs": len(dictionaries[0].test),
        "extraction_s": round(extracted - started, 2),
        "induction_s": round(time.perf_counter() - extracted, 2),
    }
    for row in rows:
        del row["model_state"]  # the job's state: the store keeps it once, with the job
    return AlignResult(rows, provenance)


class AlignKind:
    """Alignment jobs: one per model state; an adapter's waits for its training's commit."""

    name = "align"
    title = "alignment"

    def plan(self, context: PlanContext) -> list[AlignJob]:
        """Return one alignment job per model state (none without ``alignment:``)."""
        return alignment_jobs(context.study, context.models, context.planned["train"])

    def _done(self, store: Store | None) -> set[str]:
        return store.read(alignment_keys) if store is not None else set()

    def todo(self, plan: Plan, store: Store, exhausted: set[str]) -> list[AlignJob]:
        """Return the states not aligned yet whose adapter (if any) is committed."""
        done, adapters = self._done(store), store.adapters()
        return [
            j
            for j in plan.align_jobs
            if j.key not in done
            and j.key not in exhausted
            and (j.state == BASE or j.state in adapters)
        ]

    def outstanding(self, plan: Plan, store: Store | None) -> int:
        """Return how many model states are not aligned yet."""
        done = self._done(store)
        return sum(j.key not in done for j in plan.align_jobs)

    def inputs(self, job: AlignJob, store: Store) -> JobInputs:
        """Return the committed adapter the job aligns, with its recorded hash."""
        if job.state == BASE:
            return JobInputs()
        return JobInputs(adapters={job.state: store.adapters()[job.state][:2]})

    def run(self, job: AlignJob, inputs: JobInputs, progress: bool) -> AlignResult:
        """Align the job's model state."""
        return run_alignment(job, inputs.adapters, progress)

    def relocated(self, result: AlignResult, output_dir: Path) -> AlignResult:
        """Return the result unchanged: an alignment writes no folder."""
        return result

    def commit(self, job: AlignJob, result: AlignResult, store: Store) -> bool:
        """Store the rows and mark the job done, in one transaction."""

        def insert(db: Any) -> None:
            insert_alignment(db, job.key, job.model.name, job.state, result.rows, result.provenance)

        return store.commit_with(job.key, insert)

    def status(self, plan: Plan, store: Store) -> KindStatus:
        """Return how many model states are aligned and how many are left."""
        n, pending = len(plan.align_jobs), self.outstanding(plan, store)
        line = f"{self.title}: {n - pending} of {n} model state(s) aligned; {pending} to go"
        return KindStatus(line, n - pending, pending, pending == 0)

    def relevant(self, record: JobRecord, plan: Plan, store: Store) -> bool:
        """Return whether the record is an alignment of the plan still without rows."""
        keys = {j.key for j in plan.align_jobs}
        return record.key in keys and record.key not in self._done(store)
