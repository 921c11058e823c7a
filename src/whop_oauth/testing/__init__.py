"""Test helpers: a mock Whop provider and pytest fixtures."""
