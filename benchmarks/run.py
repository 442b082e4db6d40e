"""Run every benchmark in this folder, one after the other: `make bench`."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    for script in sorted(HERE.glob("*.py")):
        if script.name in {"run.py", "common.py", "__init__.py"} or script.name.endswith("_helpers.py"):
            continue
        print(f"== {script.stem}", flush=True)
        sys.argv = [str(script)]
        runpy.run_path(str(script), run_name="__main__")
