"""Write one of the real example tables as a CSV, from the packages that ship it.

    python examples/write_table.py penguins data/external/penguins.csv
    python examples/write_table.py breast-cancer data/external/breast-cancer.csv

penguins: the Palmer penguins (palmerpenguins package; 344 rows, text columns, gaps), with
one column added, `adelie` ("yes"/"no"), the label: a species question made binary.
breast-cancer: the Wisconsin diagnostic table bundled with scikit-learn (569 rows, 30
measurements), its label written out as the words "malignant" and "benign".
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    table = load_penguins()
    table["adelie"] = (table["species"] == "Adelie").map({True: "yes", False: "no"})
    return table


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    table = bunch.frame.drop(columns="target")
    table["diagnosis"] = bunch.target.map(dict(enumerate(bunch.target_names)))
    return table


TABLES = {"penguins": penguins, "breast-cancer": breast_cancer}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in TABLES:
        print(f"usage: write_table.py {{{'|'.join(TABLES)}}} OUT.csv", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    TABLES[argv[0]]().to_csv(out, index=False)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
