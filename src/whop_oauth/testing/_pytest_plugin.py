"""pytest plugin registered by the ``whop_oauth`` entry point: fixtures for tests."""
