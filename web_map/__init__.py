"""Folium maps and the web pages built on them."""
