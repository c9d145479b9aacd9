"""CSV and JSON feeds: a declarative TOML mapping turns an institution's export into
idempotent FHIR transaction Bundles, batch by batch, with a row-level problem report.

The modules :mod:`problems` (the :class:`Problem` report) and :mod:`transaction`
(idempotent entries, the :class:`Conversion` result) are shared by the device and DICOM
converters.
"""

from huitong.ingest.feeds.batches import Unchecked
from huitong.ingest.feeds.csv_feed import convert_csv, detect_encoding
from huitong.ingest.feeds.files import FEED_SUFFIXES, convert_file
from huitong.ingest.feeds.json_feed import convert_json
from huitong.ingest.feeds.mapping import (
    FeedMapping,
    MappingError,
    MappingIssue,
    load_mapping,
    parse_mapping,
    parse_mapping_toml,
)
from huitong.ingest.feeds.problems import Problem, Reason
from huitong.ingest.feeds.transaction import (
    Conversion,
    Transaction,
    conditional_reference,
    full_url,
    identifier_criteria,
)

__all__ = [
    "FEED_SUFFIXES",
    "Conversion",
    "FeedMapping",
    "MappingError",
    "MappingIssue",
    "Problem",
    "Reason",
    "Transaction",
    "Unchecked",
    "conditional_reference",
    "convert_csv",
    "convert_file",
    "convert_json",
    "detect_encoding",
    "full_url",
    "identifier_criteria",
    "load_mapping",
    "parse_mapping",
    "parse_mapping_toml",
]
