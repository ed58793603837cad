"""order-export: keeps a marketing platform's copy of a webstore's ERP orders true."""

__version__ = "0.1.0"

TASK_NAME = "Order data export"
