"""Synthetic Chinese population with ground truth, for training checks and benchmarks."""

from huitong.mpi.synth.population import (
    Noise,
    Person,
    SourcePatient,
    generate_people,
    noisy_patients,
)

__all__ = ["Noise", "Person", "SourcePatient", "generate_people", "noisy_patients"]
