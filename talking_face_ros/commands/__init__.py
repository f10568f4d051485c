"""One module per ``talking-face`` subcommand; each defines ``register(subparsers)``.

A module's ``register`` adds its parser and sets ``func`` (called with the parsed arguments,
returns an exit code). Heavy imports belong inside ``func`` so ``talking-face --help`` is quick.
"""
