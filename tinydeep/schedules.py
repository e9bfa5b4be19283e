"""Learning-rate schedules: the learning rate as a function of how many steps were taken.

A schedule holds an optimizer (tinydeep/optim.py) and a step count t, and writes
`lr = lr_at(t, base_lr)` into each of the optimizer's param groups, where base_lr is the
group's learning rate when the first schedule was made (kept in the group as "initial_lr",
as PyTorch does). `schedule.step()` counts one step; call it once after each
`optimizer.step()`, that is once per batch, so steps are optimizer iterations: He et al.'s
ResNet schedule on CIFAR-10 is `StepDecay(optimizer, milestones=[32000, 48000])`. Calling it
once per epoch instead makes every count below a count of epochs.

Read in this order:
  1. Schedule        the count, and writing the rate into the optimizer
  2. StepDecay       multiply by gamma at each milestone
  3. CosineDecay     half a cosine from base_lr down to min_lr
  4. LinearWarmup    a linear ramp up to the rate of another schedule, which then takes over

Left out on purpose: schedules that read a metric (reduce-on-plateau belongs in the training
loop's callbacks), cyclic and one-cycle schedules, and schedules given as the `lr` argument of
an optimizer (Keras's style): here a schedule is made from the optimizer, never the reverse.
"""

from __future__ import annotations

import bisect
import math
import numbers


class Schedule:
    """The base of every schedule: subclasses define `lr_at(t, base_lr)`.

    Made on an optimizer, it sets the rate for step t = 0 at once. An optimizer with no params
    yet (Keras style) gets the rate in its defaults, which bind() copies into its groups.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.steps_done = 0
        for group in self._groups():
            group.setdefault("initial_lr", group["lr"])
        self._apply()

    def lr_at(self, t: int, base_lr: float) -> float:
        """The learning rate of step t (0 for the first step) for a group whose base is base_lr."""
        raise NotImplementedError

    def step(self) -> None:
        """Count one optimizer step and set the rate for the next one."""
        self.steps_done += 1
        self._apply()

    @property
    def lr(self) -> float:
        """The rate now in force (of the first group)."""
        return self.optimizer.lr

    def _groups(self) -> list[dict]:
        return self.optimizer.param_groups or [self.optimizer.defaults]

    def _apply(self) -> None:
        for group in self._groups():
            group["lr"] = float(self.lr_at(self.steps_done, group["initial_lr"]))

    def state_dict(self) -> dict:
        """{"schedule": class name, "steps_done": int}: JSON-safe. The base rates live in the
        optimizer's param groups ("initial_lr"), so they come back with its state_dict."""
        return {"schedule": type(self).__name__, "steps_done": self.steps_done}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from a saved count; sets the rate of that step at once."""
        name = type(self).__name__
        if state_dict.get("schedule", name) != name:
            raise ValueError(f"{name}: cannot load the state of a {state_dict['schedule']}")
        self.steps_done = _count(name, "steps_done", state_dict["steps_done"], low=0)
        self._apply()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(steps_done={self.steps_done}, lr={self.lr:g})"


def _count(schedule: str, key: str, value, low: int = 1) -> int:
    """`value` as an int, or a ValueError unless it is an integer >= low."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{schedule}: {key} must be an integer >= {low}, got {value!r}")
    return int(value)


class StepDecay(Schedule):
    """lr = base_lr * gamma^(number of milestones <= t): divided by 1/gamma at each milestone.

    He et al. 2016 (ResNet on CIFAR-10): lr 0.1, gamma 0.1, milestones [32000, 48000] counted
    in iterations (batches of 128), training stopped at 64000.
    """

    def __init__(self, optimizer, milestones: list[int], gamma: float = 0.1):
        milestones = list(milestones)
        for m in milestones:
            _count("StepDecay", "every milestone", m)
        if not milestones or milestones != sorted(set(milestones)):  # strictly increasing
            raise ValueError(
                f"StepDecay: milestones must be increasing integers >= 1, got {milestones!r}"
            )
        if not isinstance(gamma, numbers.Real) or not 0 < gamma <= 1:
            raise ValueError(f"StepDecay: gamma must be a number in (0, 1], got {gamma!r}")
        self.milestones, self.gamma = milestones, float(gamma)
        super().__init__(optimizer)

    def lr_at(self, t: int, base_lr: float) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


class CosineDecay(Schedule):
    """lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2, for t up to
    total_steps, then min_lr (Loshchilov & Hutter 2017, SGDR, without restarts).

    With FTRL keep min_lr > 0: its update divides by the rate.
    """

    def __init__(self, optimizer, total_steps: int, min_lr: float = 0.0):
        self.total_steps = _count("CosineDecay", "total_steps", total_steps)
        if not isinstance(min_lr, numbers.Real) or not min_lr >= 0 or not math.isfinite(min_lr):
            raise ValueError(f"CosineDecay: min_lr must be a number >= 0, got {min_lr!r}")
        self.min_lr = float(min_lr)
        super().__init__(optimizer)

    def lr_at(self, t: int, base_lr: float) -> float:
        progress = min(t, self.total_steps) / self.total_steps
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


class LinearWarmup(Schedule):
    """A linear ramp over the first warmup_steps steps up to the rate of `after` (or base_lr),
    then `after` from its own step 0:

        lr = target * (t + 1) / warmup_steps        for t < warmup_steps
        lr = after.lr_at(t - warmup_steps)          after (base_lr without `after`)

    where target = after.lr_at(0), so the first step is not wasted at rate 0 and the ramp
    meets `after` without a jump. `after` must be made on the same optimizer, first; then
    step only the warmup, which keeps `after.steps_done` in step.
    """

    def __init__(self, optimizer, warmup_steps: int, after: Schedule | None = None):
        self.warmup_steps = _count("LinearWarmup", "warmup_steps", warmup_steps)
        if after is not None and (
            not isinstance(after, Schedule) or after.optimizer is not optimizer
        ):
            raise ValueError(
                f"LinearWarmup: after must be a schedule made on the same optimizer, got {after!r}"
            )
        self.after = after
        super().__init__(optimizer)

    def lr_at(self, t: int, base_lr: float) -> float:
        if self.after is None:
            target = base_lr
        else:
            target = self.after.lr_at(max(t - self.warmup_steps, 0), base_lr)
        if t >= self.warmup_steps:
            return target
        return target * (t + 1) / self.warmup_steps

    def _apply(self) -> None:
        if self.after is not None:
            self.after.steps_done = max(self.steps_done - self.warmup_steps, 0)
        super()._apply()
