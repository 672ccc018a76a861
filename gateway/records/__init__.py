"""Request records and what consumes them: the record schema, the audit hash chain, the local spool,
the sinks, the background recorder, /stats rolling windows and /metrics."""
