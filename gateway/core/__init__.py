"""The daemon's core: pollers, the rules pipeline, telemetry, commands, the control socket."""
