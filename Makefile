# Guichet — set-up, run and test. `make run` and `make test` are the README's first commands.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
export FLASK_APP := app:create_app
export TZ := UTC

TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/guichet_test
TEST_REDIS_URL    ?= redis://127.0.0.1:6379
DEMO_CUSTOMERS    ?= 3000

.PHONY: setup run test test-sqlite test-postgresql lint assets translations messages clean

setup: $(BIN)/.installed assets translations

$(BIN)/.installed: setup.cfg constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

assets: node_modules/.package-lock.json
	mkdir -p app/static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js app/static/vendor/
	cp node_modules/@picocss/pico/css/pico.min.css app/static/vendor/
	mkdir -p app/static/vendor/bpmn-js
	cp node_modules/bpmn-js/dist/bpmn-viewer.production.min.js node_modules/bpmn-js/dist/bpmn-modeler.production.min.js \
	   node_modules/bpmn-js/dist/assets/diagram-js.css node_modules/bpmn-js/dist/assets/bpmn-js.css app/static/vendor/bpmn-js/
	mkdir -p app/static/vendor/bpmn-js/bpmn-font
	cp -r node_modules/bpmn-js/dist/assets/bpmn-font/css node_modules/bpmn-js/dist/assets/bpmn-font/font app/static/vendor/bpmn-js/bpmn-font/

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

translations: $(BIN)/.installed
	$(BIN)/pybabel compile -d app/translations --statistics 2>&1 | grep -v '^compiling' || true

# After changing user-facing text: extract it and update the English catalogue.
messages: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location -o app/translations/messages.pot .
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations --ignore-obsolete

# Runs the application on the embedded default: SQLite, embedded Celery broker, demo data, the
# stand-in billing system (Procfile "billing") that the dossiers' affaires are mirrored to, and a
# demo mail server (Procfile "mail") keeping the mails sent in instance/demo-mailbox (a Maildir).
run: export BILLING_API_URL ?= http://127.0.0.1:5055/api
run: export SMTP_URL ?= smtp://127.0.0.1:8025
run: setup
	$(BIN)/flask db upgrade
	$(BIN)/flask processes deploy
	$(BIN)/flask documents deploy
	$(BIN)/flask seed --if-empty --customers $(DEMO_CUSTOMERS)
	@echo "Guichet : http://127.0.0.1:5000  (arrêt : Ctrl+C)"
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/honcho start

# The whole suite, on SQLite then on PostgreSQL (TEST_POSTGRES_URL).
test: setup test-sqlite test-postgresql

test-sqlite:
	$(BIN)/pytest

# PostgreSQL runs also put rate limiting and the Celery broker on Redis, as in production.
test-postgresql:
	GUICHET_TEST_DATABASE_URL=$(TEST_POSTGRES_URL) \
	GUICHET_TEST_RATELIMIT_STORAGE_URI=$(TEST_REDIS_URL)/14 \
	GUICHET_TEST_BROKER_URL=$(TEST_REDIS_URL)/15 \
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check app workers tests bench tools

clean:
	rm -rf $(VENV) node_modules app/static/vendor instance
