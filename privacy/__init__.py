"""Privacy of borrowers' data: payload encryption with a key ring and per-loan data keys (issue 10)."""
