"""The Bllossom desktop app (PySide6). All Qt code of the project lives here."""
