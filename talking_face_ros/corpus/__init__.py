"""The procedural talking-face corpus: espeak-ng speech + the motion teacher, with its text."""
