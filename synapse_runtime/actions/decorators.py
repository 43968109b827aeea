"""``@action``: the function form of an action.

The function stays a plain function (callable as ``fn(params, ctx)`` in a test); the decorator
only attaches what the runner needs to find, validate and describe it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .base_action import NoResult, invoke, validate_params
from .context import RuntimeContext

F = TypeVar("F", bound=Callable[..., Any])


def action(
    name: str | None = None,
    description: str = "",
    params: Any = None,
    result: Any = None,
    category: str | None = None,
) -> Callable[[F], F]:
    """Mark ``fn(params, context)`` as an action; ``params`` is its pydantic model (optional)."""
    if callable(name) and not isinstance(name, str):
        # Bare ``@action`` without parentheses.
        return action()(name)  # type: ignore[return-value]

    def decorate(fn: F) -> F:
        fn.action_name = name or fn.__name__  # type: ignore[attr-defined]
        fn.description = description or (fn.__doc__ or "").strip().split("\n")[0]  # type: ignore[attr-defined]
        fn.params_model = params  # type: ignore[attr-defined]
        fn.result_model = result if result is not None else NoResult  # type: ignore[attr-defined]
        fn.category = category  # type: ignore[attr-defined]
        fn.is_synapse_action = True  # type: ignore[attr-defined]
        # Upstream's marks, for tools and plugins that read them (``train._action_params``).
        fn._is_action = True  # type: ignore[attr-defined]
        fn._action_name = fn.action_name  # type: ignore[attr-defined]
        fn._action_description = description  # type: ignore[attr-defined]
        fn._action_params = params  # type: ignore[attr-defined]
        fn._action_result = result  # type: ignore[attr-defined]
        fn._action_category = category  # type: ignore[attr-defined]

        def dispatch(raw: Mapping[str, Any] | Any, ctx: RuntimeContext) -> Any:
            validated = validate_params(params, dict(raw) if isinstance(raw, Mapping) and params else raw)
            return invoke(fn, validated, ctx)

        fn.dispatch = dispatch  # type: ignore[attr-defined]
        return fn

    return decorate


def is_function_action(obj: Any) -> bool:
    return callable(obj) and getattr(obj, "is_synapse_action", False) is True and not isinstance(obj, type)


__all__ = ["action", "is_function_action"]
