# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The MySQL/MariaDB driver builds only where its client library is installed.
EXTRAS := test$(shell pkg-config --exists libmariadb 2>/dev/null && echo ,mysql)

.PHONY: setup run web test lint

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed-$(EXTRAS)

# The demo starts afresh each time, in var/demo (its own SQLite database and clones).
run: setup
	rm -rf var/demo
	VAR_DIR=var/demo $(PY) manage.py migrate --verbosity 0
	VAR_DIR=var/demo $(PY) -m simulated.demo

# Serve the demo's database (after `make run`) on http://127.0.0.1:8000/ with gunicorn, as the image does.
web: setup
	VAR_DIR=var/demo ALLOWED_HOSTS=127.0.0.1,localhost \
	  SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(48))') \
	  $(PY) -m web.serve --bind 127.0.0.1:8000 --workers 2

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
