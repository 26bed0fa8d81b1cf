#!/usr/bin/env bash
# make test's wall time from a clean clone of HEAD under several settings, one after the other on this machine:
# the clone is set up once (make setup, timed), then before each setting everything the tests wrote is removed
# (git clean -xdf, keeping .venv and the editable install's p3d.egg-info) and `make test` runs with that
# setting's variables.
#
#   benchmarks/bench_make_test.sh "TEST_WORKERS=0" "TEST_WORKERS=2 OMP_NUM_THREADS=2" "TEST_WORKERS=2"
#
# TEST_WORKERS=0 is one pytest process (make test before pytest-xdist); OMP_NUM_THREADS=2 gives each xdist worker
# torch's default two threads instead of tests/conftest.py's one. Prints one line per setting (and the pytest
# summary); the logs stay in the printed folder. Stop other jobs first: the settings share the machine's cores.
set -euo pipefail
[ $# -ge 1 ] || set -- "TEST_WORKERS=0" "TEST_WORKERS=2"
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d /tmp/bench_make_test.XXXX)
git clone -q "$repo" "$work/p3d"
cd "$work/p3d"
echo "commit $(git rev-parse --short HEAD); $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p' | head -1); logs in $work"
start=$(date +%s)
make setup > "$work/setup.log" 2>&1
echo "make setup: $(( $(date +%s) - start )) s"
i=0
for setting in "$@"; do
    i=$((i + 1))
    git clean -qxdf -e .venv -e p3d.egg-info
    start=$(date +%s)
    rc=0
    env $setting make test > "$work/test_$i.log" 2>&1 || rc=$?
    echo "$setting: make test $(( $(date +%s) - start )) s, rc=$rc; $(grep -E '[0-9]+ passed' "$work/test_$i.log" | tail -1)"
done
