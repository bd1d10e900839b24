"""The text-to-video API server of the bundled stack (the "server" section of CONTRACT.md)."""
