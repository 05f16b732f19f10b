"""World models: S5 state-space world model and the DreamerV3 RSSM baseline."""
