"""Prefect flows: thin wiring of the tasks in `tasks/`.

`python -m flows.<command>` imports this package before the command's module, whose imports
take seconds; the command line and the settings are checked here first (`flows.cli.options`).
"""

from flows.cli.options import check_command_line

check_command_line()
