"""The service: the scheduler, runs one at a time, the real-time intake and its delivery, the
failure e-mail, and the wiring of all of it for the daemon, the dashboard and the command line.
"""
