"""An ERP behind SQL (`erp.source = "sql"`, interfaces.md §9): two views, four settings.

`settings` is `[erp.sql]` and the URL made of it (light: settings load it without SQLAlchemy),
`connector` declares it to the registry, `columns` lists the views' columns, `layout` checks
the views and settles how to read them, `values` reads one value as its column's meaning,
`mapping` turns rows into order documents, `source` (`SqlSource`) streams them, `errors` words
database failures for an operator, and `demo` writes the demo ERP's orders into tables and the
two views.
"""
