"""The `nvmc` console script: Ctrl-C while the command line is still loading ends quietly
(exit 130), as it does once a command runs."""

import sys


def main() -> None:
    try:
        from nvmc.cli import main as run
    except KeyboardInterrupt:
        sys.exit(130)
    run()
