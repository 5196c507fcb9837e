"""What is kept of a user's text before it is answered, taught or suggested."""

from __future__ import annotations

import unicodedata

from model.text import CharacterFilter

_NOT_IN_QUESTIONS = CharacterFilter(
    lambda ch: ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co")
)


def clean_question(text: str) -> str:
    """Drop control and format characters (keeping line breaks) and outer whitespace."""
    if text.isprintable():  # the usual case: no such character (str.isprintable is C)
        return text.strip()
    return text.translate(_NOT_IN_QUESTIONS).strip()
