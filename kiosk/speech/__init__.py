"""What the terminal says aloud (唱收唱付), as text: amounts read as money and the phrases.

Owns the words, never the sound: `amounts` reads integer fen as spoken money, `phrases` lists
every sentence template the app speaks and builds sentences from it, `espeak` describes the
one speech engine's command line and checks that it pronounces a sentence in the right
language. The touchscreen's player (ui/voice.py) and the diagnose check both use them.
"""

from kiosk.speech.amounts import speak_amount, speak_amount_en, speak_amount_zh
from kiosk.speech.phrases import Phrase, clause, result_sentence, sentence

__all__ = [
    "Phrase",
    "clause",
    "result_sentence",
    "sentence",
    "speak_amount",
    "speak_amount_en",
    "speak_amount_zh",
]
