.DEFAULT_GOAL := help
VENV := .venv/bin

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

run: ## Run SafeGrid (API + workers) with the embedded store and sample data; installs what is missing
	@deploy/bootstrap.sh
	$(VENV)/python -m deploy.run_local

test: ## Run the whole test suite (starts its own Redis, SecantusDB, Kannel, gunicorn, workers); installs what is missing
	@deploy/bootstrap.sh --dev --sms
	$(VENV)/pytest

lint: ## ruff and mypy
	@deploy/bootstrap.sh --dev
	$(VENV)/ruff check .
	$(VENV)/mypy

bench: ## Run the benchmarks and print their figures
	@deploy/bootstrap.sh --dev
	$(VENV)/python bench/intake.py
	$(VENV)/python bench/sms.py
	$(VENV)/python bench/locate.py
	$(VENV)/python bench/places.py
	$(VENV)/python bench/latency.py
	$(VENV)/python bench/linking.py
	$(VENV)/python bench/roster.py
	$(VENV)/python bench/faults.py
	$(VENV)/python bench/flood.py
	$(VENV)/python bench/alert.py --outside 10000
	$(VENV)/python bench/insight.py

messages: ## Extract the SMS texts into sms/locale/messages.pot and update every catalog (docs/sms-languages.md)
	@deploy/bootstrap.sh --dev
	$(VENV)/python -m sms.catalogs

clean: ## Remove local data (./var) and the virtualenv
	rm -rf var .venv

.PHONY: help run test lint bench messages clean
