"""The MLflow model registry and a registered version's files."""
