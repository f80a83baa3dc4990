"""`python -m bench`: run the suite."""

from bench.suite import main

if __name__ == "__main__":
    raise SystemExit(main())
