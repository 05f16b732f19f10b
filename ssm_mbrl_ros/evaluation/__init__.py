"""Closed-loop evaluation: rollouts, metrics and trajectory plots."""
