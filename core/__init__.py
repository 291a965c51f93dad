"""Shared building blocks that belong to no single package: the generic registry."""
