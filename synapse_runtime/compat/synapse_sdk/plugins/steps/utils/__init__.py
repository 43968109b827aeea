from .logging import LoggingStep
from .timing import TimingStep
from .validation import ValidationStep

__all__ = ["LoggingStep", "TimingStep", "ValidationStep"]
