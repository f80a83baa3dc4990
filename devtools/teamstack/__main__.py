"""python -m devtools.teamstack up|env|down --dir .team"""

from devtools.teamstack.cli import main
from epochline.core.runner import run_main

run_main(main)
