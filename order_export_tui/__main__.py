from order_export_tui.cli import main

raise SystemExit(main())
