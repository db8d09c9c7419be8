"""The frozen parallel split: the same item IDs in every language, train and test disjoint, and
the training pool cut 90/10 into train/validation with seed 42 exactly as
``datasets.Dataset.train_test_split(test_size=0.1, seed=42)`` cuts it."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from transferlab.errors import UserError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitPlan:
    """Where test items and the training pool come from, and how many to take.

    ``n_test``/``n_train`` of None take every item of the pool in its order; a number draws that
    many IDs with ``seed`` from the sorted IDs (test first, then train when they share a pool).
    ``align`` is ``strict`` (every language must hold the same IDs) or ``intersect`` (keep the
    IDs that every language holds, for translated datasets that dropped a few items).
    """

    test_pool: str
    train_pool: str | None = None
    n_test: int | None = None
    n_train: int | None = None
    align: str = "strict"
    seed: int = 42
    validation_fraction: float = 0.1


def check_unique(ids: list[str], where: str, language: str, pool: str) -> None:
    """Raise a UserError naming the first ID that occurs twice in one language's pool."""
    seen: set[str] = set()
    for doc_id in ids:
        if doc_id in seen:
            raise UserError(
                where,
                f"id: item id {doc_id!r} occurs twice in {language}/{pool}",
                "give every item of a split a unique id",
            )
        seen.add(doc_id)


def common_ids(
    ids_by_language: dict[str, list[str]], align: str, where: str, pool: str
) -> list[str]:
    """Return the pool's IDs shared by every language, in the first language's order."""
    languages = list(ids_by_language)
    first = ids_by_language[languages[0]]
    shared = set(first)
    for language in languages[1:]:
        other = set(ids_by_language[language])
        if align == "strict" and other != shared:
            only = sorted(shared - other) or sorted(other - shared)
            side = languages[0] if shared - other else language
            raise UserError(
                where,
                f"languages: {languages[0]} and {language} hold different item ids in {pool} "
                f"(e.g. {only[0]!r} only in {side})",
                "give every language the same item ids, or set `align: intersect`",
            )
        shared &= other
    return [doc_id for doc_id in first if doc_id in shared]


def _draw(ids: list[str], seed: int) -> list[str]:
    import numpy as np

    ordered = sorted(ids)
    return [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]


def select_splits(
    pools: dict[str, dict[str, list[str]]], plan: SplitPlan, where: str
) -> dict[str, list[str]]:
    """Return the item IDs of train, validation and test, the same for every language."""
    common = {pool: common_ids(by_lang, plan.align, where, pool) for pool, by_lang in pools.items()}
    test_ids = common[plan.test_pool]
    train_ids: list[str] = common.get(plan.train_pool, []) if plan.train_pool else []
    shared_pool = plan.train_pool == plan.test_pool
    if plan.n_test is not None or plan.n_train is not None or shared_pool:
        needed = (plan.n_test or 0) + ((plan.n_train or 0) if shared_pool else 0)
        if needed > len(test_ids):
            raise UserError(
                where,
                f"splits: asks for {needed} items but {plan.test_pool} holds {len(test_ids)} "
                "in every language",
                "lower n_test/n_train",
            )
        drawn = _draw(test_ids, plan.seed)
        if plan.n_test is None and shared_pool:
            raise UserError(where, "splits.test.n: required when train and test share a pool", "")
        test_ids = drawn[: plan.n_test] if plan.n_test is not None else test_ids
        if shared_pool:
            rest = drawn[plan.n_test :]
            train_ids = rest[: plan.n_train] if plan.n_train is not None else rest
        elif plan.n_train is not None:
            if plan.n_train > len(train_ids):
                raise UserError(
                    where,
                    f"splits.train.n: asks for {plan.n_train} items but {plan.train_pool} "
                    f"holds {len(train_ids)} in every language",
                    "lower splits.train.n",
                )
            train_ids = _draw(train_ids, plan.seed)[: plan.n_train]
    if not test_ids:
        raise UserError(where, f"splits.test: the {plan.test_pool} split is empty", "add items")
    if plan.train_pool and not train_ids:
        raise UserError(where, f"splits.train: the {plan.train_pool} split is empty", "add items")
    leaked = set(test_ids) & set(train_ids)
    if leaked:
        raise UserError(
            where,
            f"id: item {sorted(leaked)[0]!r} is in both the training pool and the test split",
            "keep train and test items disjoint",
        )
    train, validation = train_validation(train_ids, plan.validation_fraction, plan.seed)
    return {"train": train, "validation": validation, "test": test_ids}


def train_validation(ids: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Return (train, validation) as ``train_test_split(test_size=fraction, seed=seed)`` would."""
    if len(ids) < 2:
        return list(ids), []
    import numpy as np

    n_validation = ceil(fraction * len(ids))
    n_train = len(ids) - n_validation
    permutation = np.random.default_rng(seed).permutation(len(ids))
    validation = [ids[i] for i in permutation[:n_validation]]
    train = [ids[i] for i in permutation[n_validation : n_validation + n_train]]
    return train, validation
