"""Torch-free ONNX policy runtime (numpy + onnxruntime only): sidecar JSON and OnnxPolicy."""
