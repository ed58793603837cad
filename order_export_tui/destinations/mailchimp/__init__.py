"""A Mailchimp e-commerce store: `destination` (the flow), `payloads` (bodies), `answers`,
`api` (one key's requests, shared connection limit), `backfill` (the gate that holds real-time
sends), `product_memory`, `readback` (the store read back for verify), and `connector` (its
declaration for the registry)."""
