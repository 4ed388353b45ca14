"""``python -m floating_ip_annotator``: the container's entry point."""

from floating_ip_annotator.cli import main

raise SystemExit(main())
