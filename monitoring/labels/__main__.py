"""`python -m monitoring.labels <csv>`: upload ground-truth labels."""

from monitoring.labels.commands import main

main()
