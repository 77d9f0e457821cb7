"""clinreason: graph-based, multi-agent clinical reasoning for pharmacist prescribing protocols."""

from clinreason.assessment import Assessment, assess
from clinreason.errors import FieldError, InvalidPatient

# The default protocol's input model and decision values, as `clinreason.Patient` and
# `clinreason.Decision` were before protocols were plug-ins (kept for existing callers).
from clinreason.protocols.uti_cystitis import Decision, Patient

__all__ = ["Assessment", "Decision", "FieldError", "InvalidPatient", "Patient", "assess"]
__version__ = "0.1.0"
