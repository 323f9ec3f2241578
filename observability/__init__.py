"""Business metrics beside the Temporal SDK's (README "Metrics and alerts"): counters fed by the journal
writer and the activities, a stuck-loans gauge, served by prometheus_client on their own port."""
