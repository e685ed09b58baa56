"""Alarm notifications to people: a reader of the event log on its own cursor.

``plan`` decides who is told what and when (pure, on an explicit clock), ``rota`` who is
on shift, ``text`` the message in Chinese or English, ``send`` delivers through apprise
with retries, ``mask`` keeps secrets out of log lines, ``sink`` reads the log and ties
them together. See ``docs/notifications.md``.
"""
