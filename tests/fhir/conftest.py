"""The HL7 example fixtures (`hl7`, `hl7_resource`) live in tests/conftest.py: the API and CDS Hooks tests use them too."""
