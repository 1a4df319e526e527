"""Feature flows: one module per flow (see DESIGN.md, "Feature flows")."""
