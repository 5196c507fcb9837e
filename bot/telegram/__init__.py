"""Telegram front end: handlers that parse an update, call the application layer, format."""
