"""Dotdigital Insight data: `destination` (the flow), `records` (bodies), `answers` (error
documents, reports, documented successes), `api` (requests, refusals), `imports` (import kinds,
the wait), `pacing`, `readback` (the collection read back for verify), and `connector` (its
declaration for the registry)."""
