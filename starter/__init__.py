"""Start and steer loan collections from servicing systems: a Python API (`CollectionsStarter`) and a CLI.

python -m starter start --file loans.csv
python -m starter pay L-1 --amount 50000 --payment-id P-1
python -m starter status L-1
"""
