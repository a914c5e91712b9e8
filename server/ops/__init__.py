"""Payer operations: the review work queue, decisions, dashboards and the CMS-0057-F public metrics."""
