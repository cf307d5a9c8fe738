"""On-demand benchmarks; each prints its figures and ratios against a baseline from the same run."""
