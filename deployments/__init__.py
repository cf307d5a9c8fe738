"""The Lambda handler package, artifact building and the deployers."""
