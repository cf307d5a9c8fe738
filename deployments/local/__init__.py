"""The local target: versions on disk, the live function and its HTTP front."""
