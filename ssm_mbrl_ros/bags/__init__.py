"""Sequence replay and the rosbag2 (MCAP) episode store."""
