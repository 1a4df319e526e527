"""The fleetlake daemon: settings, planner, feature flows, executor, scheduler, HTTP API, CLI."""
