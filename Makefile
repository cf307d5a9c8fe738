# Two commands for a fresh machine: `make demo` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
RUN := $(VENV)/bin/python
UV := $(PYTHON) -m uv
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.DEFAULT_GOAL := help
.PHONY: help setup browser demo test lint format train serve reports evidently-ui clean

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(VENV)/.installed: uv.lock pyproject.toml
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.9"
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: $(VENV)/.installed ## Create .venv from the lock file

CHROMIUM ?= /usr/bin/chromium
export MLOPS_TEST_CHROMIUM := $(CHROMIUM)
# The page tests drive Debian's chromium through Playwright (Playwright's own browser download
# needs hosts of its own); as root, or through sudo, apt-get installs it when it is missing.
browser: ## Install chromium for the page tests (apt-get), unless it is there
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; \
	[ -x $(CHROMIUM) ] || { echo "chromium did not install at $(CHROMIUM)" >&2; exit 1; }

demo: setup ## Run the closed loop on the local target (reads MLOPS_DATA_SOURCE)
	$(RUN) -m flows.demo

# Test files run on TEST_WORKERS processes (pytest-xdist), each file whole on one of them: most
# of a test's time is servers, schedules and subprocesses waiting, which overlap well.
TEST_WORKERS ?= 2
test: setup browser lint ## Lint, then run every test
	$(RUN) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup ## ruff, codespell, import contracts, types (mypy), IAM policies (parliament), GitHub workflows
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/codespell
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(RUN) -m deployments.aws.policy_files --check
	$(RUN) -m deployments.aws.policy_lint
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --quiet .github/workflows

format: setup ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

train: setup ## Run the training flow once with the current settings
	$(RUN) -m flows.training

serve: setup ## Serve the live version and its prediction page on http://127.0.0.1:8080/
	$(RUN) -m deployments.local.serve --port 8080

reports: setup ## Serve the local drift reports on 127.0.0.1:8765 (MLOPS_REPORTS_URL)
	$(RUN) -m monitoring.publish.report_server

evidently-ui: setup ## Evidently UI on the monitoring history, 127.0.0.1:8000 (MLOPS_EVIDENTLY_UI_PORT)
	$(RUN) -m monitoring.publish.history_ui

clean: ## Remove local state (.mlops) and the virtual environment
	rm -rf .mlops $(VENV)
