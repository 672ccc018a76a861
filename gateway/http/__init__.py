"""The HTTP layer: the aiohttp app, the request flow, the stream relay and the admin endpoints."""
