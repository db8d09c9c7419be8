"""Tasks: multiple-choice task specs as data, the registry, loaders and the bundled suite.

Importing this package is light: data, `datasets` and numpy load only when items are asked for.
"""

from transferlab.tasks.registry import (
    describe_tasks,
    get_task,
    list_tasks,
    parse_task_ref,
    render_task,
)
from transferlab.tasks.spec import TaskSpec
from transferlab.tasks.types import MCItem, TrainExample

__all__ = [
    "MCItem",
    "TaskSpec",
    "TrainExample",
    "describe_tasks",
    "get_task",
    "list_tasks",
    "parse_task_ref",
    "render_task",
]
