"""The function artifact, the function run in its own process, smoke requests."""
