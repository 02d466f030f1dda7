"""Benchmarks, each defined once: loading (Hub or original-format file), answer extraction, scoring."""

from common.tasks import gsm8k

TASKS = {"gsm8k": gsm8k}


def get_task(name: str):
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}") from None
