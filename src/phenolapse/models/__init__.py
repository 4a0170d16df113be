"""Neural feature extractors: the ConvAE and other backbones."""
