#!/usr/bin/env bash
# checkov.sh runs the checkov security and best-practice checks on terraform/
# and on the GitHub Actions workflows (.github/), offline. It installs checkov
# into a virtual environment under .cache/checkov on first use and reuses it
# afterwards. Exits non-zero when any check fails.
#
# Any exception is written next to the resource it applies to, as
#   #checkov:skip=CKV_AWS_NNN:reason
set -euo pipefail

CHECKOV_VERSION="3.3.30"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${root}/.cache/checkov"
checkov="${venv}/bin/checkov"

installed_version() {
	"${venv}/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null || true
}

if [[ ! -x "${checkov}" || "$(installed_version)" != "${CHECKOV_VERSION}" ]]; then
	echo "checkov.sh: installing checkov ${CHECKOV_VERSION} into ${venv}" >&2
	python3 -m venv "${venv}"
	"${venv}/bin/pip" install --quiet --disable-pip-version-check "checkov==${CHECKOV_VERSION}"
fi

cd "${root}"
export CKV_SKIP_PACKAGE_UPDATE_CHECK=True
export BC_SKIP_MAPPING=TRUE
"${checkov}" -d terraform --framework terraform --skip-download --quiet --compact "$@"
exec "${checkov}" -d .github --framework github_actions --skip-download --quiet --compact "$@"
