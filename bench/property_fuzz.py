"""The hypothesmith property of tests/test_property.py with a large budget.

    python bench/property_fuzz.py [EXAMPLES]     # default 2000 per strategy, random seed each run
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    examples = sys.argv[1] if len(sys.argv) > 1 else "2000"
    env = {**os.environ, "NNLINT_HYPOTHESIS_EXAMPLES": examples}
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              str(ROOT / "tests" / "test_property.py")], env=env, cwd=ROOT))
