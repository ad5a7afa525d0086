from hostwiz.cli import main

raise SystemExit(main())
