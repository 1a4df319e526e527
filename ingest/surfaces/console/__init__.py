"""The web console for operators and underwriters, served by the daemon at `/` (`pages.console_routes`).

Templates and static assets live beside the code and ship as package data.
"""
