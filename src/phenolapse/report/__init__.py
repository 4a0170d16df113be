"""Figures and the self-contained HTML report (plotting never sits inside computation)."""
