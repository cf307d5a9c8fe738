"""The foundation: settings, errors, storage, the dataset spec and the metrics."""
