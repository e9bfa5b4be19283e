"""keras.metrics: tinydeep/metrics.py (compile's `metrics=` takes their names)."""

from tinydeep.metrics import accuracy, f1, mae, precision, recall, rmse, roc_auc

__all__ = ["accuracy", "f1", "mae", "precision", "recall", "rmse", "roc_auc"]
