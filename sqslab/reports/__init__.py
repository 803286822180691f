"""Reports of run directories: the built-in `formats` (text, JSON, Markdown, JUnit;
registered through register_reporters like any plugin's) and the `html` page.
"""
