"""``python -m phenolapse``."""

from phenolapse.cli import main

main()
