"""An order-export destination: each order as `<order_id>.json` in a folder (the outbox)."""
