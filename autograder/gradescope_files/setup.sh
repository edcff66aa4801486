#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image,
# with the zip unpacked in /autograder/source. It installs Python 3.11 and
# bubblewrap, installs the kit into source/venv from requirements.lock,
# converts the model weights into source/weights and compiles the model's
# forward passes into source/jax-cache, then grades the student stub to check
# the installation. Grading a submission afterwards converts nothing.
#
# Environment, for trying the bundle outside Gradescope:
#   LM_GRADE_SETUP_APT=0  skip apt-get (python3.11 and its venv module must
#                         already be installed)
set -euo pipefail

source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
started=$SECONDS

if [ "${LM_GRADE_SETUP_APT:-1}" != 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    if ! command -v python3.11 >/dev/null || ! python3.11 -c 'import ensurepip' 2>/dev/null; then
        apt-get install -y --no-install-recommends python3.11 python3.11-venv
    fi
    # The sandbox uses bubblewrap when it is installed; without it, student
    # code runs in the kit's own namespace sandbox, so a failure is not fatal.
    apt-get install -y --no-install-recommends bubblewrap \
        || echo "setup.sh: warning: bubblewrap could not be installed; grading continues without it" >&2
fi

if ! command -v python3.11 >/dev/null; then
    echo "setup.sh: error: python3.11 is not installed; choose Gradescope's Ubuntu 22.04 base image, which packages it" >&2
    exit 1
fi

python3.11 -m venv "$source_dir/venv"
"$source_dir/venv/bin/pip" install --no-cache-dir -r "$source_dir/kit/requirements.lock" "$source_dir/kit"
echo "setup.sh: installed the kit in $((SECONDS - started)) s"

"$source_dir/venv/bin/python" -m autograder.gradescope warm --source "$source_dir"
echo "setup.sh: done in $((SECONDS - started)) s"
