"""RQ jobs (CRM webhook, lockout SMS, audit trail) and the worker entry point (``ivr worker``)."""
