"""CDS Hooks 2.0: clinreason inside an EHR's prescribing workflow (interfaces layer).

- services.py: one service per (protocol, hook), with the prefetch templates the FHIR intake reads
- auth.py: the EHR's signed JWT (JWK Set per issuer, audience, expiry, replay)
- prefetch.py: prefetch values completed from the EHR's FHIR server, flattened into one Bundle
- orders.py: draft MedicationRequests -> the protocol options they order, through the formulary
- cards.py: cards from the protocol's deterministic result (pure)
- models.py: the spec's request, discovery, card and feedback objects
- cors.py, router.py: the HTTP side (`/cds-services`)

Everything condition-specific comes from the protocol's spec, formulary and result.
"""
