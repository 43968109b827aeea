"""BaseAction[P]: the class form of an action.

Kept free of any runner knowledge: an action is params in, result out, with the context as
its only window on the world.  pydantic is never imported here, so loading a plugin whose
action needs no validation costs no pydantic start-up.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar, get_args, get_origin

from .context import RuntimeContext
from ..errors import ValidationError
from .log_model import resolve_level
from .loggers import BaseLogger, LogLevel

P = TypeVar("P")


class NoResult:
    """Marker for ``result_model``: the result is not validated."""


def _field_errors(exc: Any) -> list[dict[str, Any]]:
    """pydantic errors as JSON: where, what, which rule; never the input value (it may be secret)."""
    out = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        out.append({"loc": ".".join(str(p) for p in err.get("loc", ())) or "(root)", "msg": err["msg"], "type": err["type"]})
    return out


def validate_params(model: Any, data: Any, *, what: str = "params", context: Any = None) -> Any:
    """Validate ``data`` with a pydantic model; failures become our ValidationError (exit 2).

    ``context`` is pydantic's validation context (upstream passes ``{'client': ...}``)."""
    if model is None:
        return data
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data) if context is None else model.model_validate(data, context=context)
    except Exception as exc:
        if not hasattr(exc, "errors"):
            raise
        errors = _field_errors(exc)
        summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
        raise ValidationError(
            f"invalid {what} for {model.__name__}: {summary}",
            details={"model": model.__name__, "errors": errors},
            hint="fix the listed fields; `synapse-runtime schema` prints the expected JSON Schema",
        ) from None


def validate_result(model: Any, result: Any) -> Any:
    """Check a result against ``result_model`` (``NoResult``/None: anything goes)."""
    if model is None or model is NoResult or not hasattr(model, "model_validate"):
        return result  # NoResult, ours or upstream's: a marker, not a model
    if isinstance(result, model):
        return result
    try:
        return model.model_validate(result)
    except Exception as exc:
        if not hasattr(exc, "errors"):
            raise
        from ..errors import ExecutionError

        raise ExecutionError(
            f"result does not match {model.__name__}", details={"errors": _field_errors(exc)}
        ) from None


def invoke(target: Any, params: Any, ctx: Any) -> Any:
    """Run an action (a class or an ``@action`` function) on validated params and check its result.

    The one place that does it: ``BaseAction.dispatch``, an ``@action`` function's ``dispatch`` and
    the runner's driver (``contract/drivers.py``) all come here, so a result is checked the same
    way however the action was started."""
    if isinstance(target, type):
        instance = target(params, ctx)
        result = (getattr(instance, "run", None) or instance.execute)()
    else:
        result = target(params, ctx)
    return validate_result(getattr(target, "result_model", None), result)


class BaseAction(ABC, Generic[P]):
    """Subclass with a pydantic ``params_model`` (or as ``BaseAction[MyParams]``) and ``execute``."""

    action_name: ClassVar[str | None] = None
    category: ClassVar[str | None] = None
    description: ClassVar[str | None] = None
    params_model: ClassVar[Any] = None
    result_model: ClassVar[Any] = NoResult
    input_type: ClassVar[Any] = None
    output_type: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.params_model is None:
            for base in getattr(cls, "__orig_bases__", ()):
                origin = get_origin(base)
                if isinstance(origin, type) and issubclass(origin, BaseAction):
                    args = get_args(base)
                    if args and isinstance(args[0], type):
                        cls.params_model = args[0]
                        break

    def __init__(self, params: P, ctx: RuntimeContext) -> None:
        self.params = params
        self.ctx = ctx

    @abstractmethod
    def execute(self) -> Any:
        """The action's work; return a serializable result, raise ``ExecutionError`` on failure."""

    def run(self) -> Any:
        """What executors call; subclasses (inference) route to steps here."""
        return self.execute()

    @classmethod
    def dispatch(cls, params: Mapping[str, Any] | Any, ctx: RuntimeContext) -> Any:
        """Validate raw params, instantiate and run: upstream's executor entry point."""
        # As upstream: the backend client is in pydantic's validation context for validators that need it.
        validated = validate_params(cls.params_model, dict(params) if isinstance(params, Mapping) else params,
                                    context={"client": getattr(ctx, "client", None)})
        return invoke(cls, validated, ctx)

    @property
    def logger(self) -> BaseLogger:
        return self.ctx.logger

    def log(self, event: str, data: Any, file: str | None = None) -> None:
        """Log a named event with its data."""
        self.ctx.log(event, data, file)

    def set_progress(self, current: float, total: float, step: str | None = None, *,
                     category: str | None = None) -> None:
        """Report progress; ``step`` names the phase (``category`` is its older name)."""
        self.ctx.set_progress(current, total, step if step is not None else category)

    def set_metrics(self, value: Mapping[str, Any], category: str | None = None, *, step: str | None = None) -> None:
        """Merge metrics into a non-empty step (``category`` is the same, by its older name)."""
        self.ctx.set_metrics(value, category if category is not None else step)

    def log_message(self, message: str, level: LogLevel | str | None = None, *,
                    context: LogLevel | str | None = None, **kwargs: Any) -> None:
        """A user-facing message (``context``: upstream's deprecated name for ``level``)."""
        if context is not None:
            level = resolve_level(level, context)
        self.ctx.log_message(message, level, **kwargs)


__all__ = ["BaseAction", "NoResult", "invoke", "validate_params", "validate_result"]
