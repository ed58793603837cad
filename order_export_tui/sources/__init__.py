"""ERP sources: each yields order documents (interfaces.md §3) through `OrderSource`."""
