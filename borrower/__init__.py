"""The borrower page: the link in every message opens it; a one-time code sent to the contact point on file
unlocks what is owed and what the borrower can do (pay, promise, plan, dispute, hardship, preferences, call
back), each through the loan's workflow as actor `borrower`. README "Borrower page"."""
