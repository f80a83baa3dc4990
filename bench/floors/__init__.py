"""The floors: each the simplest program doing a stage's work, run as its own process.

Run in the project directory as `python -m bench.floors.<module> ...`; each writes what it
measured from the inside (if anything) as JSON to the path given by `--report`.
"""
