#!/usr/bin/env python3
"""ACT's embodied carbon per cm² of logic die, by node: the reference numbers tests/test_carbon.py
and nvmc validate compare nvmc's backends/carbon.py with (ACT_CPA_G_PER_CM2).

ACT (facebookresearch/ACT, MIT) is not on PyPI. In a throwaway venv:

    git clone https://github.com/facebookresearch/ACT && git -C ACT checkout abc9fbb
    python -m venv /tmp/actvenv && /tmp/actvenv/bin/pip install pint pyyaml
    /tmp/actvenv/bin/python tests/data/refs/act/run_act.py ACT > tests/data/refs/act/act_cpa.json

``LogicModel().get_cpa(node)`` with ACT's defaults (GPA97 gas abatement, fab yield 0.875, the
Taiwan fab grid), in g CO2e per cm² of good die.
"""

import json
import sys
from pathlib import Path

NODES = {28: "N28", 20: "N20", 14: "N14", 10: "N10", 8: "N8", 7: "N7", 5: "N5", 3: "N3"}


def main(act_root: str) -> None:
    sys.path.insert(0, str(Path(act_root).resolve()))
    from act.core.common import LogicProcess
    from act.core.logic_model import LogicModel

    model = LogicModel()
    out = {str(nm): model.get_cpa(getattr(LogicProcess, name)).to("g / cm**2").magnitude for nm, name in NODES.items()}
    print(json.dumps({"tool": "facebookresearch/ACT", "commit": "abc9fbb", "call": "LogicModel().get_cpa(node)",
                      "unit": "g CO2e / cm^2", "g_per_cm2": out}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ACT")
