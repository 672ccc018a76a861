"""Alerts: `[[alerts]]` rules over /stats and budgets, evaluated in a background task, notified to webhooks.

`rules` owns the schema and its compiled form, `evaluator` the per-rule state machine, `webhooks`
the deliveries (one bounded queue per destination, retries with backoff, never on the request path),
`events` the dashboard's timeline of firings, resolutions and their deliveries.
"""

from gateway.alerts.evaluator import AlertEvaluator
from gateway.alerts.rules import Alerts, AlertTable, WebhookConfig
from gateway.alerts.webhooks import Notifier

__all__ = ["AlertEvaluator", "AlertTable", "Alerts", "Notifier", "WebhookConfig"]
