"""State estimation from measured poses and flight-controller telemetry (pure numpy, no rclpy)."""
