"""What every deployment target returns."""
