#!/usr/bin/env bash
# The report a pull request gets: this checkout's model against the base branch's, as one
# Markdown comment. The GitHub workflow pr-report.yml runs exactly this; so do the tests
# (tests/e2e/test_pr_report.py), on a repository with a local "origin".
#
# Usage: deploy/github/pr-report.sh [BASE]
#   BASE: the git revision to compare against; default origin/$GITHUB_BASE_REF (set by
#   GitHub on pull_request; the checkout needs fetch-depth: 0 for it to exist).
# Environment: as deploy/scheduled-retrain.sh: MLFLOW_TRACKING_URI (+ USERNAME/PASSWORD or
#   TOKEN; unset or empty: ./mlflow.db), the DVC remote's credentials, DVC_REMOTE_ENDPOINT.
# Writes reports/compare/: report.md, report.json, curves.png, roc.png and comment.md, the
# comment's body (its first line is the marker that finds it again on the next push).
# Exit 0: written; 1: a step failed (the check goes red); 2: BASE not given or not found.
#
# The base's model must have a run in the store to be compared. Against a team server it
# usually has (the base's pipeline logged it). When it has not (a fresh runner with a local
# store, a wiped server), the base is built in a temporary git worktree with its own code
# (src/ on PYTHONPATH; the packages are this checkout's) against this same store and DVC
# cache, and compared again. Training is deterministic: the model is the one its dvc.lock
# names.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"  # dvc.yaml's stage commands call `python`

MARKER="<!-- epochline-pr-report -->"
out=reports/compare
comment=$out/comment.md

base=${1:-${GITHUB_BASE_REF:+origin/$GITHUB_BASE_REF}}
if [ -z "$base" ]; then
  echo "usage: $0 BASE (a git revision), or set GITHUB_BASE_REF" >&2
  exit 2
fi
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
  echo "pr-report: base revision '$base' not found here: fetch it (actions/checkout with fetch-depth: 0)" >&2
  exit 2
fi

# An Actions secret that is not set arrives as an empty variable: treat it as unset.
for name in MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD \
  MLFLOW_TRACKING_TOKEN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY DVC_REMOTE_ENDPOINT; do
  [ -n "${!name:-}" ] || unset "$name"
done
# One store for both sides: the base's worktree logs where this checkout does.
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$root/mlflow.db}"

remote=$(dvc remote default 2>/dev/null || true)
if [ -n "$remote" ] && [ -n "${DVC_REMOTE_ENDPOINT:-}" ]; then  # local config: never committed
  dvc remote modify --local "$remote" endpointurl "$DVC_REMOTE_ENDPOINT"
fi

# The outputs as the commit checked out here names them, so that what did not change does
# not run again. Some may be in no cache or remote yet: repro builds those.
fetch_outputs() {
  if [ -n "$remote" ]; then
    dvc pull --allow-missing
  else
    dvc checkout --allow-missing
  fi
}

# `epochline repro` here, then sets `target` to what names the model it built for compare:
# REV where the committed dvc.lock describes it; else (a dvc.lock not committed after the
# change) the run repro printed, and `note` says so.
build() {
  local rev=$1 log
  log=$(mktemp)
  epochline repro | tee "$log"
  if git diff --quiet HEAD -- dvc.lock; then
    target=$rev
  else
    target=$(sed -n "s/^pipeline: run '.*' (\([0-9a-f]\{32\}\))$/\1/p" "$log")
    if [ -z "$target" ]; then
      echo "pr-report: no run id in epochline repro's summary above" >&2
      exit 1
    fi
    note="${note}> **Note:** the dvc.lock committed at \`$rev\` is not what building it here"
    note="${note} gives (\`epochline repro\` changed it), so the model built here is compared:"
    note="${note} run \`$target\`. Commit dvc.lock after \`epochline repro\`."$'\n\n'
  fi
  rm -f "$log"
}

tree=""
cleanup() {
  if [ -n "$tree" ]; then
    git -C "$root" worktree remove --force "$tree" || rm -rf "$tree"
    git -C "$root" worktree prune
  fi
}
trap cleanup EXIT

# The base checked out in a temporary worktree, built against this store and DVC cache.
build_base() {
  local cache
  tree=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/epochline-base.XXXXXX")
  echo "pr-report: the worktree is $tree"
  git worktree add --detach "$tree" "$base"
  cache=$(dvc cache dir)
  if [ -f .dvc/config.local ]; then  # the remote's endpoint and other local settings
    cp .dvc/config.local "$tree/.dvc/config.local"
  fi
  cd "$tree"
  dvc cache dir --local "$cache"
  fetch_outputs
  local before=${PYTHONPATH-}
  export PYTHONPATH="$tree/src${before:+:$before}"  # the base's code, not this checkout's
  build "$base"
  if [ -n "$before" ]; then export PYTHONPATH="$before"; else unset PYTHONPATH; fi
  cd "$root"
}

note=""
if [ -n "$remote" ]; then
  dvc pull --allow-missing
fi
build HEAD
head_target=$target

errors=$(mktemp)
# One compare writes report.md, report.json and the plots; its error line is kept, so that
# only a base whose model this store lacks (not a bad HEAD, params or store) builds the base.
compare() {
  local rc=0
  epochline compare "$1" "$head_target" --format md --out "$out" 2>"$errors" || rc=$?
  cat "$errors" >&2
  return "$rc"
}
base_missing() {
  grep -Eq "^error: compare: (.*: no run in .* holds its model|git [0-9a-f]+: its .* is not available here)" "$errors"
}
rc=0
compare "$base" || rc=$?
if [ "$rc" -eq 2 ] && base_missing; then
  echo "pr-report: $base's model is not in this store: building it in a worktree"
  build_base
  base_target=$target
  compare "$base_target" || exit 1  # built here and still not comparable: a failure
elif [ "$rc" -ne 0 ]; then
  exit 1  # exit 2 is this script's for BASE itself (above)
fi
rm -f "$errors"

if [ -n "${GITHUB_RUN_ID:-}" ]; then
  run_url="${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"
  plots="the artifact epochline-compare of [this run]($run_url)"
else
  plots="$out/"
fi
{
  echo "$MARKER"
  printf '%s' "$note"
  # A comment cannot show the report's images (files beside it): it names them instead.
  # shellcheck disable=SC2016  # the backquotes are Markdown's, not a command
  sed -E 's/^!\[([^]]*)\]\(([A-Za-z0-9_.-]+\.png)\)$/- `\2`: \1/' "$out/report.md"
  printf '\n---\n'
  echo "Plots (curves.png, roc.png): $plots. A comment cannot show a workflow's images."
} >"$comment"
# GitHub refuses a comment over 65536 characters: cut it well before (bytes >= characters).
limit=60000
if [ "$(wc -c <"$comment")" -gt "$limit" ]; then
  head -c "$limit" "$comment" >"$comment.cut"
  printf '\n\n*(cut here: the whole report is report.md in %s)*\n' "$plots" >>"$comment.cut"
  mv "$comment.cut" "$comment"
fi
echo "pr-report: the comment is $comment"
