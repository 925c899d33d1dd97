"""`python -m mevqa ...` is the `mevqa` command (torchrun and accelerate launch use this form)."""
from mevqa.apps.cli import main

raise SystemExit(main())
