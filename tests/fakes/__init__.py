"""Loopback fakes of the platforms, for the tests and for people without an account."""
