"""Rate limits and budgets, independent of virtual keys. The request flow calls `Limits`
(`gateway.limits.admission`: admit before the call, settle after it); rules are `gateway.limits.rules`,
the worst-case price of an alias `gateway.limits.worst_case`."""

from gateway.limits.admission import Admission, Limits

__all__ = ["Admission", "Limits"]
