"""Inbound messages and receipts: the webhooks providers call after a message went out.

Borrowers' replies (SMS STOP / HELP, e-mail "unsubscribe"), delivery receipts (SMS, push) and e-mail bounces
reach the loan: an opt-out goes through the loan's workflow, a receipt is stored on the outbox row and a
permanent failure closes that contact point. `python -m inbound` serves them (inbound/app.py lists the
endpoints, inbound/auth.py how providers authenticate); `make run` starts it beside the admin UI.
"""
