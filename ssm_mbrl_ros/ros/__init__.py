"""ROS 2 nodes: the only package that imports rclpy or message packages. Nodes stay thin; the work lives in
the core packages (sim/, runtime/, link/)."""
