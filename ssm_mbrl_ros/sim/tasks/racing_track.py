"""Race track geometry: rectangular gates, plane-crossing tests, and a smooth closed reference path.

A gate is a vertical rectangle (opening gate_width_m x gate_height_m, frame border gate_frame_m)
centred at (x, y, z) m (world ENU), facing yaw (rad): it is flown through along its normal
n = (cos yaw, sin yaw, 0). The reference path is a periodic C2 cubic spline through, for each
gate, the points c - d n, c, c + d n (d = approach_m), so it crosses every gate centre straight
along the normal; it is tabulated at uniform arc length so it can be flown at any speed profile
s(t): p = P(s), v = T(s) s', a = K(s) s'^2 + T(s) s'' (T unit tangent, K curvature vector).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.interpolate import CubicSpline


class GateSet:
    """Gate centres (G, 3) m, normals (G, 3), lateral axes (G, 3) and yaw (G,) rad as torch tensors."""

    def __init__(self, gates_xyz_yaw_deg, width_m: float, height_m: float, frame_m: float, device, dtype):
        g = np.asarray(gates_xyz_yaw_deg, dtype=np.float64).reshape(-1, 4)
        yaw = np.radians(g[:, 3])
        kw = dict(device=device, dtype=dtype)
        self.num = g.shape[0]
        self.width_m, self.height_m, self.frame_m = width_m, height_m, frame_m
        self.centers_np = g[:, :3].copy()
        self.normals_np = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], 1)
        self.yaw_rad = torch.as_tensor(yaw, **kw)
        self.centers = torch.as_tensor(self.centers_np, **kw)
        self.normals = torch.as_tensor(self.normals_np, **kw)
        self.lateral = torch.as_tensor(np.stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)], 1), **kw)
        self.centers_soa = self.centers.t().contiguous()  # (3, G)
        self.normals_soa = self.normals.t().contiguous()  # (3, G)
        # plane coordinates of a point p: s = n.p - n.c (along normal), l = lat.p - lat.c, h = p_z - c_z
        self._s_off = (self.normals * self.centers).sum(1, keepdim=True)  # (G, 1)
        self._l_off = (self.lateral * self.centers).sum(1, keepdim=True)
        self._h_off = self.centers[:, 2:3]

    def plane_coords(self, pos_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(s, l, h), each (G, N) m, of positions (3, N): signed distance along each gate normal,
        lateral and vertical offset from the gate centre."""
        s = self.normals @ pos_m - self._s_off
        lat = self.lateral @ pos_m - self._l_off
        h = pos_m[2:3] - self._h_off
        return s, lat, h

    def corners(self) -> np.ndarray:
        """Inner-opening corners (G, 5, 3) m (closed loop) for plotting."""
        out = []
        for c, n in zip(self.centers_np, self.normals_np):
            lat = np.array([-n[1], n[0], 0.0])
            hw, hh = 0.5 * self.width_m, 0.5 * self.height_m
            pts = [c + sx * hw * lat + sz * hh * np.array([0, 0, 1.0]) for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
            out.append(pts)
        return np.asarray(out)


class ClosedPath:
    """Closed spline through the gates, tabulated at uniform arc length ds_m (torch lookups)."""

    def __init__(self, gates: GateSet, approach_m: float, device, dtype, ds_m: float = 0.02):
        pts = []
        for c, n in zip(gates.centers_np, gates.normals_np):
            pts += [c - approach_m * n, c, c + approach_m * n]
        pts = np.asarray(pts + [pts[0]])  # periodic: repeat the first knot
        u = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        spline = CubicSpline(u, pts, bc_type="periodic", axis=0)
        # arc length s(u) on a dense grid, then invert it by interpolation
        uu = np.linspace(0.0, u[-1], 40 * len(pts) + int(200 * u[-1]))
        speed = np.linalg.norm(spline(uu, 1), axis=1)
        s_of_u = np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * np.diff(uu))])
        self.length_m = float(s_of_u[-1])
        m = int(math.ceil(self.length_m / ds_m))
        self.ds_m = self.length_m / m
        s_grid = np.arange(m + 1) * self.ds_m  # last row repeats the first (wrap)
        ug = np.interp(s_grid, s_of_u, uu)
        d1, d2 = spline(ug, 1), spline(ug, 2)
        norm = np.linalg.norm(d1, axis=1, keepdims=True)
        tangent = d1 / norm
        curv = (d2 - (d2 * tangent).sum(1, keepdims=True) * tangent) / norm**2  # d^2 P / ds^2, 1/m
        self.points_np = spline(ug)
        self.gate_s_m = np.interp(u[1:-1:3], uu, s_of_u)  # arc length at each gate centre
        kw = dict(device=device, dtype=dtype)
        self._p = torch.as_tensor(self.points_np, **kw)
        self._p_soa = self._p.t().contiguous()  # (3, M + 1)
        self._t = torch.as_tensor(tangent, **kw)
        self._k = torch.as_tensor(curv, **kw)
        self._yaw = torch.as_tensor(np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0])), **kw)

    def _lookup(self, s_m: torch.Tensor):
        x = torch.remainder(s_m, self.length_m) / self.ds_m
        i = x.floor().long().clamp_(0, self._p.shape[0] - 2)
        f = (x - i.to(x.dtype)).unsqueeze(-1)
        return i, f

    def evaluate(self, s_m: torch.Tensor, sdot_mps: torch.Tensor, sddot_mps2: torch.Tensor):
        """pos (N, 3) m, vel (N, 3) m/s, acc (N, 3) m/s^2 and yaw (N,) rad at arc lengths s_m."""
        i, f = self._lookup(s_m)
        lerp = lambda tab: tab[i] + f * (tab[i + 1] - tab[i])  # noqa: E731
        pos, tan, curv = lerp(self._p), lerp(self._t), lerp(self._k)
        yaw = torch.remainder(lerp(self._yaw.unsqueeze(-1)).squeeze(-1) + math.pi, 2 * math.pi) - math.pi
        vel = tan * sdot_mps.unsqueeze(-1)
        acc = curv * sdot_mps.square().unsqueeze(-1) + tan * sddot_mps2.unsqueeze(-1)
        return pos, vel, acc, yaw

    def position_soa(self, s_m: torch.Tensor) -> torch.Tensor:
        """Path points (3, N) m at arc lengths s_m (N,)."""
        i, f = self._lookup(s_m)
        p0, p1 = self._p_soa[:, i], self._p_soa[:, i + 1]
        return p0 + f.squeeze(-1) * (p1 - p0)
