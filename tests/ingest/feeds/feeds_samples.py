"""A blood-pressure clinic export mapping used by the feed tests (TOML, Chinese headers)."""

from __future__ import annotations

BP_MAPPING = """
[feed]
name = "community-bp"
organization = { system = "urn:huitong:org-code", value = "C01" }
batch_size = BATCH

[[resource]]
key = "patient"
type = "Patient"
mode = "update"
identifier = { system = "urn:huitong:mrn:C01", value = "{病历号}" }

  [[resource.field]]
  element = "name[0].text"
  source = "姓名"
  required = true

  [[resource.field]]
  element = "gender"
  source = "性别"
  map = { "男" = "male", "女" = "female" }

  [[resource.field]]
  element = "birthDate"
  source = "出生日期"

  [[resource.field]]
  element = "identifier[1]"
  value = { system = "urn:huitong:org-code", value = "C01" }

  [[resource.field]]
  element = "managingOrganization"
  target = "organization"

[[resource]]
key = "sbp"
type = "Observation"
identifier = { system = "urn:huitong:csv:C01:obs", value = "{记录号}-sbp" }
only_if = "收缩压"

  [[resource.field]]
  element = "status"
  value = "final"

  [[resource.field]]
  element = "category[0].coding[0]"
  value = { system = "http://terminology.hl7.org/CodeSystem/observation-category", code = "vital-signs" }

  [[resource.field]]
  element = "code.coding[0]"
  value = { system = "http://loinc.org", code = "8480-6", display = "Systolic blood pressure" }

  [[resource.field]]
  element = "subject"
  target = "patient"

  [[resource.field]]
  element = "performer[0]"
  target = "organization"

  [[resource.field]]
  element = "valueQuantity"
  source = "收缩压"
  unit = "mm[Hg]"

  [[resource.field]]
  element = "effectiveDateTime"
  source = "测量时间"
  required = true
"""

HEADER = "病历号,姓名,性别,出生日期,记录号,收缩压,测量时间\n"
GOOD_ROWS = [
    "M001,张三,男,1960年3月5日,R1,135,2024-03-05 08:30\n",
    'M002,"李,四",女,1970/1/2,R2,128,2024年3月5日 9:00\n',
    "M003,王五,男,1980-01-01,R3,,2024-03-05 10:00\n",  # no reading: patient only
    "M001,张三,男,1960年3月5日,R4,141,2024-03-06 08:30\n",  # same patient again
]


def bp_mapping(batch: int = 500) -> str:
    return BP_MAPPING.replace("BATCH", str(batch))


def organization() -> dict[str, object]:
    return {"resourceType": "Organization", "name": "社区卫生服务中心",
            "identifier": [{"system": "urn:huitong:org-code", "value": "C01"}]}
