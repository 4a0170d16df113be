"""``python -m phenolapse.cli``."""

from phenolapse.cli import main

main()
