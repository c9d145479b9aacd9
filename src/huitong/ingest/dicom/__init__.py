"""DICOM metadata into ImagingStudy resources (pixel data stays in the PACS)."""

from huitong.ingest.dicom.imaging_study import (
    DICOM_UID,
    DicomContext,
    build_imaging_studies,
    convert_dicom_files,
    read_dicom_files,
    study_identifier,
)
from huitong.ingest.dicom.metadata import InstanceMeta, read_instance

__all__ = [
    "DICOM_UID",
    "DicomContext",
    "InstanceMeta",
    "build_imaging_studies",
    "convert_dicom_files",
    "read_dicom_files",
    "read_instance",
    "study_identifier",
]
