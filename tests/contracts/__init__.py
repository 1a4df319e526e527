"""Vendor contracts written from public references, for TSPs that publish no SDK."""
