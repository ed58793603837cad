"""The Business Central source: OAuth client and paging (`client`), mapping to the order
document (`mapping`), the ledger of orders Business Central deletes once invoiced (`ledger`),
and the source itself (`source`)."""
