"""Adapters that read a model's weights into the patched forward (one module per source)."""
