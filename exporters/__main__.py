from saasmon.cli import main

raise SystemExit(main())
