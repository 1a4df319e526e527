"""Leaf utilities every layer may import: the error tree and name validation."""
