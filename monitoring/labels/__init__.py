"""Ground-truth labels: upload, validation and reading by prediction hour."""
