"""Building blocks of the screen simulator: configuration, design, dynamics and rendering."""
