"""geoaware."""
