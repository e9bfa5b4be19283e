"""Conversions that keep the graph connected: a dtype cast and a copy to another device.

The gradient of a cast is `dy` itself; the engine (tinydeep/tensor.py: unbroadcast) casts it
back to the input's dtype. The gradient of a device copy is `dy` copied back.

Shapes: x and y have the same shape.
"""

from __future__ import annotations

from tinydeep import backend
from tinydeep.tensor import differentiable


def astype_forward(x, dtype):
    """y = x converted to `dtype`."""
    return x.astype(dtype), None


def astype_backward(dy, cache):
    """dx = dy (cast back to x's dtype by the engine)."""
    return (dy,)


def to_device_forward(x, device):
    """y = x copied to `device` ("cpu" or "cuda")."""
    return backend.to_device(x, device), backend.device_of(x)


def to_device_backward(dy, source_device):
    """dx = dy copied back to the device x was on."""
    return (backend.to_device(dy, source_device),)


astype = differentiable(astype_forward, astype_backward, "astype")
to_device = differentiable(to_device_forward, to_device_backward, "to_device")
