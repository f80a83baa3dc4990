#!/usr/bin/env bash
# One scheduled retrain on a machine that starts from a fresh clone with `make setup` done:
# the GitHub workflow runs exactly this, and so do the team-mode tests.
#
# Environment: MLFLOW_TRACKING_URI (+ MLFLOW_TRACKING_USERNAME/PASSWORD), the DVC remote's
# credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), a git identity, and where the
# remote is not AWS itself, DVC_REMOTE_ENDPOINT (an S3-compatible endpoint URL).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # dvc.yaml's stage commands call `python`

remote=$(dvc remote default 2>/dev/null || true)
if [ -z "$remote" ]; then
  echo "error: no default DVC remote in .dvc/config: dvc remote add -d NAME s3://BUCKET/PATH" >&2
  exit 1
fi
if [ -n "${DVC_REMOTE_ENDPOINT:-}" ]; then  # local config: never committed
  dvc remote modify --local "$remote" endpointurl "$DVC_REMOTE_ENDPOINT"
fi
# The data and the last outputs, so that an unchanged pipeline reruns nothing. The very
# first run finds nothing to pull.
dvc pull --allow-missing

rc=0
epochline retrain --commit --push || rc=$?
if [ "$rc" -eq 75 ]; then
  echo "another retrain holds the lock; skipped"
  exit 0
elif [ "$rc" -ne 0 ]; then
  exit "$rc"
fi
git push
