"""keras.optimizers: tinydeep's optimizers under Keras's names (Adagrad, Ftrl), taking Keras's
`learning_rate=`. Their update rules and defaults are tinydeep's, which match PyTorch's
(tinydeep/optim.py): Adagrad starts its accumulator at 0, not Keras's 0.1, and SGD's default
learning rate is tinydeep's; pass the values a Keras tutorial uses when they matter."""

from tinydeep import schedules
from tinydeep.optim import FTRL, SGD, AdaGrad, Adam, AdamW, Optimizer

Adagrad = AdaGrad
Ftrl = FTRL

__all__ = ["FTRL", "SGD", "AdaGrad", "Adagrad", "Adam", "AdamW", "Ftrl", "Optimizer", "schedules"]
