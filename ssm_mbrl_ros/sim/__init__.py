"""Batched quadrotor simulator (torch): dynamics, rate controller, vehicles, tasks, vector env."""
