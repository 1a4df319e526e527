"""Everything that talks to a telematics service provider (TSP)."""
