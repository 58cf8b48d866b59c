# Two commands for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint serve worker clean-demo

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py setup_demo
	$(PY) manage.py run_reminders --customer demo
	@echo ""
	@echo "E-mails envoyés (fichiers .eml) : var/sent-mail/"
	@echo "Documents réacheminés (PDF + manifeste.csv) : var/divert/demo/"
	@echo "Preuves d'envoi (PDF) : var/media/dispatches/"
	@echo "Ensuite : make serve, puis http://127.0.0.1:8000/admin/ (administration) ou http://127.0.0.1:8000/ (espace client), identifiants ci-dessus"

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

serve: $(STAMP)
	$(PY) manage.py runserver 127.0.0.1:8000

worker: $(STAMP)
	$(PY) manage.py qcluster

clean-demo:
	rm -rf var/
