"""Queue control over a local TCP socket: newline-delimited JSON, authenticated by a per-run token.

``protocol`` parses and formats messages, ``connection`` writes/reads ``<run dir>/control.json``,
``server`` maps requests onto :class:`vgen.queue.controller.QueueController`, ``client`` sends one.
"""
