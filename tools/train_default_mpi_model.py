"""Train the identity model Huitong starts with, before a region trains its own.

    python3 tools/train_default_mpi_model.py

The model is estimated (EM, no labels from us) on the synthetic Chinese population the
project generates (src/huitong/mpi/synth), so it contains no real person's data, and written
to src/huitong/mpi/default_model.json. `huitong mpi train` replaces it with one estimated
from the region's own records.
"""

from __future__ import annotations

from pathlib import Path

from huitong.mpi.record import record_from_patient
from huitong.mpi.spec import IDENTITY_SPEC
from huitong.mpi.synth import generate_people, noisy_patients
from huitong.mpi.training import train_model

OUT = Path(__file__).resolve().parents[1] / "src" / "huitong" / "mpi" / "default_model.json"


def main() -> None:
    people = generate_people(4000, seed=20261122)
    sources = noisy_patients(people, seed=20261122)
    records = [record_from_patient(s.patient, source_org=s.org) for s in sources]
    report = train_model(IDENTITY_SPEC, records, seed=1)
    OUT.write_text(report.model.to_json() + "\n", encoding="utf-8")
    print(f"wrote {OUT} from {len(records)} synthetic records, "
          f"{report.candidate_pairs} candidate pairs, EM {report.em.iterations} iterations")


if __name__ == "__main__":
    main()
