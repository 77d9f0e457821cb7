"""Prometheus metrics, one registry per app (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from clinreason.assessment import Assessment


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("clinreason_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "clinreason_http_request_seconds", "Request latency", ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.decisions = Counter("clinreason_decisions", "Assessments by decision", ["decision", "mode"], registry=self.registry)
        self.fallbacks = Counter("clinreason_llm_fallbacks", "LLM calls answered by the rules backend", registry=self.registry)
        self.dropped = Counter("clinreason_dropped_citations", "Citations dropped by the citation check", ["reason"], registry=self.registry)

    def record(self, a: Assessment) -> None:
        self.decisions.labels(a.decision, a.mode).inc()
        if a.audit:
            self.fallbacks.inc(len(a.audit.get("llm_fallbacks", [])))
            for reason in ("unresolved", "unsupported"):
                self.dropped.labels(reason).inc(a.audit["citations"][reason])
