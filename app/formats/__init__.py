"""Data plane formats. Each module exposes `async def handle(dp: DataPlane) -> Response`."""
