# The README's two commands. Each does its own set-up on a fresh machine (Debian 12, Python 3.11).
#   make preview STACK=prod   offline preview of a stack (no vCenter, no Pulumi CLI, no credentials);
#                             POLICY_PACK=policies [POLICY_CONFIG=file] also runs the policy pack
#   make test                 ruff, mypy and pytest, with the real validators the tests drive

STACK ?= prod
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests drive as real validators: cloud-init (schema + VMware datasource),
# netplan (network config), shellcheck (node scripts), graphviz (the architecture picture), jq (the backup
# inventory script runs with it, as in the kubectl image). util-linux's unshare is already there.
# End-to-end harness (tools/lab): slapd + ldap-utils (a real LDAP directory), chromium (a real browser),
# libatomic1 (PyPI playwright's bundled node needs it; without it Playwright only says "Connection closed
# while reading from the driver");
# Node.js with npm runs configurable-http-proxy (pinned in tools/lab/package-lock.json): Debian's nodejs + npm
# are installed only when no `npm` is on PATH (a NodeSource nodejs already brings its own npm).
# 389-ds-base: the 389 Directory Server (FreeIPA's directory) the suite runs as a foreground ns-slapd from its own
# instance directory (tools/lab/ds389.py); no instance or systemd unit is created, no daemon is left running.
# A real Active Directory DC (tools/lab/samba.py): samba-ad-dc (Samba's AD DC; pulls samba, winbind and
# samba-dsdb-modules) and samba-ad-provision (bookworm ships the provisioning data apart); ldb-tools
# (ldbmodify writes an expired password's old pwdLastSet into the stopped template, which LDAP cannot). The
# suite runs its own `samba -i` on loopback; the daemons the packages
# would start (smbd, nmbd, winbind, samba-ad-dc) are stopped and masked after installing, so none is left running.
# postgresql: a real PostgreSQL server (run by the suite from its own data directory, as nobody) that the hub
# database's pg_dump job dumps and pg_restore restores (tests/e2e/test_hub_database_pg_dump.py).
SAMBA_SERVICES := smbd nmbd winbind samba-ad-dc
DEBIAN_TEST_PACKAGES := cloud-init netplan.io shellcheck graphviz slapd ldap-utils chromium libatomic1 jq gnupg curl \
	samba-ad-dc samba-ad-provision ldb-tools 389-ds-base postgresql
LAB := tools/lab
# checkov (tests/test_checkov.py) in a virtualenv of its own: its pins conflict with .venv's (requirements-checkov.txt).
CHECKOV_VENV := .venv-checkov
# The AWS CLI the backup upload test runs (tests/test_backup.py), also in its own virtualenv (requirements-awscli.txt).
AWSCLI_VENV := .venv-awscli

.PHONY: preview test setup setup-debian controlplane vcsim lint typecheck pytest benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The policy pack's pins go into the same virtualenv (they agree with the program's), so
# `make preview POLICY_PACK=policies` and the tests run the pack with exactly those versions.
$(VENV)/.installed-program: requirements.txt policies/requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r policies/requirements.txt
	touch $@

$(VENV)/.installed-tests: requirements-test.txt $(VENV)/.installed-program
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

setup-debian:
	@missing=""; for p in $(DEBIAN_TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  if [ -d /run/systemd/system ]; then \
	    $$SUDO systemctl disable --now $(SAMBA_SERVICES) >/dev/null 2>&1; \
	    $$SUDO systemctl mask $(SAMBA_SERVICES) >/dev/null 2>&1 || true; \
	  fi; \
	fi

# configurable-http-proxy for the lab hub, exactly as locked (needs node and npm from setup-debian).
$(LAB)/node_modules/.installed: $(LAB)/package.json $(LAB)/package-lock.json | setup-debian
	cd $(LAB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(AWSCLI_VENV)/.installed: requirements-awscli.txt
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AWSCLI_VENV)/bin/python -m pip install --quiet -r requirements-awscli.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

# The suite's Kubernetes control plane (tools/controlplane): etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler built from the Go modules pinned in tools/controlplane/go.mod, cached per machine under
# ~/.cache/dsaas/controlplane (Go's own caches in ~/go and ~/.cache/go-build). Uses a `go` of the pinned release
# when one is on PATH, else fetches that release from the Go module proxy. MINOR=1.34|1.36 builds another minor.
controlplane: $(VENV)/.installed-program
	$(BIN)/python -m tools.controlplane build $(if $(MINOR),--minor $(MINOR))

# vcsim, VMware's vCenter simulator, from govmomi pinned in tools/vcsim/go.mod (same Go, same cache root).
# After the control plane: both use the Go toolchain that build fetches into one cache directory.
vcsim: $(VENV)/.installed-program | controlplane
	$(BIN)/python -m tools.lab.vcsim build

setup: $(VENV)/.installed-tests setup-debian $(LAB)/node_modules/.installed $(CHECKOV_VENV)/.installed $(AWSCLI_VENV)/.installed controlplane vcsim

# The preview renders the Helm charts with Helm's engine (helm-python-sdk, a test/preview requirement).
preview: $(VENV)/.installed-tests
	$(BIN)/python -m tools.preview $(STACK) $(if $(OUT),--out $(OUT)) \
	  $(if $(POLICY_PACK),--policy-pack $(POLICY_PACK)) $(if $(POLICY_CONFIG),--policy-pack-config $(POLICY_CONFIG))

lint: $(VENV)/.installed-tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-tests
	$(BIN)/mypy .
	$(BIN)/mypy policies/__main__.py

pytest: setup
	$(BIN)/python -m pytest

# Set-up, lint and type check run side by side: on a cold machine the Go builds keep both cores busy for
# about ten minutes while apt and pip mostly wait on the network (each target's output is shown whole, when
# it ends). The tests start once all of them have passed.
test:
	$(MAKE) --no-print-directory --output-sync=target -j3 setup lint typecheck
	$(MAKE) --no-print-directory pytest

benchmark: $(VENV)/.installed-program
	$(BIN)/python -m tools.benchmark 10 100 500

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(AWSCLI_VENV) .mypy_cache .ruff_cache .pytest_cache $(LAB)/node_modules test-artifacts
