"""Application layer: the use cases every front end (Telegram, console, CLI) goes through."""
