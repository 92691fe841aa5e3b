"""Until `core/text_routes.py` (the shared route interface, /work/helpers/ROUTES.md) reaches this branch: the same
dataclasses, installed as that module only when it is missing. Once it exists this stub does nothing."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.models import Can


@dataclass(frozen=True)
class Instances:
    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: list[str]
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class Route:
    name: str
    title: str
    needs: tuple[Can, ...]
    run: Callable[..., Instances]


@dataclass(frozen=True)
class RouteOptions:
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    score_threshold: float = 0.5
    n_points: int = 1
    max_instances: int = 20


def install() -> None:
    if "core.text_routes" in sys.modules or importlib.util.find_spec("core.text_routes") is not None:
        return
    module = types.ModuleType("core.text_routes")
    module.Instances, module.Route, module.RouteOptions, module.ROUTES = Instances, Route, RouteOptions, {}
    sys.modules["core.text_routes"] = module
