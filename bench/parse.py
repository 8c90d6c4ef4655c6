"""How fast the captured CLIP v2 listing becomes a Snapshot, against aiohue in the same run.

Both parsers get the same already-decoded JSON (166 resources from a real bridge). aiohue is
measured the way its controllers build models: ``dataclass_from_dict(item_cls, resource)`` for
every resource whose type has a model, which is what Home Assistant's hue integration pays on
each full fetch. hpoll parses only the types it uses, and also links devices to their services
and rooms; so a second, like-for-like aiohue figure covers only the types hpoll parses.

Printed JSON keys:
  resources            number of resources in the payload
  rounds               timed repetitions per parser (median taken)
  hpoll_median_us      median time for parse_snapshot, microseconds
  aiohue_median_us     median time for aiohue over every typed resource, microseconds
  aiohue_same_types_us median time for aiohue over only the types hpoll parses, microseconds
  ratio                hpoll_median_us / aiohue_median_us (target <= 0.5)
  ratio_same_types     hpoll_median_us / aiohue_same_types_us
"""

from __future__ import annotations

from collections.abc import Callable
import gc
import importlib
import inspect
import json
from pathlib import Path
import pkgutil
import statistics
import sys
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.hpoll.hue.parser import (  # noqa: E402
    _SERVICE_PARSERS,
    parse_snapshot,
)

ROUNDS = 300


def _aiohue_models() -> dict[str, Any]:
    """Resource type -> aiohue model class, read from aiohue's own controllers."""
    from aiohue.v2 import controllers
    from aiohue.v2.controllers.base import BaseResourcesController

    models: dict[str, Any] = {}
    for module_info in pkgutil.iter_modules(controllers.__path__):
        module = importlib.import_module(f"aiohue.v2.controllers.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            item_type = getattr(cls, "item_type", None)
            item_cls = getattr(cls, "item_cls", None)
            if issubclass(cls, BaseResourcesController) and item_type and item_cls:
                models[item_type.value] = item_cls
    return models


def _median_us(func: Callable[[], object]) -> float:
    for _ in range(20):
        func()
    samples = []
    gc.collect()
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        func()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def main() -> None:
    """Run both parsers and print the figures."""
    from aiohue.util import dataclass_from_dict

    data = json.loads((ROOT / "tests/fixtures/clip_v2_resources.json").read_text())
    envelope = {"errors": [], "data": data}
    models = _aiohue_models()
    ours = set(_SERVICE_PARSERS) | {"device"}

    def aiohue_all() -> object:
        return {
            r["id"]: dataclass_from_dict(models[r["type"]], r) for r in data if r["type"] in models
        }

    def aiohue_same() -> object:
        return {
            r["id"]: dataclass_from_dict(models[r["type"]], r)
            for r in data
            if r["type"] in ours and r["type"] in models
        }

    hpoll_us = _median_us(lambda: parse_snapshot(envelope))
    aiohue_us = _median_us(aiohue_all)
    aiohue_same_us = _median_us(aiohue_same)
    print(f"hpoll parse_snapshot : {hpoll_us:9.1f} us")
    print(f"aiohue (all types)   : {aiohue_us:9.1f} us")
    print(f"aiohue (hpoll types) : {aiohue_same_us:9.1f} us")
    print(
        json.dumps(
            {
                "resources": len(data),
                "rounds": ROUNDS,
                "hpoll_median_us": round(hpoll_us, 1),
                "aiohue_median_us": round(aiohue_us, 1),
                "aiohue_same_types_us": round(aiohue_same_us, 1),
                "ratio": round(hpoll_us / aiohue_us, 3),
                "ratio_same_types": round(hpoll_us / aiohue_same_us, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
