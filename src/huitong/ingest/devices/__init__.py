"""Home-device readings: gateway JSON and PHD Bundles into vital-sign Observations (LOINC,
IEEE 11073 MDC, UCUM) linked to a Device and the patient, de-duplicated by device and time;
and the MQTT subscriber that feeds them in."""

from huitong.ingest.devices.convert import (
    convert_device_payload,
    convert_gateway_payload,
    convert_phd_bundle,
)
from huitong.ingest.devices.mqtt import MqttMessage, MqttSettings, MqttSubscriber
from huitong.ingest.devices.observations import READING_SYSTEM, DeviceContext, readings_to_bundle
from huitong.ingest.devices.phd import parse_phd_bundle
from huitong.ingest.devices.readings import (
    DeviceInfo,
    Measurement,
    PatientRef,
    Reading,
    parse_gateway_payload,
)

__all__ = [
    "READING_SYSTEM",
    "DeviceContext",
    "DeviceInfo",
    "Measurement",
    "MqttMessage",
    "MqttSettings",
    "MqttSubscriber",
    "PatientRef",
    "Reading",
    "convert_device_payload",
    "convert_gateway_payload",
    "convert_phd_bundle",
    "parse_gateway_payload",
    "parse_phd_bundle",
    "readings_to_bundle",
]
