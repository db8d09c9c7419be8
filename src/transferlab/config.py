"""A study as validated pydantic models, loaded from YAML with ``--set key.path=value`` overrides."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from transferlab.errors import UserError, did_you_mean
from transferlab.grid import Cell, Source
from transferlab.hardware import resolve_dtype
from transferlab.mixtures import MixtureSpec, MixtureSweep, SweepPoint, expand_sweep, spec_source
from transferlab.study_checks import check_study
from transferlab.training.settings import TrainSettings, coerce_value
from transferlab.training_axes import split_axes, training_variants


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Section):
    """One model of the study: a reference (preset, HF id, local folder, GGUF) and its name."""

    ref: str
    name: str | None = Field(None, description="name in results (default: from the reference)")
    trust_remote_code: bool = False

    @property
    def display_name(self) -> str:
        """Return the model's name in results tables."""
        return self.name or Path(self.ref.rstrip("/")).name.removesuffix(".gguf")


class TrainData(_Section):
    """How much of each source's training pool a training job uses."""

    items_per_source: int | None = Field(None, gt=0, description="cap on training examples")
    validation_items: int | None = Field(None, gt=0, description="cap on validation examples")


class EvaluationSettings(_Section):
    """How every (model state, target cell) is scored."""

    items_per_target: int | None = Field(None, gt=0, description="first N items (null: all)")
    split: Literal["test", "validation", "train"] = "test"
    batch_size: int = Field(16, gt=0)
    # auto: bf16 where the device computes it natively, else fp32; resolved when the study loads
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    device: str = "cpu"


class ExecutorSettings(_Section):
    """Where jobs run and how failures are retried."""

    kind: Literal["local", "ray"] = "local"
    num_cpus: float = Field(1, ge=0, description="Ray: CPUs per job")
    num_gpus: float = Field(0, ge=0, description="Ray: GPUs per job")
    address: str | None = Field(None, description="Ray: cluster address (null: start locally)")
    retries: int = Field(1, ge=0, description="extra attempts of a failed job within one run")
    threads: int | None = Field(
        None, gt=0, description="torch threads per job (null: all cores; Ray: num_cpus)"
    )


class ActiveSettings(_Section):
    """An active study: train a spread of sources, then batches chosen by a refitted predictor."""

    budget: int = Field(gt=0, description="sources trained per model in all")
    batch: int = Field(gt=0, description="sources per model chosen after each refit")
    strategy: Literal["uncertainty", "greedy", "random"] = "uncertainty"
    targets: list[str] = Field([], description="greedy: the task:language cells to help")
    initial: int | None = Field(None, gt=0, description="the first spread (null: batch, ≥ 3)")
    method: Literal["regime_target", "additive", "completion", "lowrank", "stacked"] = "completion"
    seed: int = 0

    @property
    def first(self) -> int:
        """Return how many sources per model the first spread trains."""
        # the predictor's folds need a few trained sources before a refit says anything
        return self.initial if self.initial is not None else min(max(self.batch, 3), self.budget)


class ActiveSources(_Section):
    """``sources: {active: {...}}``: every cell is a candidate, the loop picks which to train."""

    active: ActiveSettings


class AlignmentSettings(_Section):
    """Bilingual lexicon induction on every model state of the study (as ``transferlab align``)."""

    languages: list[str] | None = Field(
        None, min_length=2, description="languages of the bundled dictionary (null: the study's)"
    )
    layers: Literal["all"] | list[int] = Field("all", description="0 = embeddings")
    methods: list[Literal["proc", "proc_b", "none"]] = Field(
        ["proc", "proc_b", "none"], min_length=1
    )
    retrieval: list[Literal["cosine", "csls"]] = Field(["cosine", "csls"], min_length=1)
    pooling: Literal["mean", "last"] = "mean"
    template: str = Field("{entry}", description="carrier text around each entry")
    normalization: list[Literal["unit", "center"]] = ["unit", "center", "unit"]
    batch_size: int = Field(32, gt=0)

    @field_validator("languages", "layers", "methods", "retrieval")
    @classmethod
    def _once(cls, value: Any) -> Any:
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("lists a value twice")
        return value


class Study(_Section):
    """A whole study: the grid, the recipe, the evaluation and where it runs."""

    name: str = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    languages: list[str] = Field(min_length=1)
    sources: Literal["all"] | list[str | MixtureSpec | dict[str, float]] | ActiveSources = "all"
    mixtures: list[MixtureSweep] = Field([], description="sweeps of mixture sources")
    seeds: list[int] = Field([17, 42, 101], min_length=1)
    training: TrainSettings = TrainSettings()
    training_axes: dict[str, list[Any]] = Field(
        {}, description="list values of `training`, crossed with the sources"
    )
    train_data: TrainData = TrainData()
    evaluation: EvaluationSettings = EvaluationSettings()
    executor: ExecutorSettings = ExecutorSettings()
    alignment: AlignmentSettings | None = Field(
        None, description="also align every model state's languages (lexicon induction)"
    )
    task_groups: dict[str, list[str]] = Field(
        {}, description="named groups of tasks the analysis is also split by, e.g. curated: [x]"
    )
    trust_task_code: bool = Field(
        False, description="import lm-eval task files' `!function` code from their folders"
    )
    out_dir: Path | None = None
    # Where the YAML was read from: relative task paths and error messages refer to it.
    _origin: Path = PrivateAttr(Path("<study>"))

    @property
    def origin(self) -> Path:
        """Return the study file this config was read from."""
        return self._origin

    @model_validator(mode="before")
    @classmethod
    def _split_training_axes(cls, data: Any) -> Any:
        # `training: {lora_r: [8, 32]}` is an axis, not a setting: it moves to training_axes.
        if isinstance(data, dict) and isinstance(data.get("training"), dict):
            fixed, axes = split_axes(data["training"])
            if axes:
                data = {**data, "training": fixed, "training_axes": axes}
        return data

    @field_validator("sources", mode="before")
    @classmethod
    def _mixture_entries(cls, value: Any) -> Any:
        # Validated here, so a bad mixture's message is its own, not the union's first try.
        if not isinstance(value, list):
            return value
        entries = []
        for index, entry in enumerate(value):
            if isinstance(entry, dict) and "parts" in entry:
                try:
                    entry = MixtureSpec(**entry)
                except ValidationError as error:
                    first = error.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    what = first["msg"].removeprefix("Value error, ")
                    at = f" ({where})" if where else ""
                    raise ValueError(f"entry {index + 1}{at}: {what}") from None
            entries.append(entry)
        return entries

    @field_validator("models", mode="before")
    @classmethod
    def _refs_as_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"ref": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("tasks", "languages", "seeds")
    @classmethod
    def _unique(cls, value: list) -> list:
        repeated = sorted({str(v) for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"listed twice: {', '.join(repeated)}")
        return value

    @cached_property
    def task_refs(self) -> dict[str, str]:
        """Return each task's name in results → the reference ``get_task`` resolves anywhere."""
        from transferlab.tasks import get_task

        refs = {}
        for ref in self.tasks:
            # A task file is found relative to the study first, then to the working directory.
            beside = self.origin.parent / ref
            if not Path(ref).is_absolute() and beside.is_file():
                ref = str(beside.resolve())
            elif Path(ref).is_file():
                ref = str(Path(ref).resolve())
            try:
                name = get_task(ref, self.trust_task_code).name
            except UserError as error:  # name the study, which is what the user edits
                raise UserError(self.origin, f"tasks: {error.what}", error.fix) from None
            if name in refs:
                raise UserError(self.origin, f"tasks: {name!r} listed twice", "list it once")
            refs[name] = ref
        return refs

    @cached_property
    def task_specs(self) -> dict[str, Any]:
        """Return the resolved tasks by their name in results."""
        from transferlab.tasks import get_task

        return {name: get_task(ref, self.trust_task_code) for name, ref in self.task_refs.items()}

    @property
    def cells(self) -> list[Cell]:
        """Return the grid's cells, task-major, in config order."""
        return [Cell(task, lang) for task in self.task_specs for lang in self.languages]

    @property
    def active(self) -> ActiveSettings | None:
        """Return the active loop's settings, or None when the sources are fixed."""
        return self.sources.active if isinstance(self.sources, ActiveSources) else None

    @property
    def source_list(self) -> list[Source]:
        """Return the training sources: every cell by default (and the candidates of an active
        study), else those listed, then the sweeps' mixtures (each source once)."""
        if self.sources == "all" or self.active is not None:
            listed = [Source.single(cell) for cell in self.cells]
        else:
            listed = [self._parse_source(entry) for entry in self.sources]
        swept = [point.source for point in self.sweep_points]
        return list(dict.fromkeys(listed + swept))

    @cached_property
    def pool_sizes(self) -> dict[Cell, int]:
        """Return the number of training items of each cell's pool (train split); cells of
        evaluation-only tasks have none and cannot be a mixture's part."""
        specs = self.task_specs
        return {
            c: len(specs[c.task].split_ids("train"))
            for c in self.cells
            if specs[c.task].plan.train_pool is not None
        }

    @property
    def sweep_points(self) -> list[SweepPoint]:
        """Return every point of the ``mixtures:`` sweeps, sweep by sweep, k by k."""
        return [
            point
            for sweep in self.mixtures
            for point in expand_sweep(sweep, self.pool_sizes, str(self.origin))
        ]

    @property
    def training_variants(self) -> list[tuple[str, TrainSettings]]:
        """Return (name, settings) per combination of the training axes (``[("", training)]``)."""
        return training_variants(self.training, self.training_axes, str(self.origin))

    def _parse_source(self, entry: str | MixtureSpec | dict[str, float]) -> Source:
        if isinstance(entry, MixtureSpec):
            return spec_source(entry, self.pool_sizes, str(self.origin))
        return _parse_source(entry)

    @property
    def resolved_out_dir(self) -> Path:
        """Return the output directory (default ``runs/<name>``)."""
        return self.out_dir if self.out_dir is not None else Path("runs") / self.name

    def to_yaml(self) -> str:
        """Return the fully resolved config as YAML (defaults filled in)."""
        data = self.model_dump(mode="json")
        data["out_dir"] = str(self.resolved_out_dir)
        if "target_modules" in data["training"]:  # absent with method full
            data["training"]["target_modules"] = list(data["training"]["target_modules"])
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _parse_source(entry: str | dict[str, float]) -> Source:
    if isinstance(entry, str):
        return Source.single(Cell.parse(entry))
    return Source(tuple((Cell.parse(cell), float(w)) for cell, w in entry.items()))


def load_study(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> Study:
    """Return the validated study of the YAML file at ``path`` with ``key.path=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "no such study file", "pass the path of a study YAML")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(path, f"not valid YAML{at}", "fix the syntax") from None
    if not isinstance(raw, dict):
        raise UserError(path, "a study must be a mapping of keys", "see configs/demo.yaml")
    origin = {key: str(path) for key in raw}
    for item in overrides:
        key = _apply_override(raw, item)
        origin[key.split(".")[0]] = f"--set {key}"
    try:
        study = Study(**raw)
    except ValidationError as error:
        raise _user_error(error, path, origin) from None
    study._origin = path
    check_study(study)
    # "auto" is resolved here, once, so job keys, provenance and results name the dtype that runs.
    device = study.evaluation.device
    study.training = study.training.model_copy(
        update={"dtype": resolve_dtype(study.training.dtype, device)}
    )
    study.evaluation.dtype = resolve_dtype(study.evaluation.dtype, device)
    return study


def _apply_override(raw: dict[str, Any], item: str) -> str:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError("--set", f"{item!r} is not key.path=value", "write e.g. --set seeds=[1,2]")
    node = raw
    *parents, leaf = key.split(".")
    for depth, part in enumerate(parents):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parents[: depth + 1])
            raise UserError(f"--set {key}", f"{where!r} is not a section", "set a leaf key")
        node = child
    node[leaf] = coerce_value(text.strip())
    return key


def _fields_at(loc: tuple) -> list[str]:
    # Walk the models along an error location to list the keys valid where the bad one was.
    model: Any = Study
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if hasattr(a, "model_fields")), None)
    return list(model.model_fields) if model is not None else []


def _first_error(error: ValidationError) -> tuple[dict[str, Any], tuple]:
    """Return the error to show and its location without union branch tags.

    A union (``sources``) reports one error per branch; the one inside a model branch (e.g.
    ``sources.active.budget``) says what is wrong, the "should be 'all'" ones do not.
    """
    errors = error.errors()
    first = errors[0]
    for candidate in errors:
        tags = [p for p in candidate["loc"] if isinstance(p, str) and p[:1].isupper()]
        if candidate["loc"][:1] == first["loc"][:1] and tags:
            first = candidate
            break
    loc = tuple(
        p for p in first["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p))
    )
    return first, loc


def _user_error(error: ValidationError, path: Path, origin: dict[str, str]) -> UserError:
    first, loc = _first_error(error)
    field = ".".join(str(p) for p in loc) or "study"
    where = origin.get(str(loc[0]), str(path)) if loc else str(path)
    if first["type"] == "extra_forbidden":
        known = _fields_at(loc)
        hint = did_you_mean(str(loc[-1]), known)
        return UserError(where, f"unknown key {field!r}{hint}", f"known keys: {', '.join(known)}")
    if first["type"] == "missing":
        return UserError(where, f"missing required key {field!r}", "add it to the study")
    if first["type"] == "lora_with_full":
        return UserError(
            where, f"{field}: {first['msg']}", f"remove them from {field}, or use method lora"
        )
    got = first.get("input")
    what = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for our own checks
    return UserError(where, f"{field}: {what} (got {got!r})", "give a valid value")
