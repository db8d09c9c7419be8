"""A study as validated pydantic models, loaded from YAML with ``--set key.path=value`` overrides."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from transferlab.errors import UserError, did_you_mean
from transferlab.grid import Cell, Source
from transferlab.hardware import resolve_dtype
from transferlab.training.settings import TrainSettings, coerce_value

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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


class Study(_Section):
    """A whole study: the grid, the recipe, the evaluation and where it runs."""

    name: str = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    languages: list[str] = Field(min_length=1)
    sources: Literal["all"] | list[str | dict[str, float]] = "all"
    seeds: list[int] = Field([17, 42, 101], min_length=1)
    training: TrainSettings = TrainSettings()
    train_data: TrainData = TrainData()
    evaluation: EvaluationSettings = EvaluationSettings()
    executor: ExecutorSettings = ExecutorSettings()
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
    def source_list(self) -> list[Source]:
        """Return the training sources: every cell by default, else those listed."""
        if self.sources == "all":
            return [Source.single(cell) for cell in self.cells]
        return [_parse_source(entry) for entry in self.sources]

    @property
    def resolved_out_dir(self) -> Path:
        """Return the output directory (default ``runs/<name>``)."""
        return self.out_dir if self.out_dir is not None else Path("runs") / self.name

    def to_yaml(self) -> str:
        """Return the fully resolved config as YAML (defaults filled in)."""
        data = self.model_dump(mode="json")
        data["out_dir"] = str(self.resolved_out_dir)
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
    _check_grid(study)
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


def _user_error(error: ValidationError, path: Path, origin: dict[str, str]) -> UserError:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    field = ".".join(str(p) for p in loc) or "study"
    where = origin.get(str(loc[0]), str(path)) if loc else str(path)
    if first["type"] == "extra_forbidden":
        known = _fields_at(loc)
        hint = did_you_mean(str(loc[-1]), known)
        return UserError(where, f"unknown key {field!r}{hint}", f"known keys: {', '.join(known)}")
    if first["type"] == "missing":
        return UserError(where, f"missing required key {field!r}", "add it to the study")
    got = first.get("input")
    return UserError(where, f"{field}: {first['msg']} (got {got!r})", "give a valid value")


def _check_grid(study: Study) -> None:
    where = str(study.origin)
    cap, least = study.train_data.items_per_source, study.training.min_train_items
    if cap is not None and cap < least:
        raise UserError(
            where,
            f"train_data.items_per_source is {cap}, below training.min_train_items ({least})",
            "raise the cap or lower training.min_train_items",
        )
    names = [spec.display_name for spec in study.models]
    for spec in study.models:
        _check_model_ref(spec.ref, where)
        if names.count(spec.display_name) > 1:
            raise UserError(
                where, f"models: two models are named {spec.display_name!r}", "give each a name:"
            )
    specs = study.task_specs  # raises UserError for unknown tasks
    for name, spec in specs.items():
        for lang in study.languages:
            if lang not in spec.languages:
                raise UserError(
                    where,
                    f"task {name!r} has no language {lang!r}{did_you_mean(lang, spec.languages)}",
                    f"{name} offers: {', '.join(spec.languages)}",
                )
    if study.task_groups:  # the analysis's own check, so a run cannot end in a rejected report
        from transferlab.analysis.groups import check_task_groups

        check_task_groups(study.task_groups, specs, f"{where}: task_groups")
    cells = set(study.cells)
    try:
        sources = study.source_list
    except ValueError as error:
        raise UserError(where, f"sources: {error}", "write sources as task:language") from None
    for source in sources if study.sources != "all" else []:
        for cell, weight in source.parts:
            if cell not in cells:
                raise UserError(
                    where,
                    f"source {str(cell)!r} is not a cell of the grid",
                    "list sources as task:language with a task and language of the study",
                )
            if weight <= 0:
                raise UserError(where, f"source {source}: weights must be > 0", "fix the weight")
        if not source.is_single:
            raise UserError(
                where,
                f"source {source} is a mixture; mixtures are not supported yet",
                "list single cells as task:language",
            )
    if not sources:
        raise UserError(where, "sources: the list is empty", "list at least one task:language")


def _check_model_ref(ref: str, where: str) -> None:
    """Raise UserError unless ``ref`` can name a model (without downloading or converting it)."""
    from transferlab.models import PRESETS

    if ref in PRESETS or Path(ref).expanduser().exists() or _HF_ID.match(ref):
        return
    raise UserError(
        where,
        f"model {ref!r} is not a preset, an existing path or a Hugging Face id"
        + did_you_mean(ref, list(PRESETS)),
        f"presets: {', '.join(PRESETS)}",
    )
