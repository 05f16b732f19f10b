"""3-vector helpers on component tuples: work alike on floats (single drone) and (N,) tensors (batched sim)."""
from __future__ import annotations


def cross(a, b):
    """Cross product of 3-tuples (floats or (N,) tensors)."""
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def rotate(q, v):
    """Rotate vector v by unit quaternion q = (w, x, y, z) (body -> world), component tuples."""
    u = q[1:]
    t = [2.0 * c for c in cross(u, v)]
    ut = cross(u, t)
    return (v[0] + q[0] * t[0] + ut[0], v[1] + q[0] * t[1] + ut[1], v[2] + q[0] * t[2] + ut[2])
