.PHONY: help protos check test
help: ## show this help
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
protos: ## regenerate protos/**/*_pb2*.py from the .proto files
	python scripts/gen_protos.py
check: ## ruff, mypy on common, import-linter, protos drift
	ruff check . && ruff format --check . && mypy common && lint-imports
	python scripts/gen_protos.py && git diff --exit-code -- protos/
test: ## the default test suite
	python -m pytest -m "not slow"
