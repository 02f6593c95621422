"""One module per `allmysms-mock` sub-command; each exposes `add_parser(sub)` and `run(args)`."""
