#!/bin/sh
# Print the first of the given Python commands that runs and is 3.11 or newer (what `make
# setup` makes .venv with); with none, say so in one line on stderr and exit 1.
#   scripts/find-python.sh python3.11 python3.12 python3.13 python3
found=""
for candidate in "$@"; do
  version=$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
  case $version in [0-9]*.[0-9]*) ;; *) continue ;; esac
  major=${version%%.*}
  minor=${version#*.}
  if [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 11 ]; }; then
    echo "$candidate"
    exit 0
  fi
  found="$found, $candidate is $version"
done
echo "error: make setup needs Python 3.11 or newer; tried $*${found:+ (${found#, })}; install one, or name it: make setup PYTHON=/path/to/python3.12" >&2
exit 1
