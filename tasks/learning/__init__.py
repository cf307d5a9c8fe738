"""The training library: data, split, candidates, tuning, ONNX export, tracking (no Prefect)."""
