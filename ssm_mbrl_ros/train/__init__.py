"""Online model-based training: collection in the batched simulator, sequence replay, world-model and
actor-critic updates, evaluation through the exported ONNX policy, checkpoints and resume."""
