"""Local decisions: limits on samples become alarms, alarms become desired relay states."""
