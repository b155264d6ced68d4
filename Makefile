# Two commands do everything on a fresh machine:
#   make run    install loomkin-mcp (with a Python language server) into .venv and serve the project over
#               HTTP on 127.0.0.1:4200
#   make test   install what the tests need and run them
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROJECT ?= $(CURDIR)

.PHONY: install install-test run test soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installed once, and again only when pyproject.toml changes; pip's chatter goes to a log shown on failure.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@$(BIN)/python -m pip install --quiet -e ".[python]" > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "make test: loomkin-mcp and the test tools into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --quiet -e ".[test,python]" > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# Language servers from PyPI live in an environment of their own: beside loomkin-mcp's python they would be
# detected first for every Python project of the tests (basedpyright before pylsp).
SERVERS_VENV := .venv-servers
LANGUAGE_SERVERS_PYPI := basedpyright==1.40.2 ruff==0.17.6 jedi-language-server==0.47.0

$(SERVERS_VENV)/.installed: Makefile | $(BIN)/python
	@echo "make test: language servers from PyPI into $(SERVERS_VENV) (log: $(SERVERS_VENV)/install.log)"
	@$(PYTHON) -m venv $(SERVERS_VENV)
	@$(SERVERS_VENV)/bin/python -m pip install --quiet $(LANGUAGE_SERVERS_PYPI) > $(SERVERS_VENV)/install.log 2>&1 \
		|| (cat $(SERVERS_VENV)/install.log; exit 1)
	@touch $@

install-test: $(VENV)/.installed-test node_modules/.installed $(SERVERS_VENV)/.installed apt-needs

# Debian programs the tests use, as command=package: git; strace (the reliability suite audits every program and
# file change of the server's tree); bubblewrap (the sandbox); chromium (the status page's tests, driven by
# Playwright, never `playwright install`); elixir (`mix new` projects for the symbol tools); shellcheck, go and
# gopls (the language-server matrix: bash-language-server lints with shellcheck). And PostgreSQL for the
# decision-graph tests (a throwaway cluster on loopback). Whatever is missing is installed in one apt run, as root
# or through password-less sudo; without either the tests that need it skip and say why.
APT_NEEDS := git=git strace=strace bwrap=bubblewrap chromium=chromium mix=elixir shellcheck=shellcheck go=golang-go \
	gopls=gopls

.PHONY: apt-needs
apt-needs:
	@missing=""; \
	for need in $(APT_NEEDS); do command -v $${need%%=*} >/dev/null || missing="$$missing $${need#*=}"; done; \
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then apt="apt-get"; elif sudo -n true 2>/dev/null; then apt="sudo -n apt-get"; \
	else echo "make test: not root and no password-less sudo, so what these Debian packages give stays missing:$$missing (the tests that need it skip)"; \
		exit 0; fi; \
	echo "make test: from Debian's packages,$$missing (log: .apt-install.log)"; \
	($$apt update -qq && DEBIAN_FRONTEND=noninteractive $$apt install -y -qq --no-install-recommends $$missing) \
		> .apt-install.log 2>&1 || (cat .apt-install.log; exit 1)

# Upstream MCP servers from npm for the tests (Node.js and npm come with the machine, or from apt).
node_modules/.installed: package.json
	@command -v npm >/dev/null || (apt-get update && apt-get install -y --no-install-recommends nodejs npm)
	@echo "make test: MCP servers, clients and language servers from npm into node_modules (log: .npm-install.log)"
	@npm install --no-audit --no-fund --loglevel=error > .npm-install.log 2>&1 || (cat .npm-install.log; exit 1)
	@touch $@

run: install
	$(BIN)/loomkin-mcp --http --root "$(PROJECT)"

# A wheel and an sdist in dist/, to install elsewhere (`pipx install 'dist/loomkin_mcp-….whl[python]'`).
.PHONY: dist
dist: | $(BIN)/python
	@$(BIN)/python -m pip install --quiet build > $(VENV)/build.log 2>&1 || (cat $(VENV)/build.log; exit 1)
	@$(BIN)/python -m build --outdir dist . > $(VENV)/build.log 2>&1 || (cat $(VENV)/build.log; exit 1)
	@ls dist/

# Four workers on two cores: most tests wait on real servers and language servers, not on the CPU.
TEST_WORKERS ?= 4

test: install-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# The reliability suite with each child fault repeated 50 times instead of 5 (≈ 15 min).
soak: install-test
	LOOMKIN_SOAK=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --timeout=1200 tests/reliability

clean:
	rm -rf $(VENV) $(SERVERS_VENV) build *.egg-info .pytest_cache

# Speed, measured against the reference tools in the same run (not part of `make test`).
# Aider, the repo map's reference, lives in its own environment: its pins are not ours.
AIDER_VENV := bench/.venv-aider
# Serena, the symbol tools' peer, likewise (its language servers come with it).
SERENA_VENV := bench/.venv-serena
SERENA ?= $(SERENA_VENV)/bin/serena

BENCH_OUT ?= bench/results
BENCH_MD ?= BENCHMARKS.md
BENCH_CORPUS ?=
STARTS ?= 30
EDITS ?= 30
CALLS ?= 500
MAPS ?= 5
SYMBOL_CALLS ?= 30
MAP_COMMITS ?= 25
# Repositories whose history measures the map's quality (empty: ../shared/corpora's bundles, else this one).
MAP_REPOS ?=

.PHONY: bench bench-smoke install-bench
install-bench: install-test $(AIDER_VENV)/bin/aider $(if $(SERENA),$(SERENA_VENV)/.tried)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"

# Every measure, side by side with its reference, then BENCHMARKS.md and the latency plot (≈ 6 min).
bench: install-bench
	mkdir -p $(BENCH_OUT)
	LOOMKIN_BENCH_CORPUS=$(BENCH_CORPUS) $(BIN)/python bench/server_costs.py --repetitions $(STARTS) \
		--json $(BENCH_OUT)/server_costs.json
	$(BIN)/python bench/containment_costs.py --calls $(CALLS) --json $(BENCH_OUT)/containment_costs.json
	$(BIN)/python bench/edit_diagnostics.py --repetitions $(EDITS) --json $(BENCH_OUT)/edit_diagnostics.json
	$(BIN)/python bench/proxy_latency.py --calls $(CALLS) --json $(BENCH_OUT)/proxy_latency.json
	LOOMKIN_BENCH_CORPUS=$(BENCH_CORPUS) AIDER_PYTHON=$(AIDER_VENV)/bin/python \
		$(BIN)/python bench/repo_intel.py --repetitions $(MAPS) --json $(BENCH_OUT)/repo_intel.json
	SERENA=$(SERENA) $(BIN)/python bench/symbol_tools.py --calls $(SYMBOL_CALLS) --json $(BENCH_OUT)/symbol_tools.json
	LOOMKIN_MAP_REPOS=$(MAP_REPOS) AIDER_PYTHON=$(AIDER_VENV)/bin/python \
		$(BIN)/python bench/map_quality.py --commits $(MAP_COMMITS) --json $(BENCH_OUT)/map_quality.json
	$(BIN)/python bench/report.py $(BENCH_OUT) $(BENCH_MD) $(BENCH_OUT)/latency.png

# The same code on a tiny corpus, once, into a scratch directory: CI runs it so the benches cannot rot.
bench-smoke:
	$(MAKE) bench BENCH_OUT=$$(mktemp -d) BENCH_MD=/dev/null BENCH_CORPUS=json,email STARTS=1 EDITS=2 CALLS=20 MAPS=1 \
		SYMBOL_CALLS=2 SERENA= MAP_COMMITS=2 MAP_REPOS=.

$(AIDER_VENV)/bin/aider:
	$(PYTHON) -m venv $(AIDER_VENV)
	$(AIDER_VENV)/bin/python -m pip install --quiet "aider-chat==0.86.2"

# Tried once: where serena-agent does not install, the symbol bench's rows say so.
$(SERENA_VENV)/.tried:
	$(PYTHON) -m venv $(SERENA_VENV)
	$(SERENA_VENV)/bin/python -m pip install --quiet "serena-agent==2.1.0" "pyright[nodejs]==1.1.403" \
		> $(SERENA_VENV)/install.log 2>&1 \
		|| echo "serena-agent did not install (see $(SERENA_VENV)/install.log); the symbol bench says so"
	@touch $@
