"""FHIR R4 at the edge: a Bundle in (intake.py, questionnaire.py), a document Bundle out (document.py, its XHTML in narrative.py).

Interfaces layer: it maps between FHIR resources and a protocol's own input and output, using only
what the protocol declares (its `fhir.toml`: which codes settle which input field) and the
formulary's recognition of medication and allergy text. Resources are parsed and validated with
fhirclient's R4 (4.0.1) models. Nothing here names a condition or a drug.
"""
