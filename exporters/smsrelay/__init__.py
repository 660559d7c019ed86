"""SMS relay: Alertmanager webhook notifications to SMS through Twilio."""
