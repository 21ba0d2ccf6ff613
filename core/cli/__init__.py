"""`python -m core COMMAND`: one thin module per command (`add_arguments(parser)` and `run(args)`)."""
