"""Business counters of the activities whose facts the journal does not carry (placements, recalls, legal
documents, registered mail, litigation referrals). Each is called right where the activity stores its row,
with whether this call stored it: a retry that finds the row (duplicate) counts nothing again.
"""

from __future__ import annotations

from activities.contracts import LitigationReferralRequest, PlacementRequest, RecallRequest
from observability import metrics
from observability.labels import closed


def placed(request: PlacementRequest, *, first_time: bool) -> None:
    if first_time:
        metrics.placements.labels(closed("currency", request.currency)).inc()


def recalled(request: RecallRequest, *, first_time: bool) -> None:
    if first_time:
        metrics.recalls.labels(closed("reason", request.reason)).inc()


def document_stored(document: str, *, first_time: bool) -> None:
    if first_time:
        metrics.letters.labels(closed("document", document)).inc()


def mail_dispatched(*, first_time: bool) -> None:
    if first_time:
        metrics.registered_mail.inc()


def referred(request: LitigationReferralRequest, *, first_time: bool) -> None:
    if first_time:
        metrics.litigation_referrals.labels(closed("currency", request.currency)).inc()
