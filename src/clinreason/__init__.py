"""clinreason: graph-based, multi-agent clinical reasoning (first protocol: UTI, CA-ON)."""

from clinreason.assessment import Assessment, assess
from clinreason.errors import FieldError, InvalidPatient
from clinreason.protocols.patient import Patient
from clinreason.protocols.result import Decision

__all__ = ["Assessment", "Decision", "FieldError", "InvalidPatient", "Patient", "assess"]
__version__ = "0.1.0"
