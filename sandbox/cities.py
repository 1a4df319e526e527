"""Real US cities the simulated trucks are garaged at and drive between."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    name: str
    state: str
    lat: float
    lon: float
    utc_offset_h: int  # standard time; the simulator ignores DST on purpose (plans, not clocks)


CITIES: tuple[City, ...] = (
    City("Atlanta", "GA", 33.749, -84.388, -5),
    City("Birmingham", "AL", 33.5186, -86.8104, -6),
    City("Nashville", "TN", 36.1627, -86.7816, -6),
    City("Memphis", "TN", 35.1495, -90.0490, -6),
    City("Louisville", "KY", 38.2527, -85.7585, -5),
    City("Charlotte", "NC", 35.2271, -80.8431, -5),
    City("Raleigh", "NC", 35.7796, -78.6382, -5),
    City("Richmond", "VA", 37.5407, -77.4360, -5),
    City("Columbia", "SC", 34.0007, -81.0348, -5),
    City("Jacksonville", "FL", 30.3322, -81.6557, -5),
    City("Orlando", "FL", 28.5383, -81.3792, -5),
    City("Tampa", "FL", 27.9506, -82.4572, -5),
    City("Tallahassee", "FL", 30.4383, -84.2807, -5),
    City("Jackson", "MS", 32.2988, -90.1848, -6),
    City("New Orleans", "LA", 29.9511, -90.0715, -6),
    City("Baton Rouge", "LA", 30.4515, -91.1871, -6),
    City("Shreveport", "LA", 32.5252, -93.7502, -6),
    City("Little Rock", "AR", 34.7465, -92.2896, -6),
    City("Dallas", "TX", 32.7767, -96.7970, -6),
    City("Houston", "TX", 29.7604, -95.3698, -6),
    City("San Antonio", "TX", 29.4241, -98.4936, -6),
    City("Austin", "TX", 30.2672, -97.7431, -6),
    City("Amarillo", "TX", 35.2220, -101.8313, -6),
    City("El Paso", "TX", 31.7619, -106.4850, -7),
    City("Oklahoma City", "OK", 35.4676, -97.5164, -6),
    City("Tulsa", "OK", 36.1540, -95.9928, -6),
    City("Wichita", "KS", 37.6872, -97.3301, -6),
    City("Kansas City", "MO", 39.0997, -94.5786, -6),
    City("St. Louis", "MO", 38.6270, -90.1994, -6),
    City("Springfield", "MO", 37.2090, -93.2923, -6),
    City("Omaha", "NE", 41.2565, -95.9345, -6),
    City("Lincoln", "NE", 40.8136, -96.7026, -6),
    City("Des Moines", "IA", 41.5868, -93.6250, -6),
    City("Minneapolis", "MN", 44.9778, -93.2650, -6),
    City("Milwaukee", "WI", 43.0389, -87.9065, -6),
    City("Madison", "WI", 43.0731, -89.4012, -6),
    City("Chicago", "IL", 41.8781, -87.6298, -6),
    City("Springfield", "IL", 39.7817, -89.6501, -6),
    City("Indianapolis", "IN", 39.7684, -86.1581, -5),
    City("Fort Wayne", "IN", 41.0793, -85.1394, -5),
    City("Detroit", "MI", 42.3314, -83.0458, -5),
    City("Grand Rapids", "MI", 42.9634, -85.6681, -5),
    City("Columbus", "OH", 39.9612, -82.9988, -5),
    City("Cincinnati", "OH", 39.1031, -84.5120, -5),
    City("Cleveland", "OH", 41.4993, -81.6944, -5),
    City("Pittsburgh", "PA", 40.4406, -79.9959, -5),
    City("Harrisburg", "PA", 40.2732, -76.8867, -5),
    City("Philadelphia", "PA", 39.9526, -75.1652, -5),
    City("Baltimore", "MD", 39.2904, -76.6122, -5),
    City("Newark", "NJ", 40.7357, -74.1724, -5),
    City("Albany", "NY", 42.6526, -73.7562, -5),
    City("Buffalo", "NY", 42.8864, -78.8784, -5),
    City("Hartford", "CT", 41.7658, -72.6734, -5),
    City("Boston", "MA", 42.3601, -71.0589, -5),
    City("Charleston", "WV", 38.3498, -81.6326, -5),
    City("Denver", "CO", 39.7392, -104.9903, -7),
    City("Albuquerque", "NM", 35.0844, -106.6504, -7),
    City("Phoenix", "AZ", 33.4484, -112.0740, -7),
    City("Tucson", "AZ", 32.2226, -110.9747, -7),
    City("Salt Lake City", "UT", 40.7608, -111.8910, -7),
    City("Boise", "ID", 43.6150, -116.2023, -7),
    City("Las Vegas", "NV", 36.1699, -115.1398, -8),
    City("Reno", "NV", 39.5296, -119.8138, -8),
    City("Los Angeles", "CA", 34.0522, -118.2437, -8),
    City("Bakersfield", "CA", 35.3733, -119.0187, -8),
    City("Fresno", "CA", 36.7378, -119.7871, -8),
    City("Sacramento", "CA", 38.5816, -121.4944, -8),
    City("Portland", "OR", 45.5152, -122.6784, -8),
    City("Seattle", "WA", 47.6062, -122.3321, -8),
    City("Spokane", "WA", 47.6588, -117.4260, -8),
    City("Billings", "MT", 45.7833, -108.5007, -7),
    City("Sioux Falls", "SD", 43.5446, -96.7311, -6),
    City("Fargo", "ND", 46.8772, -96.7898, -6),
)
