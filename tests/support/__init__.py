"""Real loopback servers and helpers the tests share."""
