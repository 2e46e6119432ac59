# Two commands on a fresh Debian machine (as root): `make demo` and `make test`.
# Both install what they need: a virtualenv for Python, Debian's docker.io engine, the images.

VENV := .venv
PYTHON := $(VENV)/bin/python
# The SSH tests again with paramiko 5.1 over pyinfra 3.10's paramiko<5 pin (paramiko <= 4.0 is
# affected by CVE-2026-44405; upstream pyinfra allows 5, unreleased): a venv of its own.
CANARY_VENV := .venv-paramiko5
RELEASES := debian12 debian13

.PHONY: demo test unit integration judges lint docs paramiko5-canary bench engine images clean

$(CANARY_VENV)/.installed: pyproject.toml
	rm -rf $(CANARY_VENV)
	python3 -m venv $(CANARY_VENV)
	$(CANARY_VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	$(CANARY_VENV)/bin/pip install -q --disable-pip-version-check 'paramiko==5.1.0' 2>&1 | grep -v 'paramiko<5' || true
	$(CANARY_VENV)/bin/python -c "import paramiko; assert paramiko.__version__ == '5.1.0', paramiko.__version__"
	touch $@

$(VENV)/.installed: pyproject.toml
	rm -rf $(VENV)
	python3 -m venv $(VENV) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq python3-venv >/dev/null && rm -rf $(VENV) && python3 -m venv $(VENV); }
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

engine:
	tools/ensure-docker.sh

images: engine
	tools/images.sh $(RELEASES)

# Hardens throwaway app, db and backup containers end to end, showing the dry-run diff first.
demo: $(VENV)/.installed engine
	tools/images.sh debian12
	$(PYTHON) tools/demo.py

# The whole suite: unit tests, then integration tests on Debian 12 and 13 containers.
# Unit tests, then the containers.
test: unit integration

# Lint, format, types (strict on the package), and the generated docs in step with the models.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check pyinfra_hardening tests tools deploys config.py
	$(VENV)/bin/ruff format --check pyinfra_hardening tests tools deploys config.py
	$(VENV)/bin/mypy
	$(PYTHON) -m pyinfra_hardening.docs --check

# Regenerate the README's data-key table and group_data/*.py from the settings models.
docs: $(VENV)/.installed
	$(PYTHON) -m pyinfra_hardening.docs

# Logins and ssh-audit with paramiko 5.1, on Debian 13: there its "Hardened" policy is deployed
# unmodified (paramiko 5.1 speaks ML-KEM). One fleet: the lockout faults run in `make test`.
paramiko5-canary: $(CANARY_VENV)/.installed images
	$(CANARY_VENV)/bin/python -m pytest -n 1 -k debian13 tests/integration/test_ssh.py

# The slow judges, not in `make test`: testssl.sh's full scan and grade of the TLS front, and
# the audit rules loaded into a kernel of their own (a VM under QEMU, with bsdtar making its
# initramfs of a hardened container's files).
judges: $(VENV)/.installed images
	command -v qemu-system-x86_64 >/dev/null && command -v bsdtar >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 libarchive-tools >/dev/null; }
	$(PYTHON) -m pytest tests/judges

unit: $(VENV)/.installed
	$(PYTHON) -m pytest -m unit

# pytest-xdist: each release's fleet in a worker of its own (tests/conftest.py groups them; most
# of the time is waiting on containers and TOTP windows; a third worker made the run slower on
# two cores). Unit tests stay in one process: importing pyinfra's command line patches threading
# with gevent, which xdist workers cannot run under.
integration: $(VENV)/.installed images
	$(PYTHON) -m pytest -m integration -n 2

# Timings of the roles against throwaway containers: a table, and build/bench/results.json.
bench: $(VENV)/.installed images
	$(PYTHON) tools/bench.py

clean:
	rm -rf $(VENV) $(CANARY_VENV) build *.egg-info .pytest_cache
