"""`python -m mockserver` is the `allmysms-mock` command."""

from mockserver.cli import main

raise SystemExit(main())
