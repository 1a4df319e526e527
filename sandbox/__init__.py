"""Deterministic fleet simulator and faithful fake Samsara and Motive HTTP APIs.

The sandbox is fleetlake's embedded default: the demo, every integration test and every
benchmark run against it, and its ground truth is what the features are checked against. The package imports
nothing itself: the CLI finds the sandbox's commands through an entry point on every start.
"""
