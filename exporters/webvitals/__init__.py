"""Web Vitals receiver: real-user beacons from the `web-vitals` library become histograms."""
