"""The whop_oauth example app: ``python -m examples.starlette_app`` (or ``make demo``)."""
