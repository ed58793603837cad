"""What both kinds of adapter need from HTTP: the retry policy and retrier, which failures are
transient, `Retry-After` / rate-limit reset parsing, timeouts (`http`), reading answers
strictly (`answers`), redaction of credentials (`redaction`) and waits that a cancel ends
(`waiting`). Sources and destinations import this; it imports neither."""
