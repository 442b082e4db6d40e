"""Run the homeostat CLI and report this process's own peak RSS (VmHWM, reset by exec)."""

import sys

from homeostat.operator.cli import main

if __name__ == "__main__":
    code = main()  # as the console script: the process is the CLI's (cli.main tunes its collector)
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                print(f"peak-rss-kb {line.split()[1]}", file=sys.stderr)
    sys.exit(code)
