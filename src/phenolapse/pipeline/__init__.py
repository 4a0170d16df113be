"""The whole analysis as one run: configuration, cached stages, demo."""
