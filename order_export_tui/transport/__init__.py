"""What both kinds of adapter need from HTTP: the retry policy and retrier, which failures are
transient, `Retry-After` / rate-limit reset parsing, timeouts. Sources and destinations import
this; it imports neither."""
