"""Export the acting policy (encoder + posterior + one-step sequence filter + actor) as one ONNX graph."""
