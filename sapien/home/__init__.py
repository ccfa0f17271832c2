"""The landing page and the member dashboard: the places that gather every area's summary."""
