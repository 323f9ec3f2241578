"""Every workflow a collections worker runs: the loan's process and its children."""

from __future__ import annotations

from workflows.agency_placement import AgencyPlacementWorkflow
from workflows.legal_case import LegalCaseWorkflow
from workflows.loan_collection import LoanCollectionWorkflow

WORKFLOWS = [LoanCollectionWorkflow, AgencyPlacementWorkflow, LegalCaseWorkflow]
