"""keras.callbacks: tinydeep's callbacks (tinydeep/callbacks.py)."""

from tinydeep.callbacks import (
    Callback,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "TerminateOnNaN",
]
