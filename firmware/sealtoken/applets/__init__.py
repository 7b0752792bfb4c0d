"""The ISO 7816 applets of the token, each imported on its first SELECT."""
